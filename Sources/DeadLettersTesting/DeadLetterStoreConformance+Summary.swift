import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    /// The summary the store must return for `letters` seen at `now`.
    static func referenceSummary(_ letters: [DeadLetter], now: Date) -> DeadLetterSummary {
        var summary = DeadLetterSummary(
            total: letters.count,
            byReason: [:],
            bySource: [:],
            byErrorType: [:],
            byStatus: Dictionary(uniqueKeysWithValues: DeadLetterStatus.allCases.map { ($0.rawValue, 0) }),
            byAge: Dictionary(uniqueKeysWithValues: DeadLetterSummary.ageBuckets.map { ($0, 0) }),
            oldestFailedAt: letters.map(\.firstFailedAt).min(),
            newestFailedAt: letters.map(\.lastFailedAt).max(),
            averageAttempts: letters.isEmpty
                ? 0 : Double(letters.reduce(0) { $0 + $1.attempts }) / Double(letters.count)
        )
        for letter in letters {
            summary.byReason[letter.reason.rawValue, default: 0] += 1
            summary.bySource[letter.source, default: 0] += 1
            summary.byErrorType[letter.errorType, default: 0] += 1
            summary.byStatus[letter.status.rawValue, default: 0] += 1
            summary.byAge[DeadLetterSummary.ageBucket(firstFailedAt: letter.firstFailedAt, now: now), default: 0] += 1
        }
        return summary
    }

    static func expectSummary(
        _ got: DeadLetterSummary,
        _ want: DeadLetterSummary,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(got.total == want.total, sourceLocation: sourceLocation)
        #expect(got.byReason == want.byReason, sourceLocation: sourceLocation)
        #expect(got.bySource == want.bySource, sourceLocation: sourceLocation)
        #expect(got.byErrorType == want.byErrorType, sourceLocation: sourceLocation)
        #expect(got.byStatus == want.byStatus, sourceLocation: sourceLocation)
        #expect(got.byAge == want.byAge, sourceLocation: sourceLocation)
        #expect(
            got.oldestFailedAt?.millisecondsSince1970 == want.oldestFailedAt?.millisecondsSince1970,
            sourceLocation: sourceLocation
        )
        #expect(
            got.newestFailedAt?.millisecondsSince1970 == want.newestFailedAt?.millisecondsSince1970,
            sourceLocation: sourceLocation
        )
        #expect(abs(got.averageAttempts - want.averageAttempts) < 1e-9, sourceLocation: sourceLocation)
    }

    /// Every field of the summary: counts by reason, source, error type and status (all three statuses
    /// present), age buckets (all four present), oldest `firstFailedAt`, newest `lastFailedAt`, mean attempts.
    static func summaryEveryField(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        let at = DeadLetterFixtures.epoch.adding(.seconds(30 * 3600))
        let summary = try await store.summary(DeadLetterFilter(), now: at)
        let want = referenceSummary(letters, now: at)
        expectSummary(summary, want)
        #expect(summary.total == 48)
        #expect(summary.bySource["payments"] == 12)
        #expect(Set(summary.byStatus.keys) == ["retrying", "dead", "parked"])
        #expect(Set(summary.byAge.keys) == Set(DeadLetterSummary.ageBuckets))
        #expect(summary.oldestFailedAt == letters[0].firstFailedAt)
    }

    /// Age buckets by the time since `firstFailedAt`: `<1h`, `1h-6h`, `6h-24h`, `>24h`, each lower bound
    /// inclusive; a letter from the future counts as `<1h`.
    static func summaryAgeBuckets(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let at = now
        let ages: [Int64] = [
            -60_000, 0, 3_599_999, 3_600_000, 21_599_999, 21_600_000, 86_399_999, 86_400_000, 30 * 86_400_000,
        ]
        let letters = ages.map { age in
            DeadLetterFixtures.letter(firstFailedAt: Date(millisecondsSince1970: at.millisecondsSince1970 - age))
        }
        try await store.append(letters)
        let summary = try await store.summary(DeadLetterFilter(), now: at)
        #expect(summary.byAge == ["<1h": 3, "1h-6h": 2, "6h-24h": 2, ">24h": 2])
        let later = try await store.summary(DeadLetterFilter(), now: at.adding(.seconds(86_400 * 365)))
        #expect(later.byAge == ["<1h": 0, "1h-6h": 0, "6h-24h": 0, ">24h": 9])
        expectSummary(summary, referenceSummary(letters, now: at))
    }

    /// A summary covers only the letters the filter selects, and keeps every status and bucket key.
    static func summaryWithFilter(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        let at = DeadLetterFixtures.epoch.adding(.seconds(12 * 3600))
        let filters = [
            DeadLetterFilter(sources: ["payments"]),
            DeadLetterFilter(statuses: [.parked], minAttempts: 2),
            DeadLetterFilter(since: letters[5].lastFailedAt, search: "unicode"),
            DeadLetterFilter(sources: ["nowhere"]),
        ]
        for filter in filters {
            let summary = try await store.summary(filter, now: at)
            expectSummary(summary, referenceSummary(expected(letters, filter), now: at))
        }
        let none = try await store.summary(DeadLetterFilter(sources: ["nowhere"]), now: at)
        #expect(none.byStatus == ["retrying": 0, "dead": 0, "parked": 0])
    }

    /// An empty store's summary: zero total, empty counts, every status and bucket at 0, no dates, mean 0.
    static func summaryOfEmptyStore(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let summary = try await store.summary(DeadLetterFilter(), now: now)
        #expect(summary.total == 0)
        #expect(summary.byReason.isEmpty && summary.bySource.isEmpty && summary.byErrorType.isEmpty)
        #expect(summary.byStatus == ["retrying": 0, "dead": 0, "parked": 0])
        #expect(summary.byAge == ["<1h": 0, "1h-6h": 0, "6h-24h": 0, ">24h": 0])
        #expect(summary.oldestFailedAt == nil)
        #expect(summary.newestFailedAt == nil)
        #expect(summary.averageAttempts == 0)
    }

    /// Letters for the group checks: fingerprints `fp-b` ×5 (two sources), `fp-a` ×3, `fp-c` ×3, `fp-d` ×1.
    static func groupFixture() -> [DeadLetter] {
        let plan: [(String, String, String)] = [
            ("fp-b", "payments", "TypeB"), ("fp-a", "orders", "TypeA"), ("fp-b", "orders", "TypeB"),
            ("fp-c", "emails", "TypeC"), ("fp-b", "payments", "TypeB"), ("fp-d", "orders", "TypeD"),
            ("fp-a", "orders", "TypeA"), ("fp-c", "emails", "TypeC"), ("fp-b", "orders", "TypeB"),
            ("fp-a", "orders", "TypeA"), ("fp-c", "emails", "TypeC"), ("fp-b", "payments", "TypeB"),
        ]
        return make(plan.count, seed: 21, interval: .seconds(60)) { index, letter in
            let (fingerprint, source, type) = plan[index]
            letter.fingerprint = fingerprint
            letter.source = source
            letter.errorType = type
            letter.errorMessage = "\(type) failure number \(index)"
            // Later letters do not all fail last: lastFailedAt is not in id order.
            letter.lastFailedAt = letter.firstFailedAt.adding(.seconds(Int64((plan.count - index) * 100)))
        }
    }

    /// Groups: one per fingerprint, largest first, ties by fingerprint; count, error type, a sample message
    /// of the group, sources sorted and unique, earliest `firstFailedAt`, latest `lastFailedAt`.
    static func groupsCountsAndOrder(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = groupFixture()
        try await store.append(letters)
        let groups = try await store.groups(DeadLetterFilter(), limit: 100)
        #expect(groups.map(\.fingerprint) == ["fp-b", "fp-a", "fp-c", "fp-d"])
        #expect(groups.map(\.count) == [5, 3, 3, 1])
        for group in groups {
            let members = letters.filter { $0.fingerprint == group.fingerprint }
            #expect(group.errorType == members[0].errorType)
            #expect(members.contains { $0.errorMessage == group.sampleMessage }, "the sample is one of the group's")
            #expect(group.sources == Array(Set(members.map(\.source))).sorted())
            #expect(group.firstFailedAt == members.map(\.firstFailedAt).min())
            #expect(group.lastFailedAt == members.map(\.lastFailedAt).max())
        }
        #expect(groups.first?.sources == ["orders", "payments"])
    }

    /// Groups honour `limit` (the largest first) and cover only the letters the filter selects.
    static func groupsLimitAndFilter(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = groupFixture()
        try await store.append(letters)
        let two = try await store.groups(DeadLetterFilter(), limit: 2)
        #expect(two.map(\.fingerprint) == ["fp-b", "fp-a"])
        let orders = try await store.groups(DeadLetterFilter(sources: ["orders"]), limit: 10)
        #expect(orders.map(\.fingerprint) == ["fp-a", "fp-b", "fp-d"])
        #expect(orders.map(\.count) == [3, 2, 1])
        #expect(orders.allSatisfy { $0.sources == ["orders"] })
        let ordersB = letters.filter { $0.fingerprint == "fp-b" && $0.source == "orders" }
        #expect(orders[1].firstFailedAt == ordersB.map(\.firstFailedAt).min())
        #expect(orders[1].lastFailedAt == ordersB.map(\.lastFailedAt).max())
        #expect(try await store.groups(DeadLetterFilter(sources: ["nowhere"]), limit: 10).isEmpty)
    }
}

