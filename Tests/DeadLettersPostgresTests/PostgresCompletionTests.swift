import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@testable import DeadLettersPostgres

@Suite(
    "PostgreSQL store: completions coalesced into shared statements",
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresCompletionTests {
    @Test("hundreds of concurrent completes, right and wrong owners, twice for some: each caller gets its own answer")
    func concurrentCompletes() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore(maxConcurrentCommits: 2)
            let now = DeadLetterFixtures.epoch.adding(.seconds(3600))
            let letters = DeadLetterFixtures.letters(count: 300, interval: .milliseconds(5), seed: 21) { _, letter in
                letter.status = .retrying
                letter.nextAttemptAt = letter.lastFailedAt
            }
            try await store.append(letters)
            let ids = letters.map(\.id)
            let lease = now.adding(.seconds(60))
            let mine = try await store.claim(ids: Array(ids[0..<100]), now: now, owner: "a", leaseUntil: lease)
            let theirs = try await store.claim(ids: Array(ids[100..<200]), now: now, owner: "b", leaseUntil: lease)
            #expect(mine.count == 100 && theirs.count == 100)

            // (id, owner, expected: true, false, or nil when two calls race for the same letter)
            var calls: [(String, String, Bool?)] = []
            calls += ids[0..<100].map { ($0, "a", $0 < ids[20] ? nil : true) }
            calls += ids[0..<20].map { ($0, "a", nil) }
            calls += ids[100..<200].map { ($0, "a", false) }
            calls += ids[200..<300].map { ($0, "b", false) }
            let results = try await withThrowingTaskGroup(of: (String, Bool?, Bool).self) { group in
                for (id, owner, expected) in calls.shuffled() {
                    group.addTask { (id, expected, try await store.complete(id: id, owner: owner)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (id, expected, got) in results where expected != nil {
                #expect(got == expected, "\(id)")
            }
            // Of the two calls for each of the first 20 letters, exactly one removed it.
            let raced = Dictionary(grouping: results.filter { $0.1 == nil }, by: \.0)
            #expect(raced.count == 20)
            #expect(raced.values.allSatisfy { $0.filter(\.2).count == 1 })

            #expect(try await store.count(DeadLetterFilter()) == 200)
            #expect(try await store.usage().count == 200)
            #expect(try await store.summary(DeadLetterFilter(), now: now).total == 200)
            #expect(try await store.letter(id: ids[150])?.id == ids[150])
        }
    }
}
