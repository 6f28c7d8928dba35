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
        let task = Task { try await body() }
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
                task.cancel()
            }
            // libdispatch installs the signal handler on its manager thread after `resume()`; until then the
            // signal is ignored (SIG_IGN above). Wait for the registration so that an interrupt that comes
            // right after the work starts is not lost on a busy machine.
            let registered = DispatchSemaphore(value: 0)
            source.setRegistrationHandler { registered.signal() }
            source.resume()
            _ = registered.wait(timeout: .now() + .seconds(2))
            return source
        }
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
