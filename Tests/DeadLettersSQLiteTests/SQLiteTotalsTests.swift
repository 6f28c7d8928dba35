import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import Testing

/// The whole store's count, usage, summary and groups read running totals kept by triggers; a filter that
/// selects everything (`minAttempts: 0`) computes the same from the letters themselves. They must agree
/// after every kind of change.
@Suite("SQLite running totals")
struct SQLiteTotalsTests {
    let everything = DeadLetterFilter(minAttempts: 0)

    func expectTotalsAgree(_ store: SQLiteDeadLetterStore, now: Date, _ step: String) async throws {
        let counted = try await store.count(self.everything)
        #expect(try await store.count(DeadLetterFilter()) == counted, "\(step): count")
        let letters = try await store.page(DeadLetterFilter(), after: nil, limit: 10_000).letters
        #expect(letters.count == counted)
        #expect(try await store.usage().bytes == letters.reduce(0) { $0 + $1.storageSize }, "\(step): bytes")
        for offset in [0, 1800, 5 * 3600, 20 * 3600, 30 * 3600] {
            let at = now.addingTimeInterval(TimeInterval(offset))
            let fast = try await store.summary(DeadLetterFilter(), now: at)
            let slow = try await store.summary(self.everything, now: at)
            #expect(fast == slow, "\(step): summary at +\(offset) s")
        }
        let fastGroups = try await store.groups(DeadLetterFilter(), limit: 100)
        let slowGroups = try await store.groups(self.everything, limit: 100)
        #expect(fastGroups.map(\.fingerprint) == slowGroups.map(\.fingerprint), "\(step): groups")
        #expect(fastGroups.map(\.count) == slowGroups.map(\.count))
        #expect(fastGroups.map(\.sources) == slowGroups.map(\.sources))
        #expect(fastGroups.map(\.firstFailedAt) == slowGroups.map(\.firstFailedAt))
        #expect(fastGroups.map(\.lastFailedAt) == slowGroups.map(\.lastFailedAt))
        #expect(fastGroups.map(\.errorType) == slowGroups.map(\.errorType))
    }

    @Test("sources that differ only in Unicode normalization: totals agree with the letters after a delete")
    func canonicallyEquivalentSources() async throws {
        let store = try makeFreshStore()
        let now = DeadLetterFixtures.epoch.addingTimeInterval(3600)
        let letters = DeadLetterFixtures.letters(count: 3) { index, letter in
            letter.source = index == 0 ? "caf\u{E9}" : "cafe\u{301}"  // "café", composed and decomposed
        }
        try await store.append(letters)
        try await self.expectTotalsAgree(store, now: now, "appended")
        _ = try await store.delete(ids: [letters[2].id])
        try await self.expectTotalsAgree(store, now: now, "deleted")
    }

    @Test func totalsFollowEveryChange() async throws {
        let store = try makeFreshStore()
        var random = SeededRandom(seed: 99)
        let start = DeadLetterFixtures.epoch
        let now = start.addingTimeInterval(40 * 3600)
        let letters = (0..<400).map { index in
            let first = start.addingTimeInterval(TimeInterval(Int.random(in: 0..<(40 * 3600), using: &random)))
            return DeadLetterFixtures.letter(
                id: DeadLetterFixtures.nextID(at: start),
                source: ["orders", "emails", "payments"][index % 3],
                reason: [.timeout, .validation, .dependency][index % 3 == 0 ? 0 : index % 2 + 1],
                errorType: "Type\(index % 4)",
                errorMessage: "failure \(index % 7)",
                attempts: Int.random(in: 1...9, using: &random),
                firstFailedAt: first,
                lastFailedAt: first.addingTimeInterval(TimeInterval(Int.random(in: 0...7200, using: &random))),
                status: [.dead, .retrying, .parked][index % 3],
                fingerprint: "fp-\(index % 5)",
                payload: Data(repeating: 1, count: index)
            )
        }
        try await store.append(letters)
        try await self.expectTotalsAgree(store, now: now, "append")

        #expect(try await store.delete(ids: letters.prefix(60).map(\.id)) == 60)
        try await self.expectTotalsAgree(store, now: now, "delete")

        let claimed = try await store.claim(ids: letters[100..<140].map(\.id), now: now, owner: "w", leaseUntil: now)
        for (index, var letter) in claimed.enumerated() {
            letter.source = "moved"
            letter.fingerprint = "fp-released"
            letter.attempts += 10
            letter.status = .parked
            letter.payload = Data(repeating: 2, count: 1000)
            if index % 2 == 0 {
                #expect(try await store.release(letter, owner: "w"))
            } else {
                #expect(try await store.complete(id: letter.id, owner: "w"))
            }
        }
        try await self.expectTotalsAgree(store, now: now, "release and complete")

        #expect(try await store.redrive(DeadLetterFilter(statuses: [.dead]), now: now, limit: nil) > 0)
        try await self.expectTotalsAgree(store, now: now, "redrive")

        let evicting = (0..<30).map { _ in DeadLetterFixtures.letter(firstFailedAt: now) }
        let limits = DeadLetterLimits(maxEntries: 250, overflow: .dropOldest)
        let result = try await store.append(evicting, onConflict: .fail, limits: limits)
        #expect(result.evicted.count > 0)
        #expect(try await store.usage().count == 250)
        try await self.expectTotalsAgree(store, now: now, "evict")
    }
}
