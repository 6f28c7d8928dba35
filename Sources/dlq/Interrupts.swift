import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Ctrl-C for long work: the first SIGINT (or SIGTERM) cancels the work so it stops cleanly after what is in
/// flight; a second one ends the process at once with status 130.
enum Interrupts {
    private static let interrupted = Atomic<Int>(0)

    /// Whether an interrupt arrived.
    static var wasInterrupted: Bool { Self.interrupted.load(ordering: .relaxed) > 0 }

    /// Runs `body` in a child task that an interrupt cancels.
    static func cancellingOnInterrupt<Result: Sendable>(
        _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        // The signal sources are registered before the work starts, so an interrupt that comes as soon as the
        // work has begun (its first command, say) is never lost.
        let canceller = Canceller()
        let sources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let count = Self.interrupted.wrappingAdd(1, ordering: .relaxed).newValue
                if count > 1 {
                    Terminal.err("\ndlq: interrupted\n")
                    exit(ExitStatus.interrupted)
                }
                Terminal.err("\ndlq: stopping after the work in flight (Ctrl-C again to quit now)\n")
                canceller.cancel()
            }
            // libdispatch installs the signal handler on its manager thread after `resume()`; until then the
            // signal is ignored (SIG_IGN above). Wait for the registration.
            let registered = DispatchSemaphore(value: 0)
            source.setRegistrationHandler { registered.signal() }
            source.resume()
            _ = registered.wait(timeout: .now() + .seconds(2))
            return source
        }
        let task = Task { try await body() }
        canceller.set { task.cancel() }
        defer {
            for source in sources { source.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}

/// Cancels the work once it exists: an interrupt that arrives before the task is made cancels it when it is.
private final class Canceller: Sendable {
    private let state = Mutex<(cancel: (@Sendable () -> Void)?, requested: Bool)>((nil, false))

    func set(_ cancel: @escaping @Sendable () -> Void) {
        let requested = self.state.withLock { state in
            state.cancel = cancel
            return state.requested
        }
        if requested { cancel() }
    }

    func cancel() {
        let cancel = self.state.withLock { state in
            state.requested = true
            return state.cancel
        }
        cancel?()
    }
}
