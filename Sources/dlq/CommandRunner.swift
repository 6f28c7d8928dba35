import DeadLetters
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The failure of a replay command, recorded as the letter's new error.
///
/// Its message is the last non-empty line the command wrote to standard error, else `exit status N`; a
/// command killed at its timeout fails with reason `timeout`, any other failure keeps the letter's reason.
struct ReplayCommandError: Error, CustomStringConvertible, DeadLetterReasonProviding {
    var message: String
    var failureReason: FailureReason
    var description: String { self.message }
}

/// Runs `sh -c COMMAND` with a payload on standard input, in its own process group (so Ctrl-C at the terminal
/// reaches `dlq`, not the command, and a timeout kills the command and everything it started).
enum CommandRunner {
    enum Outcome: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
    }

    struct Result: Sendable {
        var outcome: Outcome
        /// The last non-empty line of standard error, if any.
        var lastErrorLine: String?

        var succeeded: Bool { self.outcome == .exited(0) }

        /// The message recorded for a failure.
        func failureMessage(timeout: Duration) -> String {
            switch self.outcome {
            case .timedOut:
                return "timed out after \(DurationArgument.format(timeout)) (killed)"
                    + (self.lastErrorLine.map { ": \($0)" } ?? "")
            case .exited(let code): return self.lastErrorLine ?? "exit status \(code)"
            case .signaled(let signal): return self.lastErrorLine ?? "killed by signal \(signal)"
            }
        }
    }

    /// Runs the command on its own thread and returns when it has ended (or was killed at `timeout`).
    /// Cancellation does not stop a command that started: it runs to its end or its timeout.
    static func run(
        _ command: String,
        payload: Data,
        environment: [String: String],
        timeout: Duration
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do {
                    continuation.resume(
                        returning: try Self.runBlocking(
                            command,
                            payload: payload,
                            environment: environment,
                            timeout: timeout
                        )
                    )
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private static func runBlocking(
        _ command: String,
        payload: Data,
        environment: [String: String],
        timeout: Duration
    ) throws -> Result {
        var input: [Int32] = [-1, -1]
        var errors: [Int32] = [-1, -1]
        // Pipes are made and the command spawned under one lock, with close-on-exec set before any other
        // spawn can happen, so no command inherits another one's pipe (which would keep it open).
        Self.spawnLock.lock()
        defer { Self.spawnLock.unlock() }
        guard pipe(&input) == 0 else { throw CLIError(kind: .other, message: "pipe: \(errnoText())") }
        guard pipe(&errors) == 0 else {
            close(input[0])
            close(input[1])
            throw CLIError(kind: .other, message: "pipe: \(errnoText())")
        }
        for fd in input + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], STDIN_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errors[1], STDERR_FILENO)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGTERM, SIGPIPE, SIGQUIT, SIGHUP] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        )

        let arguments = ["/bin/sh", "-c", command]
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let environmentLines = merged.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let spawned = withCStrings(arguments) { argv in
            withCStrings(environmentLines) { envp in
                posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
            }
        }
        close(input[0])
        close(errors[1])
        guard spawned == 0 else {
            close(input[1])
            close(errors[0])
            throw CLIError(kind: .other, message: "cannot start /bin/sh: \(String(cString: strerror(spawned)))")
        }
        Self.spawnLock.unlock()
        defer { Self.spawnLock.lock() }
        return Self.supervise(
            pid: pid,
            stdin: input[1],
            stderr: errors[0],
            payload: Array(payload),
            timeout: timeout
        )
    }

    /// Feeds the payload, collects standard error, reaps the process, and kills its group at the deadline.
    private static func supervise(
        pid: pid_t,
        stdin: Int32,
        stderr: Int32,
        payload: [UInt8],
        timeout: Duration
    ) -> Result {
        _ = fcntl(stdin, F_SETFL, fcntl(stdin, F_GETFL) | O_NONBLOCK)
        _ = fcntl(stderr, F_SETFL, fcntl(stderr, F_GETFL) | O_NONBLOCK)
        var stdinFD: Int32? = stdin
        var stderrFD: Int32? = stderr
        var offset = 0
        var tail: [UInt8] = []
        var status: Int32 = 0
        var exitedAt: ContinuousClock.Instant?
        var killed = false
        let deadline = ContinuousClock.now + timeout
        if payload.isEmpty {
            close(stdin)
            stdinFD = nil
        }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            if exitedAt == nil, waitpid(pid, &status, WNOHANG) == pid {
                exitedAt = .now
                if let fd = stdinFD {
                    close(fd)
                    stdinFD = nil
                }
            }
            if let exitedAt {
                // Done when standard error is closed, or soon after the exit if a leftover child keeps it open.
                if stderrFD == nil || ContinuousClock.now - exitedAt > .milliseconds(500) { break }
            } else if !killed, ContinuousClock.now >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                killed = true
            }
            var fds: [pollfd] = []
            if let fd = stdinFD { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)) }
            if let fd = stderrFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            _ = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 20) }
            if let fd = stdinFD {
                let written = payload.withUnsafeBytes { bytes in
                    write(fd, bytes.baseAddress! + offset, min(65_536, payload.count - offset))
                }
                if written > 0 {
                    offset += written
                } else if written < 0, errno != EAGAIN, errno != EINTR {
                    offset = payload.count  // The command closed its input (EPIPE): stop feeding it.
                }
                if offset >= payload.count {
                    close(fd)
                    stdinFD = nil
                }
            }
            if let fd = stderrFD {
                let capacity = buffer.count
                let count = read(fd, &buffer, capacity)
                if count > 0 {
                    tail.append(contentsOf: buffer[0..<count])
                    if tail.count > 16_384 { tail.removeFirst(tail.count - 8192) }
                } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(fd)
                    stderrFD = nil
                }
            }
        }
        if let fd = stdinFD { close(fd) }
        if let fd = stderrFD { close(fd) }
        let lastLine = String(decoding: tail, as: UTF8.self)
            .split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .last(where: { !$0.isEmpty })
        let outcome: Outcome
        if killed {
            outcome = .timedOut
        } else if status & 0x7f == 0 {
            outcome = .exited((status >> 8) & 0xff)
        } else {
            outcome = .signaled(status & 0x7f)
        }
        return Result(outcome: outcome, lastErrorLine: lastLine.map { String($0.prefix(2000)) })
    }

    private static let spawnLock = NSLock()

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }

    private static func withCStrings<R>(
        _ strings: [String],
        _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
    ) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
