import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    static let messages = [
        "Timeout CONNECTING to db-1",
        "keyNotFound: total",
        "100% of quota used",
        "column snake_case missing",
        #"path C:\temp\x not found"#,
        "ÄBC unicode upper",
        "äbc unicode lower",
        "value ' OR 1=1 -- rejected",
    ]

    /// 48 letters that differ in every field a filter reads.
    static func filterFixture() -> [DeadLetter] {
        let sources = ["orders", "payments", "emails", #"it's "quoted""#]
        let reasons: [FailureReason] = [.validation, .timeout, .dependency, FailureReason("custom", retryable: false)]
        let errorTypes = ["DecodingError", "URLError", "PostgresError"]
        let statuses: [DeadLetterStatus] = [.dead, .retrying, .parked]
        return make(48, seed: 11, interval: .seconds(3600)) { index, letter in
            letter.source = sources[index % 4]
            letter.reason = reasons[(index / 4) % 4]
            letter.errorType = errorTypes[index % 3]
            letter.errorMessage = messages[(index * 3) % messages.count]
            letter.fingerprint = Fingerprint.compute(errorType: letter.errorType, message: letter.errorMessage)
            letter.attempts = 1 + index % 5
            letter.lastFailedAt = letter.firstFailedAt.adding(.seconds(60 * (index % 7)))
            letter.status = statuses[(index / 2) % 3]
            letter.nextAttemptAt = letter.status == .retrying ? letter.lastFailedAt.adding(.seconds(30)) : nil
            letter.expiresAt = index % 3 == 0 ? nil : DeadLetterFixtures.epoch.adding(.seconds(7200 * index))
            // Not text, so that searches select by the message alone (see searchFixture for payloads).
            letter.payload = Data([0xFF, 0xFE, UInt8(index)])
        }
    }

    /// Each filter field alone selects exactly what ``DeadLetters/DeadLetterFilter/matches(_:)`` selects.
    static func filterEachField(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        let middle = letters[20]
        let cases: [(String, DeadLetterFilter)] = [
            ("ids", DeadLetterFilter(ids: [letters[3].id, letters[17].id, DeadLetterFixtures.nextID()])),
            ("sources", DeadLetterFilter(sources: ["payments"])),
            ("two sources", DeadLetterFilter(sources: ["orders", #"it's "quoted""#])),
            ("reasons", DeadLetterFilter(reasons: ["timeout", "custom"])),
            ("errorTypes", DeadLetterFilter(errorTypes: ["URLError"])),
            ("fingerprints", DeadLetterFilter(fingerprints: [letters[0].fingerprint, letters[1].fingerprint])),
            ("statuses", DeadLetterFilter(statuses: [.retrying])),
            ("two statuses", DeadLetterFilter(statuses: [.dead, .parked])),
            ("since", DeadLetterFilter(since: middle.lastFailedAt)),
            ("until", DeadLetterFilter(until: middle.lastFailedAt)),
            ("minAttempts", DeadLetterFilter(minAttempts: 3)),
            ("search", DeadLetterFilter(search: "quota")),
            ("expiresBefore", DeadLetterFilter(expiresBefore: letters[25].expiresAt)),
        ]
        for (name, filter) in cases {
            let want = expected(letters, filter)
            #expect(!want.isEmpty && want.count < letters.count, "the fixture narrows by \(name)")
            try await expectSelects(store, filter, in: letters, name)
        }
        try await expectSelects(store, DeadLetterFilter(), in: letters, count: 48, "the empty filter")
        try await expectSelects(store, DeadLetterFilter(search: ""), in: letters, count: 48, "an empty search")
        try await expectSelects(
            store,
            DeadLetterFilter(ids: [DeadLetterFixtures.nextID()]),
            in: letters,
            count: 0,
            "an unknown id"
        )
    }

    /// `since` and `minAttempts` include their bound, `until` excludes it, `expiresBefore` includes it and
    /// never selects letters that do not expire; times compare at millisecond precision.
    static func filterBoundaries(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        let k = letters[20]
        let sinceK = try await everything(store, DeadLetterFilter(since: k.lastFailedAt))
        #expect(sinceK.contains { $0.id == k.id }, "since includes its bound")
        let untilK = try await everything(store, DeadLetterFilter(until: k.lastFailedAt))
        #expect(!untilK.contains { $0.id == k.id }, "until excludes its bound")
        let window = DeadLetterFilter(since: k.lastFailedAt, until: k.lastFailedAt.adding(.milliseconds(1)))
        try await expectSelects(store, window, in: letters, "a one-millisecond window")
        #expect(try await everything(store, window).map(\.id) == [k.id])
        // A bound a fraction of a millisecond off rounds to the same millisecond, as `matches` does.
        let fraction = DeadLetterFilter(since: k.lastFailedAt.addingTimeInterval(0.000_4))
        try await expectSelects(store, fraction, in: letters, "since with a sub-millisecond fraction")
        let expiring = try #require(k.expiresAt)
        let expires = try await everything(store, DeadLetterFilter(expiresBefore: expiring))
        #expect(expires.contains { $0.id == k.id }, "expiresBefore includes its bound")
        #expect(expires.allSatisfy { $0.expiresAt != nil }, "letters that never expire are not selected")
        try await expectSelects(
            store,
            DeadLetterFilter(expiresBefore: .distantFuture),
            in: letters,
            count: 32,
            "far future"
        )
        try await expectSelects(store, DeadLetterFilter(minAttempts: 5), in: letters, "minAttempts at the maximum")
        #expect(try await everything(store, DeadLetterFilter(minAttempts: 5)).allSatisfy { $0.attempts == 5 })
        try await expectSelects(store, DeadLetterFilter(minAttempts: 6), in: letters, count: 0, "minAttempts above all")
    }

    /// Fields combine with AND; values within a field with OR.
    static func filterCombined(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        let filters = [
            DeadLetterFilter(sources: ["orders", "payments"], statuses: [.dead, .retrying], minAttempts: 2),
            DeadLetterFilter(
                reasons: ["validation", "timeout"],
                errorTypes: ["DecodingError", "URLError"],
                search: "o"
            ),
            DeadLetterFilter(statuses: [.parked], since: letters[10].lastFailedAt, until: letters[40].lastFailedAt),
            DeadLetterFilter(ids: letters.map(\.id), sources: ["emails"], expiresBefore: letters[47].expiresAt),
            DeadLetterFilter(sources: ["orders"], statuses: [.parked], minAttempts: 5, search: "zzz"),
        ]
        for (index, filter) in filters.enumerated() {
            try await expectSelects(store, filter, in: letters, "combined filter \(index)")
        }
        #expect(!expected(letters, filters[0]).isEmpty)
        #expect(!expected(letters, filters[2]).isEmpty)
        #expect(expected(letters, filters[4]).isEmpty)
    }

    /// `search` finds a substring of the error message, folding only ASCII letters: `timeout connecting`
    /// finds `Timeout CONNECTING`, but `äbc` does not find `ÄBC`.
    static func filterSearchIsASCIICaseInsensitive(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        let cases: [(String, Int)] = [
            ("timeout connecting", 6), ("TIMEOUT connecting TO DB-1", 6), ("db-1", 6), ("KEYNOTFOUND", 6),
            ("äbc", 6), ("ÄBC", 6), ("Äbc", 6), ("ÄBC UNICODE", 6), ("unicode", 12), ("bc unicode", 12),
        ]
        for (search, count) in cases {
            try await expectSelects(
                store,
                DeadLetterFilter(search: search),
                in: letters,
                count: count,
                "search \(search)"
            )
        }
        let lower = try await everything(store, DeadLetterFilter(search: "äbc"))
        #expect(lower.allSatisfy { $0.errorMessage == "äbc unicode lower" }, "non-ASCII letters are not folded")
    }

    /// Hostile values are matched literally: SQL quotes and comments, LIKE wildcards, escapes and NUL.
    ///
    /// Decision: a value containing NUL selects nothing (stored text never holds NUL) and is not an error.
    static func filterHostileValuesMatchLiterally(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        let searches: [(String, Int)] = [
            ("' OR 1=1 --", 6), ("%", 6), ("_", 6), (#"\"#, 6), (#"C:\temp\x"#, 6), ("%%", 0), ("_a", 0),
            ("\u{0}", 0), ("total\u{0}", 0), (#"\%"#, 0), ("'", 6), ("\"", 0), ("'; DROP TABLE dead_letters; --", 0),
            ("[a-z]", 0), (".*", 0), ("*", 0),
        ]
        for (search, count) in searches {
            try await expectSelects(
                store,
                DeadLetterFilter(search: search),
                in: letters,
                count: count,
                "search \(search.debugDescription)"
            )
        }
        let hostile = ["' OR 1=1 --", "%", "_", #"\"#, "\u{0}", "orders' OR '1'='1", "*"]
        for value in hostile {
            try await expectSelects(
                store,
                DeadLetterFilter(ids: [value]),
                in: letters,
                count: 0,
                "ids \(value.debugDescription)"
            )
            try await expectSelects(
                store,
                DeadLetterFilter(sources: [value]),
                in: letters,
                count: 0,
                "sources \(value.debugDescription)"
            )
            try await expectSelects(
                store,
                DeadLetterFilter(reasons: [value]),
                in: letters,
                count: 0,
                "reasons \(value.debugDescription)"
            )
            try await expectSelects(
                store,
                DeadLetterFilter(errorTypes: [value]),
                in: letters,
                count: 0,
                "errorTypes \(value.debugDescription)"
            )
            try await expectSelects(
                store,
                DeadLetterFilter(fingerprints: [value]),
                in: letters,
                count: 0,
                "fingerprints \(value.debugDescription)"
            )
        }
        try await expectSelects(
            store,
            DeadLetterFilter(sources: [#"it's "quoted""#]),
            in: letters,
            count: 12,
            "a quoted source"
        )
        #expect(try await store.redrive(DeadLetterFilter(sources: ["' OR 1=1 --"]), now: now, limit: nil) == 0)
        #expect(try await store.count(DeadLetterFilter()) == 48)
    }

    /// `count` equals the number of letters each filter selects, and follows appends and deletes.
    static func countMatchesFilter(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = filterFixture()
        try await store.append(letters)
        #expect(try await store.count(DeadLetterFilter()) == 48)
        for status in DeadLetterStatus.allCases {
            let filter = DeadLetterFilter(statuses: [status])
            #expect(try await store.count(filter) == expected(letters, filter).count)
        }
        #expect(try await store.delete(ids: Array(letters.prefix(5)).map(\.id)) == 5)
        #expect(try await store.count(DeadLetterFilter()) == 43)
        let remaining = Array(letters.dropFirst(5))
        let filter = DeadLetterFilter(sources: ["orders"], minAttempts: 2)
        #expect(try await store.count(filter) == expected(remaining, filter).count)
    }
}
