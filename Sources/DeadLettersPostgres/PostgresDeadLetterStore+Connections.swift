import DeadLetters
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import _ConnectionPoolModule

/// Connections with deadlines: every wait for a connection and every statement has one, so that no operation
/// hangs when the server goes away, and operations work again as soon as it is back.
///
/// postgres-nio's pool queues a request for a connection until it has one: while the server is down that is
/// until its circuit breaker trips (60 s), and when it is back, until its backoff lets it try again (up to 60 s
/// more). So an operation waits for a pooled connection at most 1 s (100 ms while the pool is failing: the
/// store is then *degraded*), then connects directly, within ``Configuration/connectTimeout``: it either works
/// on the server that is back or fails at once with the cause (connection refused, the server shutting down,
/// a timeout). At most 4 direct connections are open at once; beyond, operations wait for the pool, at most
/// ``Configuration/connectTimeout``. The first operation that gets a pooled connection quickly again ends the
/// degraded mode. A store on a client you pass has no URL to connect with: it waits for the pool at most
/// ``Configuration/connectTimeout``.
extension PostgresDeadLetterStore {
    /// How long an operation waits for a pooled connection before it connects directly.
    static let poolWait: Duration = .seconds(1)
    /// The same while the pool is failing.
    static let degradedPoolWait: Duration = .milliseconds(100)
    /// At most this many direct connections at once; beyond, operations wait for the pool.
    static let maximumDirectConnections = 4