extension DeadLetterStoreConformance {
    /// A timeline counts the selected letters in the bucket of their last failure, by reason, nothing outside
    /// its window, and lists the failures whose earliest first failure is in the window, earliest first.
    static func timelineCountsByLastFailure(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let hour: Int64 = 3_600_000
        let start = Date(millisecondsSince1970: (now.millisecondsSince1970 / hour - 3) * hour)
        func at(_ hours: Double) -> Date {
            Date(millisecondsSince1970: start.millisecondsSince1970 + Int64(hours * Double(hour)))
        }
        // (source, reason, fingerprint, first failed, last failed), in hours from the window's start.
        let specs: [(String, FailureReason, String, Double, Double)] = [
            ("orders", .timeout, "aaaaaaaaaaaaaaaa", -5, 0),  // in bucket 0; its failure is older than the window
            ("orders", .timeout, "aaaaaaaaaaaaaaaa", 0.5, 0.5),
            ("orders", .validation, "bbbbbbbbbbbbbbbb", 1.25, 1.5),  // first seen in bucket 1
            ("orders", .validation, "bbbbbbbbbbbbbbbb", 1.75, 3.9),
            ("emails", .dependency, "cccccccccccccccc", 2.5, 2.5),  // another source: first seen in bucket 2
            ("orders", .timeout, "dddddddddddddddd", -2, -0.01),  // before the window
            ("orders", .timeout, "eeeeeeeeeeeeeeee", 4, 4.5),  // after it
        ]
        let letters = make(specs.count, seed: 53) { index, letter in
            let (source, reason, fingerprint, first, last) = specs[index]
            letter.source = source
            letter.reason = reason
            letter.fingerprint = fingerprint
            letter.firstFailedAt = at(first)
            letter.lastFailedAt = at(last)
        }
        try await store.append(letters)
        let empty = DeadLetterTimeline(start: start, bucket: .seconds(3600), count: 4)
        let all = try await store.timeline(DeadLetterFilter(), into: empty)
        #expect(all.buckets.map(\.start) == empty.buckets.map(\.start))
        #expect(
            all.buckets.map(\.reasons) == [["timeout": 2], ["validation": 1], ["dependency": 1], ["validation": 1]]
        )
        #expect(all.total == 5)
        #expect(all.firstSeen.map(\.fingerprint) == ["bbbbbbbbbbbbbbbb", "cccccccccccccccc"])
        #expect(all.firstSeen.first?.at == at(1.25))
        #expect(all.firstSeen.first?.reason == "validation")
        #expect(all.firstSeen.first?.errorType == letters[2].errorType)

        let orders = try await store.timeline(DeadLetterFilter(sources: ["orders"]), into: empty)
        #expect(orders.buckets.map(\.total) == [2, 1, 0, 1])
        #expect(orders.firstSeen.map(\.fingerprint) == ["bbbbbbbbbbbbbbbb"])
        let narrowed = try await store.timeline(DeadLetterFilter(since: at(1)), into: empty)
        #expect(narrowed.buckets.map(\.total) == [0, 1, 1, 1], "the filter's own window narrows it")
    }
}
