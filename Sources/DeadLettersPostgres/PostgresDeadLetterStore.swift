public import DeadLetters
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// The shared store for many instances: dead letters in PostgreSQL, through postgres-nio's `PostgresClient`.
///
/// Every instance of a service points at the same database and schema; claims take row locks with
/// `FOR UPDATE SKIP LOCKED` and a lease, so no two instances run the same letter at once, and a crashed
/// instance's lease expires so that others claim its letters again. Concurrent appends are coalesced into
/// multi-row inserts in one transaction (group commit); `append` returns once that transaction is committed.
///
/// The store needs a running `PostgresClient`:
/// - ``init(url:configuration:logger:)`` makes its own client; run the store (it is a `Service`) in your
///   `ServiceGroup`, or use ``withStore(url:configuration:logger:_:)``;
/// - ``init(client:configuration:logger:)`` uses a client that you run.
///
/// The tables live in ``Configuration/schema``, created and upgraded by ``migrate()`` (or on first use with
/// ``Configuration/migrate``). A redrive is seen by idle instances at their next poll of due letters (the queue
/// polls every second by default); the store does not use `LISTEN`/`NOTIFY`.
public final class PostgresDeadLetterStore: DeadLetterStore, Service, CustomStringConvertible {
    let client: PostgresClient
    let ownsClient: Bool
    let endpoint: PostgresEndpoint?
    let configuration: Configuration
    let logger: Logger
    let schema: String
    let opened = Atomic<Bool>(false)
    /// Whether the pool is failing and operations connect directly (see `PostgresDeadLetterStore+Connections.swift`).
    let degraded = Atomic<Bool>(false)
    /// Direct connections open now.
    let directConnections = Atomic<Int>(0)
    /// Letters this instance appended, for ``countInserted(_:)``.
    let inserted = Atomic<Int>(0)
    let gate = OpenGate()
    let commits = GroupCommit(minLettersBesideCommit: GroupCommit.defaultMinLettersBesideCommit)
    /// Where ``countInserted(_:)`` asks for a statistics refresh while ``run()`` runs.
    let analyzeRequests = Mutex<AsyncStream<Void>.Continuation?>(nil)
    let completions: Coalescer<(id: String, owner: String), Bool>

    /// A store on a client that you run: call `client.run()` (or add the client to your `ServiceGroup`).
    /// - Parameters:
    ///   - client: the client, running or soon to be.
    ///   - configuration: the schema and batching; see ``Configuration``.
    ///   - logger: where the store logs; nothing by default.
    /// - Throws: ``DeadLetters/DeadLetterError/Code/invalidConfiguration`` for an invalid configuration.
    public init(
        client: PostgresClient,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "dead-letters.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws {
        try configuration.validate()
        self.client = client
        self.ownsClient = false
        self.endpoint = nil
        self.configuration = configuration
        self.logger = logger
        self.schema = "\"\(configuration.schema)\""
        self.completions = Coalescer(maxLeaders: configuration.maxConcurrentCommits, maxBatch: 1000)
    }

    /// A store with its own client, from a URL: `postgres://user:password@host:port/database?sslmode=…`.
    ///
    /// `sslmode` is `disable`, `prefer` (the default), `require`, `verify-ca` or `verify-full`, as libpq reads
    /// them; `sslrootcert=PATH` names the certificate authorities to trust; `schema=NAME` overrides
    /// ``Configuration/schema``. Run the store (it is a `Service`) for its client to work.
    /// - Throws: ``DeadLetters/DeadLetterError/Code/invalidConfiguration`` naming what is wrong in the URL
    ///   (never the password) or in the configuration.
    public init(
        url: String,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "dead-letters.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws {
        let endpoint = try PostgresEndpoint(url: url)
        var configuration = configuration
        if let schema = endpoint.schema { configuration.schema = schema }
        try configuration.validate()
        self.client = PostgresClient(
            configuration: endpoint.clientConfiguration(configuration),
            backgroundLogger: logger
        )
        self.ownsClient = true
        self.endpoint = endpoint
        self.configuration = configuration
        self.logger = logger
        self.schema = "\"\(configuration.schema)\""
        self.completions = Coalescer(maxLeaders: configuration.maxConcurrentCommits, maxBatch: 1000)
    }

