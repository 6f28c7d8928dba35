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
///
/// A plain `sigaction` handler catches the signal on whichever thread the kernel picks; it only counts the
/// signal and writes a byte to a pipe (both async-signal-safe), and a dispatch read source on the pipe cancels
/// the work. (A dispatch signal source on Linux relies on every thread blocking the signal, which cannot be
/// guaranteed once the concurrency runtime's threads exist, so a signal could be lost.)
enum Interrupts {
    private static let interrupted = Atomic<Int>(0)
    private static let pipeWriteEnd = Atomic<Int32>(-1)

    /// Whether an interrupt arrived.
    static var wasInterrupted: Bool { Self.interrupted.load(ordering: .relaxed) > 0 }

    /// Runs `body` in a child task that an interrupt cancels.
    static func cancellingOnInterrupt<Result: Sendable>(
        _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return try await body() }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = Self.wasInterrupted  // initialize the counter here, not first in the signal handler
        Self.pipeWriteEnd.store(writeEnd, ordering: .sequentiallyConsistent)
        let canceller = Canceller()
        let source = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: .global())
        source.setEventHandler {
            var buffer = [UInt8](repeating: 0, count: 16)
            _ = read(readEnd, &buffer, buffer.count)
            Terminal.err("\ndlq: stopping after the work in flight (Ctrl-C again to quit now)\n")
            canceller.cancel()
        }
        source.setCancelHandler {
            close(readEnd)
            close(writeEnd)
        }
        source.resume()
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            #if canImport(Darwin)
            action.__sigaction_u.__sa_handler = Interrupts.handle
            #else
            action.__sigaction_handler.sa_handler = Interrupts.handle
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(number, &action, nil)
        }
        let task = Task { try await body() }
        canceller.set { task.cancel() }
        defer {
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
            Self.pipeWriteEnd.store(-1, ordering: .sequentiallyConsistent)
            source.cancel()
        }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// The signal handler: async-signal-safe work only.
    private static let handle: @convention(c) (Int32) -> Void = { _ in
        let count = Interrupts.interrupted.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
        if count > 1 {
            let message: StaticString = "\ndlq: interrupted\n"
            _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
            _exit(ExitStatus.interrupted)
        }
        var byte: UInt8 = 1
        let fd = Interrupts.pipeWriteEnd.load(ordering: .sequentiallyConsistent)
        if fd >= 0 { _ = write(fd, &byte, 1) }
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
