import Synchronization
import Testing

@testable import DeadLettersPostgres

/// How an operation leases a pooled connection within its deadline (``PostgresDeadLetterStore/lease``), with a
/// pool played by closures: no server needed.
@Suite("A pooled connection's lease and its deadline")
struct PooledLeaseTests {
    struct Connection: Sendable {
        var closed = false
    }

    struct PoolGaveUp: Error {}

    let clock = ContinuousClock()

    @Test("a connection already closed does not stop the deadline when the pool has no other to give")
    func aClosedConnectionThenNone() async throws {
        let leases = Mutex(0)
        let start = self.clock.now
        let outcome = try await PostgresDeadLetterStore.lease(
            within: .milliseconds(100),
            isClosed: { $0.closed },
            lease: { use in
                let lease = leases.withLock { count in
                    count += 1
                    return count
                }
                // The server just went away: the pool still holds the connection it cut, then has none.
                if lease == 1 { return try await use(Connection(closed: true)) }
                // Until its circuit breaker trips (60 s in postgres-nio), unless the lease is cancelled.
                try await Task.sleep(for: .seconds(30))
                throw PoolGaveUp()
            },
            body: { _ in 1 }
        )
        guard case .noConnectionInTime = outcome else {
            Issue.record("\(outcome)")
            return
        }
        // Within the deadline and the time to cancel the lease: seconds at most on a loaded machine.
        #expect(self.clock.now - start < .seconds(20))
        #expect(leases.withLock { $0 } == 2)
    }

    @Test("a connection leased after the deadline does not run the operation")
    func aLateLease() async throws {
        let runs = Mutex(0)
        let outcome = try await PostgresDeadLetterStore.lease(
            within: .milliseconds(100),
            isClosed: { $0.closed },
            lease: { use in
                // The pool hands its connection over late: when the operation, past its deadline, cancels the
                // lease (or after 10 s), cancelled or not.
                try? await Task.sleep(for: .seconds(10))
                return try await use(Connection())
            },
            body: { _ in runs.withLock { $0 += 1 } }
        )
        guard case .noConnectionInTime = outcome else {
            Issue.record("\(outcome)")
            return
        }
        // The lease has ended by now (the group waits for it): the operation went on without it.
        #expect(runs.withLock { $0 } == 0)
    }

    @Test("an open connection leased in time runs the operation once, however long it takes")
    func anOpenConnection() async throws {
        let runs = Mutex(0)
        let outcome = try await PostgresDeadLetterStore.lease(
            within: .milliseconds(100),
            isClosed: { $0.closed },
            lease: { use in try await use(Connection()) },
            body: { _ in
                try await Task.sleep(for: .milliseconds(300))
                runs.withLock { $0 += 1 }
                return 7
            }
        )
        guard case .done(let value) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(value == 7)
        #expect(runs.withLock { $0 } == 1)
    }

    @Test("the pool failing before the deadline, or giving only closed connections, is its failure")
    func poolFailures() async throws {
        let failed = try await PostgresDeadLetterStore.lease(
            within: .seconds(5),
            isClosed: { (_: Connection) in false },
            lease: { (_: @Sendable (Connection) async throws -> PostgresDeadLetterStore.Leased<Int>) in
                throw PoolGaveUp()
            },
            body: { _ in 1 }
        )
        guard case .poolFailed(let error) = failed else {
            Issue.record("\(failed)")
            return
        }
        #expect(error is PoolGaveUp)
        let leases = Mutex(0)
        let closed = try await PostgresDeadLetterStore.lease(
            within: .seconds(5),
            isClosed: { $0.closed },
            lease: { use in
                leases.withLock { $0 += 1 }
                return try await use(Connection(closed: true))
            },
            body: { _ in 1 }
        )
        guard case .poolFailed(let closedError) = closed else {
            Issue.record("\(closed)")
            return
        }
        #expect(closedError is ClosedConnection)
        #expect(leases.withLock { $0 } == PostgresDeadLetterStore.closedLeaseRetries)
    }
}