    /// Runs a store made from `url` for the duration of `body`, then shuts its client down.
    /// - Parameters:
    ///   - url: see ``init(url:configuration:logger:)``.
    ///   - body: what to do with the store.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws, or a configuration error.
    public static func withStore<Result: Sendable>(
        url: String,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "dead-letters.postgres", factory: { _ in SwiftLogNoOpLogHandler() }),
        _ body: (PostgresDeadLetterStore) async throws -> Result
    ) async throws -> Result {
        let store = try PostgresDeadLetterStore(url: url, configuration: configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            return try await body(store)
        }
    }

    /// Runs the store's own client until graceful shutdown or cancellation; with a client you run yourself,
    /// waits for shutdown. Meanwhile it refreshes the planner's statistics when this instance's appends ask
    /// for it (see ``analyzeAfterAppends``).
    public func run() async throws {
        let (requests, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.analyzeRequests.withLock { $0 = continuation }
        defer {
            self.analyzeRequests.withLock { $0 = nil }
            continuation.finish()
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in requests {
                    do {
                        try await self.analyze()
                    } catch {
                        self.logger.debug("could not analyze the letters table", metadata: ["error": "\(error)"])
                    }
                }
            }
            if self.ownsClient {
                await self.client.run()
            } else {
                try? await gracefulShutdown()
            }
            group.cancelAll()
        }
    }

    /// `PostgreSQL store user@host:port/database, schema NAME`, without the password.
    public var description: String {
        "PostgreSQL store \(self.endpoint?.description ?? "(client)"), schema \(self.configuration.schema)"
    }

    /// Where errors say they happened.
    var place: String {
        if let endpoint = self.endpoint {
            return "PostgreSQL at \(endpoint.hostAndPort), database '\(endpoint.database)', user '\(endpoint.username)'"
        }
        return "PostgreSQL"
    }

    // MARK: - Running statements

    /// Makes sure the schema is ready, runs `body` and turns errors into `DeadLetterError`s.
    func perform<R: Sendable>(_ operation: String, _ body: () async throws -> R) async throws -> R {
        do {
            try await self.open()
            return try await body()
        } catch {
            throw self.storeError(error, operation)
        }
    }

    /// Runs `body` in one transaction on one connection, retried when PostgreSQL reports a deadlock or a
    /// serialization failure.
    func transaction<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await self.withConnection { connection in
                    try await self.execute(connection, "BEGIN")
                    do {
                        let result = try await body(connection)
                        try await self.execute(connection, "COMMIT")
                        return result
                    } catch {
                        try? await self.execute(connection, "ROLLBACK")
                        throw error
                    }
                }
            } catch let error as PSQLError where attempt < 5 && Self.isRetryable(error) {
                self.logger.debug(
                    "retrying a transaction",
                    metadata: ["dlq.postgres.sqlstate": "\(Self.sqlState(error) ?? "")"]
                )
                continue
            }
        }
    }

    /// Runs a statement and reads all its rows, so that its errors are thrown here. The rows are collected on
    /// the connection's event loop and handed over once (the row sequence hops between the event loop and the
    /// task for each batch of rows it reads).
    @discardableResult
    func rows(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> [PostgresRow] {
        try await self.rowsWithTimeout(connection, query)
    }

    /// Runs a statement on a pooled connection and reads all its rows.
    @discardableResult
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await self.withConnection { connection in try await self.rows(connection, query) }
    }

    func execute(_ connection: PostgresConnection, _ sql: String) async throws {
        try await self.rows(connection, PostgresQuery(unsafeSQL: sql))
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        guard let state = self.sqlState(error) else { return false }
        return state == "40001" || state == "40P01"
    }

    static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// The slot of the usage counters a transaction updates, in SQL: from its transaction id, so that
    /// concurrent transactions (whose ids are close) update different rows and do not wait for each other.
    static let usageSlotSQL = "txid_current() % \(usageSlots)"
    static let usageSlots: Int64 = 16
}

/// Lets the first caller open the store while the others wait for it.
actor OpenGate {
    private var opening = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run(_ body: @Sendable () async throws -> Void, isOpen: @Sendable () -> Bool) async throws {
        while !isOpen() {
            if self.opening {
                await withCheckedContinuation { self.waiters.append($0) }
                continue
            }
            self.opening = true
            defer {
                self.opening = false
                let waiters = self.waiters
                self.waiters = []
                for waiter in waiters { waiter.resume() }
            }
            try await body()
            return
        }
    }
}

extension DeadLetterStore where Self == PostgresDeadLetterStore {
    /// A PostgreSQL store with its own client, from a `postgres://user:password@host:port/database` URL; see
    /// ``PostgresDeadLetterStore/init(url:configuration:logger:)``. Run it (it is a `Service`).
    /// - Throws: ``DeadLetters/DeadLetterError/Code/invalidConfiguration`` for a bad URL or configuration.
    public static func postgres(
        url: String,
        configuration: PostgresDeadLetterStore.Configuration = PostgresDeadLetterStore.Configuration()
    ) throws -> PostgresDeadLetterStore {
        try PostgresDeadLetterStore(url: url, configuration: configuration)
    }
}
