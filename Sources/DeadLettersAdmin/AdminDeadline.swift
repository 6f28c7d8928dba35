import Synchronization

/// Deadlines for the admin routes, so that a store that does not answer (a database gone away) never leaves a
/// request unanswered.
enum AdminDeadline {
    /// `body`'s result, or `nil` when it has not finished within `timeout`: then it is cancelled and left to
    /// end in the background, and the caller goes on at once, even if `body` ignores cancellation.
    static func race<R: Sendable>(
        _ timeout: Duration,
        _ body: @escaping @Sendable () async throws -> R
    ) async -> Result<R, any Error>? {
        let once = Once()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Result<R, any Error>?, Never>) in
            let work = Task {
                let result: Result<R, any Error>
                do {
                    result = .success(try await body())
                } catch {
                    result = .failure(error)
                }
                if once.claim() { continuation.resume(returning: result) }
            }
            Task {
                try? await Task.sleep(for: timeout)
                if once.claim() {
                    work.cancel()
                    continuation.resume(returning: nil)
                }
            }
        }
    }

    /// Runs `body`, cancelled after `timeout` with ``DeadLetterAdminError`` 503 `timeout`. Structured: it
    /// returns once `body` has ended, which the store's own deadlines (a connection, a statement) bound.
    static func run<R: Sendable>(
        _ timeout: Duration,
        _ body: () async throws -> R
    ) async throws -> R {
        try await withoutActuallyEscaping(body) { body in
            // The group ends before `body` goes out of scope, and `body` runs in one child task.
            let work = UncheckedBox(body)
            return try await withThrowingTaskGroup(of: R?.self) { group in
                group.addTask { try await work.value() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let value = first else {
                    throw DeadLetterAdminError.timeout(timeout)
                }
                return value
            }
        }
    }
}

/// True for the first caller of ``claim()`` only.
private final class Once: Sendable {
    private let claimed = Atomic<Bool>(false)

    func claim() -> Bool {
        self.claimed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}

/// A value handed to a child task of a group that ends before the value's scope does.
private struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
