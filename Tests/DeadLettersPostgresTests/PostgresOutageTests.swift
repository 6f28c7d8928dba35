import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import PostgresNIO
import Testing

@testable import DeadLettersPostgres

/// The server goes away and comes back (a proxy in front of it refuses connections and cuts the open ones, as
/// `pg_ctl stop -m fast` does): operations fail at once with the cause, and work again as soon as it is back,
/// without waiting for the pool's backoff. One test at a time: each starts pools and logins of its own, which
/// on 2 cores held up the other's first statement past its short `queryTimeout`.
@Suite(
    "PostgreSQL outage",
    .serialized,
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresOutageTests {
    @Test("While the server is away, operations fail within 2 s naming the cause; within 2 s of its return, they work")
    func awayAndBack() async throws {
        let endpoint = try PostgresTestServer.endpoint()
        let proxy = try TCPProxy(targetPort: endpoint.port)
        defer { proxy.takeAway() }
        let schema = PostgresTestServer.freshSchema()
        let url = try PostgresTestServer.url(port: proxy.port) + "?sslmode=disable&schema=\(schema)"
        let store = try PostgresDeadLetterStore(url: url, configuration: .init(migrate: true))
        let clock = ContinuousClock()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            try await store.append([DeadLetterFixtures.letter()])
            let before = try await store.count(DeadLetterFilter())
            #expect(before == 1)

            proxy.takeAway()
            for round in 0..<3 {
                let start = clock.now
                let error = await #expect(throws: DeadLetterError.self, "round \(round)") {
                    _ = try await store.count(DeadLetterFilter())
                }
                #expect(clock.now - start < .seconds(2), "round \(round): \(clock.now - start)")
                #expect(error?.code == .storeUnavailable)
                let message = error?.message ?? ""
                #expect(message.contains("127.0.0.1:\(proxy.port)"), "\(message)")
                #expect(message.lowercased().contains("refused") || message.contains("closed"), "\(message)")
                #expect(!message.contains("Generic description"), "\(message)")
                let append = await #expect(throws: DeadLetterError.self) {
                    try await store.append([DeadLetterFixtures.letter()])
                }
                #expect(append?.code == .storeUnavailable)
            }

            // Away long enough for the pool's backoff to grow; then back.
            try await Task.sleep(for: .seconds(3))
            try proxy.bringBack()
            let start = clock.now
            let back = try await store.count(DeadLetterFilter())
            #expect(back == 1)
            #expect(clock.now - start < .seconds(2), "\(clock.now - start)")
            try await store.append([DeadLetterFixtures.letter()])
            let after = try await store.count(DeadLetterFilter())
            #expect(after == 2)
        }
        try await PostgresTestServer.withHarness { harness in harness.adopt(schema) }
    }

    @Test("A statement the server never answers fails after queryTimeout, naming it")
    func silentServer() async throws {
        let schema = PostgresTestServer.freshSchema()
        let url = try PostgresTestServer.url(query: "schema=\(schema)")
        // Migrated first with the default timeout: a migration may wait for another test's (they take the same
        // lock), which is not what this test is about.
        _ = try await PostgresDeadLetterStore.withStore(url: url, configuration: .init(migrate: true)) {
            try await $0.migrate()
        }
        var configuration = PostgresDeadLetterStore.Configuration(migrate: false)
        // 2 s, not 1: the timeout also covers getting a connection, and a debug build's first login to a fresh
        // server (SCRAM) took about a second on a loaded 2-core machine.
        configuration.queryTimeout = .seconds(2)
        let store = try PostgresDeadLetterStore(url: url, configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            let empty = try await store.count(DeadLetterFilter())
            #expect(empty == 0)
            // Three rounds: the statement right after a timeout once got the closed connection back from the
            // pool (one run in six), and failed.
            for round in 0..<3 {
                let start = ContinuousClock.now
                let error = await #expect(throws: DeadLetterError.self, "round \(round)") {
                    _ = try await store.rows(.init(unsafeSQL: "SELECT pg_sleep(30)"))
                }
                #expect(ContinuousClock.now - start < .seconds(5), "round \(round)")
                #expect(
                    error?.message.contains("did not answer a statement within 2 s") == true,
                    "round \(round): \(String(describing: error))"
                )
                let still = try await store.count(DeadLetterFilter())
                #expect(still == 0, "round \(round): the store works on")
            }
        }
        try await PostgresTestServer.withHarness { harness in harness.adopt(schema) }
    }
}