    /// Runs `body` with a connection: a pooled one, else (the pool failing, with a store made from a URL) a
    /// direct one.
    /// - Throws: ``DeadLetters/DeadLetterError`` `storeUnavailable` naming the cause when no connection can be
    ///   had within ``Configuration/connectTimeout``, or what `body` throws.
    func withConnection<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        let degraded = self.degraded.load(ordering: .relaxed)
        let canConnectDirectly = self.endpoint != nil
        let wait =
            canConnectDirectly
            ? min(degraded ? Self.degradedPoolWait : Self.poolWait, self.configuration.connectTimeout)
            : self.configuration.connectTimeout
        let pooled: PooledOutcome<R>
        do {
            pooled = try await self.withPooledConnection(within: wait, body)
        } catch let error where Self.isConnectionFailure(error) && canConnectDirectly {
            // The pool gave up (its circuit breaker) or the connection broke: the server is likely away.
            self.enterDegradedMode(error)
            throw error
        }
        switch pooled {
        case .done(let value):
            if degraded, self.degraded.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
                self.logger.info(
                    "PostgreSQL answers again through the pool",
                    metadata: ["dlq.postgres": "\(self.place)"]
                )
            }
            return value
        case .poolFailed(let error) where canConnectDirectly:
            self.enterDegradedMode(error)
            return try await self.withDirectConnection(body)
        case .poolFailed(let error):
            throw self.unreachable("the connection pool failed: \(Self.describe(error))")
        case .noConnectionInTime where canConnectDirectly:
            self.enterDegradedMode(nil)
            return try await self.withDirectConnection(body)
        case .noConnectionInTime:
            throw self.unreachable("no connection within \(Self.seconds(wait))")
        }
    }

    /// How many closed connections in a row the pool may lease before an operation fails.
    static let closedLeaseRetries = 3

    /// What a lease gave: the body's value, or a connection that was already closed (or came too late).
    enum Leased<R: Sendable>: Sendable {
        case value(R)
        case closed
    }

    enum PooledOutcome<R: Sendable>: Sendable {
        case done(R)
        case poolFailed(any Error)
        case noConnectionInTime
    }

    /// Runs `body` on a pooled connection, unless the pool gives none within `wait`.
    private func withPooledConnection<R: Sendable>(
        within wait: Duration,
        _ body: (PostgresConnection) async throws -> R
    ) async throws -> PooledOutcome<R> {
        try await withoutActuallyEscaping(body) { body in
            // The lease ends before `body` goes out of scope, and `body` runs in one child task at a time.
            let work = UncheckedSendable(body)
            let client = self.client
            return try await Self.lease(
                within: wait,
                isClosed: { $0.isClosed },
                lease: { use in try await client.withConnection { try await use($0) } },
                body: { try await work.value($0) }
            )
        }
    }

    /// Runs `body` on a connection that `lease` gives within `wait`, or says why not.
    ///
    /// A connection that is already closed when leased (the pool learns of a close a moment after it happens)
    /// is given back and another one leased, at most ``closedLeaseRetries`` times; it does not stop the
    /// deadline. Only an open connection does: the lease and the deadline race for one flag, and `body` runs
    /// only when the lease won. (When a closed connection counted as leased in time, an operation right after
    /// the server went away waited for the pool's next connection until its circuit breaker tripped, 60 s; and
    /// a lease just after the deadline could run `body` beside the direct connection that replaced it.)
    static func lease<Connection: Sendable, R: Sendable>(
        within wait: Duration,
        isClosed: @escaping @Sendable (Connection) -> Bool,
        lease:
            @escaping @Sendable (_ use: @escaping @Sendable (Connection) async throws -> Leased<R>) async throws
            -> Leased<R>,
        body: @escaping @Sendable (Connection) async throws -> R
    ) async throws -> PooledOutcome<R> {
        // Claimed by the lease of an open connection or by the deadline, whichever comes first.
        let acquired = AcquiredFlag()
        // Set when the lease claimed it: errors are then the body's (or its connection's) to report.
        let leasedInTime = AcquiredFlag()
        return try await withThrowingTaskGroup(of: PooledOutcome<R>?.self) { group in
            group.addTask {
                do {
                    for _ in 0..<Self.closedLeaseRetries {
                        let leased = try await lease { connection in
                            if isClosed(connection) { return .closed }
                            // After the deadline the operation has gone on without this lease.
                            guard acquired.claim() else { return .closed }
                            leasedInTime.set()
                            return .value(try await body(connection))
                        }
                        if case .value(let value) = leased { return .done(value) }
                        if acquired.isSet { return nil }
                    }
                    throw ClosedConnection()
                } catch  where !leasedInTime.isSet && !Task.isCancelled {
                    // The pool failed: before the deadline, that is the outcome; after it, the deadline's is.
                    return acquired.claim() ? .poolFailed(error) : nil
                }
            }
            group.addTask {
                try await Task.sleep(for: wait)
                // Past the deadline, unless an open connection was leased first: the body may then take as long
                // as its statements do.
                return acquired.claim() ? .noConnectionInTime : nil
            }
            defer { group.cancelAll() }
            while let outcome = try await group.next() {
                if let outcome { return outcome }
            }
            throw CancellationError()
        }
    }

    /// Runs `body` on a connection of its own, opened within ``Configuration/connectTimeout`` and closed after.
    private func withDirectConnection<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        guard let endpoint = self.endpoint else { throw self.unreachable("no connection") }
        guard self.directConnections.add(1, ordering: .relaxed).newValue <= Self.maximumDirectConnections else {
            self.directConnections.subtract(1, ordering: .relaxed)
            // Enough direct connections already: wait for the pool, as long as a connection may take.
            switch try await self.withPooledConnection(within: self.configuration.connectTimeout, body) {
            case .done(let value): return value
            case .poolFailed(let error): throw self.unreachable(Self.describe(error))
            case .noConnectionInTime:
                throw self.unreachable("no connection within \(Self.seconds(self.configuration.connectTimeout))")
            }
        }
        defer { self.directConnections.subtract(1, ordering: .relaxed) }
        let configuration = try endpoint.connectionConfiguration(self.configuration)
        let timeout = self.configuration.connectTimeout
        let logger = self.logger
        let connection: PostgresConnection
        do {
            // Connecting is cancellable; the deadline covers the login too, not only the TCP connect.
            connection = try await withThrowingTaskGroup(of: PostgresConnection?.self) { group in
                group.addTask {
                    try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let connection = first else {
                    throw self.unreachable("no connection within \(Self.seconds(timeout))")
                }
                return connection
            }
        } catch let error as DeadLetterError {
            throw error
        } catch {
            throw self.unreachable(Self.describe(error))
        }
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private func enterDegradedMode(_ error: (any Error)?) {
        if self.degraded.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            self.logger.warning(
                "PostgreSQL does not answer through the pool: connecting directly until it does",
                metadata: ["dlq.postgres": "\(self.place)", "error": "\(error.map(Self.describe) ?? "timeout")"]
            )
        }
    }

    /// Whether `error` says that the connection or the pool failed, rather than the statement.
    static func isConnectionFailure(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            switch error.code {
            case .connectionError, .serverClosedConnection, .uncleanShutdown: return true
            default: return false
            }
        }
        if error is ClosedConnection { return true }
        // The pool's own errors (its circuit breaker) are not PSQLErrors.
        return error as? ConnectionPoolError == .connectionCreationCircuitBreakerTripped
    }

    /// A `storeUnavailable` error naming the server, the database, the user and `cause`.
    func unreachable(_ cause: String) -> DeadLetterError {
        let user = self.endpoint.map { "'\($0.username)'" } ?? "the configured user"
        let database = self.endpoint.map { "'\($0.database)'" } ?? "the configured database"
        let server = self.endpoint.map { "PostgreSQL at \($0.hostAndPort)" } ?? "PostgreSQL"
        return DeadLetterError(
            code: .storeUnavailable,
            message: "cannot reach \(server) (database \(database), user \(user)): \(cause)"
        )
    }

    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// Reads all the rows of a statement, giving up when the server has not answered within
    /// ``Configuration/queryTimeout``: a server that went silent (a lost network), or a connection that died
    /// before the statement reached it, fails the statement instead of hanging it; the connection is closed.
    func rowsWithTimeout(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> [PostgresRow] {
        // A statement written to a connection that is already closed is dropped without an answer.
        guard !connection.isClosed else { throw ClosedConnection() }
        let future: EventLoopFuture<PostgresQueryResult> = connection.query(query, logger: self.logger)
        guard let timeout = self.configuration.queryTimeout else { return try await future.get().rows }
        // Whichever comes first completes the answer: the statement's result, or the timeout (which does not
        // wait for the statement's future, as that may never complete on a connection that is already dead).
        let answer = connection.eventLoop.makePromise(of: [PostgresRow].self)
        let decided = AcquiredFlag()
        let (seconds, attoseconds) = timeout.components
        let failure = DeadLetterError(
            code: .storeUnavailable,
            message: "\(self.place) did not answer a statement within \(Self.seconds(timeout)); "
                + "the connection was closed"
        )
        let timer = connection.eventLoop.scheduleTask(
            in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        ) {
            guard decided.claim() else { return }
            // The answer fails once the connection is closed, not before: the pool hears of the close first
            // (its handler was registered earlier), so it does not lease this connection again.
            connection.close().whenComplete { _ in answer.fail(failure) }
        }
        future.whenComplete { result in
            guard decided.claim() else { return }
            timer.cancel()
            answer.completeWith(result.map(\.rows))
        }
        return try await answer.futureResult.get()
    }
}
