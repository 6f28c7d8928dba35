import DeadLetters
import DeadLettersTesting
import Foundation
import PostgresNIO
import Testing

@testable import DeadLettersPostgres

@Suite(
    "PostgreSQL store: running totals for the summary",
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresTalliesTests {
    /// Every letter, but through the filtered path that scans the rows instead of reading the totals.
    private static let everything = DeadLetterFilter(minAttempts: 0)

    /// Letters whose first failures straddle the age bounds and the 10-minute buckets around `now`.
    private static func letters(now: Date, count: Int, seed: UInt64) -> [DeadLetter] {
        let offsets: [Int64] = [
            0, 1, 3_599_999, 3_600_000, 3_600_001, 21_600_000, 21_600_001, 86_399_999, 86_400_000, 86_400_001,
            200_000_000,
        ]
        let sources = ["orders", "payments", "emails"]
        let reasons: [FailureReason] = [.processing, .timeout, .validation]
        return DeadLetterFixtures.letters(count: count, seed: seed) { index, letter in
            let first = now.adding(.milliseconds(-offsets[index % offsets.count] - Int64(index / offsets.count)))
            letter.firstFailedAt = first
            letter.lastFailedAt = first.adding(.seconds(Int64(index % 7)))
            letter.source = sources[index % 3]
            letter.reason = reasons[(index / 3) % 3]
            letter.errorType = index % 4 == 0 ? "TimeoutError" : "DecodingError"
            letter.attempts = 1 + index % 5
            letter.status = index % 5 == 0 ? .parked : .retrying
            letter.nextAttemptAt = letter.status == .retrying ? first : nil
        }
    }

    @Test("four instances adding, claiming, releasing, completing, redriving and deleting at once: totals stay exact")
    func concurrentInstances() async throws {
        let schema = PostgresTestServer.freshSchema()
        let now = DeadLetterFixtures.epoch.adding(.seconds(86_400 * 3))
        try await PostgresTestServer.withHarnesses(4) { harnesses in
            let stores = try harnesses.map { try $0.makeStore(schema: schema, maxBatchSize: 50) }
            try await stores[0].migrate()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (instance, store) in stores.enumerated() {
                    group.addTask {
                        let mine = Self.letters(now: now, count: 600, seed: UInt64(instance + 1))
                        // Small concurrent appends, so that group commits run side by side.
                        try await withThrowingTaskGroup(of: Void.self) { adders in
                            for part in 0..<12 {
                                adders.addTask { try await store.append(Array(mine[(part * 50)..<(part * 50 + 50)])) }
                            }
                            try await adders.waitForAll()
                        }
                        let owner = "instance-\(instance)"
                        for round in 0..<4 {
                            // Compactions run beside the other instances' writes.
                            try await store.compactTotals()
                            let claimed = try await store.claimDue(
                                now: now,
                                limit: 40,
                                owner: owner,
                                leaseUntil: now.adding(.seconds(60)),
                                sources: ["orders", "payments", "emails"]
                            )
                            for (index, letter) in claimed.enumerated() {
                                if index % 3 == 0 {
                                    #expect(try await store.complete(id: letter.id, owner: owner))
                                } else {
                                    var changed = letter
                                    changed.attempts += 2
                                    changed.status = index % 3 == 1 ? .dead : .retrying
                                    changed.reason = .dependency
                                    changed.source = "moved-\(round)"
                                    changed.nextAttemptAt = changed.status == .retrying ? now : nil
                                    #expect(try await store.release(changed, owner: owner))
                                }
                            }
                        }
                        _ = try await store.redrive(DeadLetterFilter(statuses: [.parked]), now: now, limit: 30)
                        _ = try await store.delete(ids: mine.prefix(40).map(\.id))
                    }
                }
                try await group.waitForAll()
            }
            let fast = try await stores[1].summary(DeadLetterFilter(), now: now)
            let scanned = try await stores[2].summary(Self.everything, now: now)
            #expect(fast == scanned)
            #expect(fast.total == (try await stores[3].count(DeadLetterFilter())))
            #expect(fast.total > 1000)
            #expect(fast.byAge.values.allSatisfy { $0 > 0 }, "\(fast.byAge)")
            #expect(try await stores[0].usage().count == fast.total)
            // Compacted, the totals hold one row per key.
            try await stores[0].compactTotals()
            let quoted = "\"\(schema)\""
            let keys = try await harnesses[0].int(
                "SELECT count(*) FROM (SELECT DISTINCT source, reason, error_type, status FROM \(quoted).letters) AS k"
            )
            #expect(try await harnesses[0].int("SELECT count(*) FROM \(quoted).tallies") == keys)
            #expect(try await stores[0].summary(DeadLetterFilter(), now: now) == scanned)
        }
    }

    @Test(
        "a version-1 store with letters migrates to the current version: totals count its letters, then follow changes"
    )
    func migratesFromVersionOne() async throws {
        try await PostgresTestServer.withHarness { harness in
            let schema = PostgresTestServer.freshSchema()
            harness.adopt(schema)
            let quoted = "\"\(schema)\""
            try await harness.sql("CREATE SCHEMA \(quoted)")
            try await harness.sql("CREATE TABLE \(quoted).schema_version (id int PRIMARY KEY, version bigint NOT NULL)")
            let versionOne = try #require(PostgresDeadLetterStore.migrations.first { $0.version == 1 })
            for statement in versionOne.statements {
                try await harness.sql(statement.replacing("$schema", with: quoted))
            }
            try await harness.sql("INSERT INTO \(quoted).schema_version VALUES (1, 1)")
            let now = DeadLetterFixtures.epoch.adding(.seconds(86_400 * 3))
            let old = Self.letters(now: now, count: 300, seed: 7)
            var columns = LetterColumns()
            for letter in old { try columns.append(letter) }
            _ = try await harness.client.query(columns.insert(into: quoted)).collect()

            let reader = try harness.makeStore(schema: schema, migrate: false)
            let stale = await #expect(throws: DeadLetterError.self) { _ = try await reader.count(DeadLetterFilter()) }
            #expect(stale?.code == .incompatibleStore)
            #expect(stale?.message.contains("dlq migrate") == true)

            let store = try harness.makeStore(schema: schema, migrate: false)
            try await store.migrate()
            #expect(
                try await harness.int("SELECT version FROM \(quoted).schema_version")
                    == Int64(PostgresDeadLetterStore.schemaVersion)
            )
            let migrated = try await store.summary(DeadLetterFilter(), now: now)
            #expect(migrated.total == 300)
            #expect(migrated == (try await store.summary(Self.everything, now: now)))

            // An instance of an older version, still running, inserts without counting: it is refused.
            var uncounted = LetterColumns()
            for letter in Self.letters(now: now, count: 3, seed: 9) { try uncounted.append(letter) }
            let refused = await #expect(throws: PSQLError.self) {
                _ = try await harness.client.query(uncounted.insert(into: quoted)).collect()
            }
            #expect(refused?.serverInfo?[.message]?.contains("upgrade it") == true)
            // Its group commit calls version 2's `add_letters`, which says the same.
            let versionTwoCall = PostgresQuery(
                unsafeSQL: "SELECT \(quoted).add_letters(\((1...20).map { "$\($0)" }.joined(separator: ", ")))",
                binds: uncounted.binds
            )
            let refusedCall = await #expect(throws: PSQLError.self) {
                _ = try await harness.client.query(versionTwoCall).collect()
            }
            #expect(refusedCall?.serverInfo?[.message]?.contains("upgrade it") == true)

            try await store.append(Self.letters(now: now, count: 50, seed: 8))
            _ = try await store.delete(ids: old.prefix(20).map(\.id))
            let after = try await store.summary(DeadLetterFilter(), now: now)
            #expect(after.total == 330)
            #expect(after == (try await store.summary(Self.everything, now: now)))
            // Migrating again changes nothing.
            try await store.migrate()
            #expect(try await store.summary(DeadLetterFilter(), now: now) == after)
        }
    }

    @Test("attempts near Int64.max, as a store written before the bound may hold, fail no write, compaction or summary")
    func attemptsNearInt64Max() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            try await store.migrate()
            let letters = DeadLetterFixtures.letters(count: 2)
            try await store.append(letters)
            let quoted = "\"\(store.configuration.schema)\""
            // Two letters of one key: the update trigger sums their attempts, past Int64.max.
            try await harness.sql("UPDATE \(quoted).letters SET attempts = 9223372036854775000")
            try await store.compactTotals()
            let summary = try await store.summary(DeadLetterFilter(), now: DeadLetterFixtures.epoch)
            #expect(summary.total == 2)
            #expect(summary.averageAttempts > 1e18)
            _ = try await store.delete(ids: [letters[0].id])
            try await store.compactTotals()
            #expect(try await store.count(DeadLetterFilter()) == 1)
        }
    }

    @Test("sources that differ only in Unicode normalization are two keys of the totals, as PostgreSQL keeps them")
    func canonicallyEquivalentSourcesStayApart() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            try await store.migrate()
            let now = DeadLetterFixtures.epoch.adding(.seconds(86_400))
            let letters = DeadLetterFixtures.letters(count: 3) { index, letter in
                letter.source = index == 0 ? "caf\u{E9}" : "cafe\u{301}"  // "café", composed and decomposed
            }
            try await store.append(letters)
            _ = try await store.delete(ids: [letters[2].id])
            try await store.compactTotals()
            let quoted = "\"\(store.configuration.schema)\""
            #expect(try await harness.int("SELECT count(*) FROM \(quoted).tallies") == 2)
            #expect(try await harness.int("SELECT count FROM \(quoted).tallies WHERE source = 'cafe\u{301}'") == 1)
            #expect(try await store.summary(DeadLetterFilter(), now: now) == store.summary(Self.everything, now: now))
        }
    }

    @Test("ids that differ only in Unicode normalization are two letters, as the primary key keeps them")
    func canonicallyEquivalentIDsAreTwoLetters() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            try await store.migrate()
            let base = DeadLetterFixtures.letters(count: 4)
            var letters = base
            letters[0].id = "caf\u{E9}-1"
            letters[1].id = "cafe\u{301}-1"
            letters[2].id = "caf\u{E9}-2"
            letters[3].id = "cafe\u{301}-2"
            // One append with both spellings (the group commit's fast path), …
            #expect(try await store.append(Array(letters[0..<2])).inserted == 2)
            // … one after the other spelling is stored (the careful path, which looks for stored ids), …
            #expect(
                try await store.append([letters[2]], onConflict: .fail, limits: .init(maxEntries: 100)).inserted == 1
            )
            #expect(
                try await store.append([letters[3]], onConflict: .fail, limits: .init(maxEntries: 100)).inserted == 1
            )
            // … and an import of both spellings again: each is already stored.
            let again = try await store.importLetters(Self.sequence(Array(letters[0..<2])), onConflict: .skip)
            #expect(again.inserted == 0 && again.skipped == 2)
            #expect(try await store.count(DeadLetterFilter()) == 4)
            #expect(try await store.usage().count == 4)
        }
    }

    private static func sequence(_ letters: [DeadLetter]) -> AsyncStream<DeadLetter> {
        AsyncStream { continuation in
            for letter in letters { continuation.yield(letter) }
            continuation.finish()
        }
    }

    @Test("a running store refreshes the planner's statistics once its appends pass 10,000 letters, not before")
    func runningStoreAnalyzesAfterTenThousandAppends() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            try await store.migrate()
            let analyzed = """
                SELECT count(*) FROM pg_stat_user_tables
                WHERE schemaname = '\(store.configuration.schema)' AND relname = 'letters' AND last_analyze IS NOT NULL
                """
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.run() }
                try await store.append(DeadLetterFixtures.letters(count: 9_999, seed: 1))
                try await store.append(DeadLetterFixtures.letters(count: 1, seed: 2))
                // The server reports the ANALYZE shortly after it ran: poll for it, up to 20 s.
                var done = false
                for _ in 0..<400 {
                    done = try await harness.int(analyzed) == 1
                    if done { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(done, "the 10,000th letter asked the running store to analyze the table")
                group.cancelAll()
            }
            // 9,999 letters did not: a store that stopped at that count was never analyzed.
            let other = try harness.makeStore()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await other.run() }
                try await other.append(DeadLetterFixtures.letters(count: 9_999, seed: 3))
                // A statement on the same connection pool after the append: any request would be served by now
                // only if it existed; run() is idle, so a few round trips later the table is still unanalyzed.
                for _ in 0..<20 { _ = try await other.count(DeadLetterFilter()) }
                group.cancelAll()
            }
            let unanalyzed = """
                SELECT count(*) FROM pg_stat_user_tables
                WHERE schemaname = '\(other.configuration.schema)' AND relname = 'letters' AND last_analyze IS NOT NULL
                """
            #expect(try await harness.int(unanalyzed) == 0)
        }
    }

    @Test("after analyze(), a page of one fingerprint in one source reads the (fingerprint, source, id) index")
    func fingerprintAndSourcePageUsesItsIndex() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            try await store.migrate()
            let sources = ["orders", "payments", "emails", "webhooks", "inventory"]
            try await store.append(
                DeadLetterFixtures.letters(count: 5000, interval: .milliseconds(10)) { index, letter in
                    letter.fingerprint = "f\(index % 50)"
                    letter.source = sources[(index / 50) % 5]
                }
            )
            let schema = "\"\(store.configuration.schema)\""
            try await store.analyze()
            let analyzed = try await harness.int(
                """
                SELECT count(*) FROM pg_stat_user_tables
                WHERE schemaname = '\(store.configuration.schema)' AND relname = 'letters' AND last_analyze IS NOT NULL
                """
            )
            #expect(analyzed == 1, "analyze() refreshed the statistics")
            let rows = try await harness.client.query(
                PostgresQuery(
                    unsafeSQL: """
                        EXPLAIN SELECT id FROM \(schema).letters
                        WHERE fingerprint = 'f7'::text AND source = 'emails'::text ORDER BY id LIMIT 101
                        """
                )
            ).collect()
            let plan = try rows.map { try $0.decode(String.self) }.joined(separator: "\n")
            #expect(plan.contains("letters_fingerprint_source"), "\(plan)")
        }
    }
}
