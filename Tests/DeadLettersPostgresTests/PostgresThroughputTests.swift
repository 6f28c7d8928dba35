import DeadLetters
import DeadLettersPostgres
import DeadLettersTesting
import Foundation
import Logging
import Testing

/// A throughput measurement, run on request: `DLQ_POSTGRES_BENCH=1`. It prints letters per second; the
/// benchmarks package reports the figures.
@Suite(
    "PostgreSQL store throughput",
    .enabled(if: PostgresTestServer.isAvailable && ProcessInfo.processInfo.environment["DLQ_POSTGRES_BENCH"] == "1")
)
struct PostgresThroughputTests {
    @Test("64 concurrent adders, one letter per durable append")
    func concurrentAdders() async throws {
        try await PostgresTestServer.withHarness { harness in
            let (logger, logs) = Logger.inMemory(level: .trace)
            let store = try harness.makeStore(logger: logger)
            try await store.migrate()
            let perTask = 200
            let letters = (0..<64).map { _ in (0..<perTask).map { _ in DeadLetterFixtures.letter() } }
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<64 {
                    group.addTask { for letter in letters[task] { try await store.append([letter]) } }
                }
                try await group.waitForAll()
            }
            let elapsed = (ContinuousClock.now - start).seconds
            let total = 64 * perTask
            print(
                "PostgreSQL durable append, 64 adders: \(Int(Double(total) / elapsed)) letters/s (\(total) in \(elapsed) s)"
            )
            let batches = logs.entries.filter { $0.message.description == "committed a batch" }.count
            print("  \(batches) transactions, \(Double(total) / Double(max(1, batches))) letters each")
            #expect(try await store.count(DeadLetterFilter()) == total)
        }
    }
}
