import DeadLetters
import DeadLettersPostgres
import DeadLettersTesting
import Testing

@Suite(
    "PostgreSQL store conformance",
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresConformanceTests {
    @Test(arguments: DeadLetterStoreConformance.checks)
    func conformance(_ check: String) async throws {
        try await PostgresTestServer.withHarness { harness in
            try await DeadLetterStoreConformance.run(check) { try harness.makeStore() }
        }
    }
}
