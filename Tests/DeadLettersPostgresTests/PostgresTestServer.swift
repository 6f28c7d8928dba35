import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import DeadLettersPostgres

/// The server the tests use: `DLQ_POSTGRES_URL` (started by `scripts/test` with `scripts/postgres start`).
enum PostgresTestServer {
    static let url = PostgresTestEnvironment.url

    /// Set by `.ci/run`: without a server, the tests fail instead of being skipped.
    static let required = PostgresTestEnvironment.required

    static let isAvailable = PostgresTestEnvironment.isAvailable

    static let skipMessage: Comment =
        "DLQ_POSTGRES_URL is not set: PostgreSQL tests skipped (start a server with `scripts/postgres start`)"

    /// A new schema name, unique per test, so that tests run in parallel.
    static func freshSchema() -> String {
        "dlq_test_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    static func endpoint() throws -> PostgresEndpoint {
        try PostgresEndpoint(url: try #require(url, "DLQ_POSTGRES_URL"))
    }

    /// The URL with one part replaced.
    static func url(
        port: Int? = nil,
        password: String? = nil,
        database: String? = nil,
        query: String? = nil
    ) throws
        -> String
    {
        let endpoint = try self.endpoint()
        let user = endpoint.username
        let secret = password ?? endpoint.password ?? ""
        let host = endpoint.host
        return "postgres://\(user):\(secret)@\(host):\(port ?? endpoint.port)/\(database ?? endpoint.database)"
            + (query.map { "?" + $0 } ?? "")
    }

    /// Runs `body` with a running client and a factory of stores in fresh schemas, then drops those schemas.
    static func withHarness<R: Sendable>(_ body: (Harness) async throws -> R) async throws -> R {
        let configuration = try self.endpoint().clientConfiguration(.init(maximumConnections: 40))
        let client = PostgresClient(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let harness = Harness(client: client)
            do {
                let result = try await body(harness)
                try await harness.dropSchemas()
                return result
            } catch {
                try? await harness.dropSchemas()
                throw error
            }
        }
    }
}

extension PostgresTestServer {
    /// Runs `body` with `count` harnesses, each with its own client (its own connections), as separate
    /// instances of a service would have.
    static func withHarnesses<R: Sendable>(_ count: Int, _ body: ([Harness]) async throws -> R) async throws -> R {
        try await self.nest(count, [], body)
    }

    private static func nest<R: Sendable>(
        _ count: Int,
        _ harnesses: [Harness],
        _ body: ([Harness]) async throws -> R
    ) async throws -> R {
        if harnesses.count == count { return try await body(harnesses) }
        return try await self.withHarness { harness in try await self.nest(count, harnesses + [harness], body) }
    }
}

/// Makes stores in fresh schemas on one running client and remembers the schemas to drop.
final class Harness: Sendable {
    let client: PostgresClient
    private let schemas = Mutex<[String]>([])

    init(client: PostgresClient) {
        self.client = client
    }

    /// A store in `schema` (a fresh one by default), migrated on first use unless `migrate` is false.
    func makeStore(
        schema: String? = nil,
        migrate: Bool = true,
        maxBatchSize: Int = 2000,
        maxConcurrentCommits: Int = 4,
        logger: Logger = Logger(label: "dlq.test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws -> PostgresDeadLetterStore {
        let schema = schema ?? PostgresTestServer.freshSchema()
        self.schemas.withLock { if !$0.contains(schema) { $0.append(schema) } }
        return try PostgresDeadLetterStore(
            client: self.client,
            configuration: .init(
                schema: schema,
                migrate: migrate,
                maxBatchSize: maxBatchSize,
                maxConcurrentCommits: maxConcurrentCommits
            ),
            logger: logger
        )
    }

    /// Remembers a schema made another way, to drop it at the end.
    func adopt(_ schema: String) {
        self.schemas.withLock { if !$0.contains(schema) { $0.append(schema) } }
    }

    func sql(_ sql: String) async throws {
        _ = try await self.client.query(PostgresQuery(unsafeSQL: sql)).collect()
    }

    func int(_ sql: String) async throws -> Int64? {
        try await self.client.query(PostgresQuery(unsafeSQL: sql)).collect().first?.decode(Int64.self)
    }

    func dropSchemas() async throws {
        for schema in self.schemas.withLock({ $0 }) {
            try await self.sql("DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE")
        }
    }
}

@Suite("PostgreSQL server")
struct PostgresServerRequirementTests {
    @Test("the PostgreSQL tests run for real when DLQ_REQUIRE_POSTGRES=1")
    func serverIsGivenWhenRequired() {
        if PostgresTestServer.required {
            #expect(
                PostgresTestServer.url != nil,
                "DLQ_REQUIRE_POSTGRES=1 but DLQ_POSTGRES_URL is unset: the PostgreSQL tests would be skipped"
            )
        } else if PostgresTestServer.url == nil {
            print("note: \(PostgresTestServer.skipMessage)")
        }
    }
}
