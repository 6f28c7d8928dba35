import DeadLettersSQLite
import DeadLettersTesting
import Testing

@Suite("SQLite store conformance")
struct SQLiteConformanceTests {
    @Test(arguments: DeadLetterStoreConformance.checks)
    func conformance(_ check: String) async throws {
        try await DeadLetterStoreConformance.run(check) { try makeFreshStore() }
    }
}
