import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// An archive that keeps what it is given, to check what the queue archived.
final class MemoryArchive: DeadLetterArchive {
    let archived = PThreadLock<[(reason: String, letters: [DeadLetter])]>([])

    func archive(_ letters: [DeadLetter], reason: String) async throws {
        self.archived.withLock { $0.append((reason, letters)) }
    }

    var letters: [DeadLetter] { self.archived.withLock { $0.flatMap(\.letters) } }
    var reasons: [String] { self.archived.withLock { $0.map(\.reason) } }
}

struct TestFailure: Error, CustomStringConvertible, DeadLetterReasonProviding {
    var message: String
    var failureReason: FailureReason
    init(_ message: String, reason: FailureReason = .dependency) {
        self.message = message
        self.failureReason = reason
    }
    var description: String { self.message }
}

/// A queue on a memory store with a manual clock, no jitter and fixed, easy-to-check delays.
struct QueueHarness: Sendable {
    let clock = ManualClock()
    let store = MemoryDeadLetterStore()
    let archive = MemoryArchive()
    let metrics = TestMetricsFactory()
    let queue: DeadLetterQueue

    init(
        immediateAttempts: Int = 3,
        delayedAttempts: Int = 3,
        configure: (inout DeadLetterQueue.Configuration) -> Void = { _ in }
    ) throws {
        var configuration = DeadLetterQueue.Configuration()
        configuration.retryPolicy = RetryPolicy(
            immediateAttempts: immediateAttempts,
            immediateBackoff: .fixed(.milliseconds(100)),
            delayedAttempts: delayedAttempts,
            delayedBackoff: .exponential(initial: .seconds(10), multiplier: 2, max: .seconds(3600)),
            jitter: .none
        )
        configuration.archive = self.archive
        configuration.metricsFactory = self.metrics
        configuration.circuitBreaker = nil
        configuration.instanceID = "test-instance"
        configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        configure(&configuration)
        self.queue = try DeadLetterQueue(
            store: self.store,
            configuration: configuration,
            clock: self.clock,
            random: SeededRandom(seed: 7)
        )
    }

    /// Runs `body` while the queue runs in a ServiceGroup, then shuts it down gracefully.
    func running(_ body: () async throws -> Void) async throws {
        let group = ServiceGroup(services: [self.queue], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

extension AsyncStream<DeadLetterEvent>.Iterator {
    /// The next event of `kind`, skipping others.
    mutating func next(_ kind: DeadLetterEvent.Kind) async -> DeadLetterEvent? {
        while let event = await self.next() {
            if event.kind == kind { return event }
        }
        return nil
    }
}

/// A value that tasks share by reference, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    // A pthread lock rather than `Synchronization.Mutex`, which ThreadSanitizer reports as racing on Linux.
    private let mutex: PThreadLock<Value>
    init(_ value: Value) { self.mutex = PThreadLock(value) }
    func withLock<T: Sendable>(_ body: (inout Value) throws -> T) rethrows -> T {
        try self.mutex.withLock(body)
    }
}
