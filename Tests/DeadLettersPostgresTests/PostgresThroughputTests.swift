import DeadLetters
import DeadLettersPostgres
import DeadLettersTesting
import Foundation
import Logging
import Testing

/// Throughput measurements, run on request (`DLQ_POSTGRES_BENCH=1`, best in release). They print their
/// figures; the benchmarks package reports them.
@Suite(
    "PostgreSQL store throughput",
    .enabled(if: PostgresTestServer.isAvailable && ProcessInfo.processInfo.environment["DLQ_POSTGRES_BENCH"] == "1")
)
struct PostgresThroughputTests {
    private static let commits = Int(ProcessInfo.processInfo.environment["DLQ_POSTGRES_BENCH_COMMITS"] ?? "") ?? 4

    @Test("64 concurrent adders, one letter per durable append")
    func concurrentAdders() async throws {
        try await PostgresTestServer.withHarness { harness in
            let (logger, logs) = Logger.inMemory(level: .trace)
            let store = try harness.makeStore(maxConcurrentCommits: Self.commits, logger: logger)
            try await store.migrate()
            let perTask = 500
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
            let batches = logs.entries.filter { $0.message.description == "committed a batch" }.count
            print(
                "PostgreSQL durable append, 64 adders, \(Self.commits) committers: "
                    + "\(Int(Double(total) / elapsed)) letters/s; \(batches) transactions of "
                    + "\(total / max(1, batches)) letters on average"
            )
            #expect(try await store.count(DeadLetterFilter()) == total)
        }
    }

    @Test("a filtered page, a count and the summary at 1,000,000 letters")
    func largeStore() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            try await store.migrate()
            let count = Int(ProcessInfo.processInfo.environment["DLQ_POSTGRES_BENCH_LETTERS"] ?? "") ?? 1_000_000
            let start = ContinuousClock.now
            let letters = GeneratedLetters(count: count)
            let imported = try await store.importLetters(letters, onConflict: .fail)
            let importTime = (ContinuousClock.now - start).seconds
            print("PostgreSQL import of \(count) letters: \(Int(Double(count) / importTime)) letters/s")
            #expect(imported.inserted == count)
            try await harness.sql("ANALYZE")
            func time(_ label: String, _ body: () async throws -> Void) async throws {
                var best = Double.infinity
                for _ in 0..<5 {
                    let start = ContinuousClock.now
                    try await body()
                    best = min(best, (ContinuousClock.now - start).seconds)
                }
                print("PostgreSQL \(label) at \(count) letters: \(best * 1000) ms (best of 5)")
            }
            let filter = DeadLetterFilter(sources: ["payments"], reasons: ["timeout"])
            try await time("filtered page of 100") {
                let page = try await store.page(filter, after: nil, limit: 100)
                #expect(page.letters.count == 100)
            }
            try await time("filtered page of 100, deep cursor") {
                _ = try await store.page(filter, after: DeadLetterFixtures.nextID(), limit: 100)
            }
            try await time("usage") { _ = try await store.usage() }
            try await time("count of a source") { _ = try await store.count(DeadLetterFilter(sources: ["emails"])) }
            try await time("summary") { _ = try await store.summary(DeadLetterFilter(), now: DeadLetterFixtures.epoch) }
        }
    }
}

/// `count` letters made one at a time, so that an import of millions keeps memory flat.
private struct GeneratedLetters: AsyncSequence, Sendable {
    typealias Element = DeadLetter
    let count: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        static let sources = ["orders", "payments", "emails", "webhooks"]
        static let reasons: [FailureReason] = [.validation, .timeout, .dependency, .decoding]
        let count: Int
        var index = 0

        mutating func next() async -> DeadLetter? {
            guard self.index < self.count else { return nil }
            defer { self.index += 1 }
            let index = self.index
            return DeadLetterFixtures.letter(
                source: Self.sources[index % 4],
                reason: Self.reasons[index / 4 % 4],
                errorMessage: "failure \(index % 97)",
                attempts: 1 + index % 5,
                firstFailedAt: DeadLetterFixtures.epoch.adding(.milliseconds(Int64(index)))
            )
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(count: self.count) }
}
