import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension PostgresDeadLetterStore {
    /// The summary of every letter from the running totals (see `PostgresDeadLetterStore+Tallies.swift`), in
    /// one statement and so one snapshot: the totals' rows added up, the oldest and newest times from their
    /// indexes, and each age bound from the whole buckets before it plus an index count of its own bucket. It
    /// costs about the same at ten letters and at millions.
    func wholeStoreSummary(now: Date) async throws -> DeadLetterSummary {
        // A letter is past a bucket's limit when first_failed_at <= its bound.
        let bounds = DeadLetterSummary.ageBounds(now: now.millisecondsSince1970)
        var binds = PostgresBindings(capacity: 9)
        var olderThan: [String] = []
        for bound in bounds {
            let bucket = Self.bucket(ofMilliseconds: bound)
            binds.append(bucket)
            let whole = "$\(binds.count)"
            binds.append(bucket * Self.firstFailureBucket)
            let start = "$\(binds.count)"
            binds.append(bound)
            olderThan.append(
                """
                (SELECT coalesce(sum(count), 0)::int8 FROM \(self.schema).first_failures WHERE bucket < \(whole))
                    + (SELECT count(*) FROM \(self.schema).letters
                        WHERE first_failed_at >= \(start) AND first_failed_at <= $\(binds.count))
                """
            )
        }
        let sql = """
            WITH t AS (
                SELECT source, reason, error_type, status, sum(count)::int8 AS n, sum(attempts)::float8 AS a
                FROM \(self.schema).tallies GROUP BY source, reason, error_type, status HAVING sum(count) <> 0
            )
            SELECT coalesce(array_agg(t.source), '{}'::text[]), coalesce(array_agg(t.reason), '{}'::text[]),
                coalesce(array_agg(t.error_type), '{}'::text[]), coalesce(array_agg(t.status), '{}'::text[]),
                coalesce(array_agg(t.n), '{}'::int8[]), coalesce(array_agg(t.a), '{}'::float8[]),
                (SELECT min(first_failed_at) FROM \(self.schema).letters),
                (SELECT max(last_failed_at) FROM \(self.schema).letters),
                \(olderThan.joined(separator: ",\n"))
            FROM t
            """
        let rows = try await self.rows(PostgresQuery(unsafeSQL: sql, binds: binds))
        guard let row = rows.first else {
            throw DeadLetterError(code: .storeUnavailable, message: "the summary query returned no row")
        }
        let cells = row.makeRandomAccess()
        let sources = try cells[0].decode([String].self)
        let reasons = try cells[1].decode([String].self)
        let errorTypes = try cells[2].decode([String].self)
        let statuses = try cells[3].decode([String].self)
        let counts = try cells[4].decode([Int64].self)
        let attempts = try cells[5].decode([Double].self)
        var tally = DeadLetterSummaryTally()
        for index in counts.indices {
            tally.add(
                count: Int(counts[index]),
                attempts: attempts[index],
                source: sources[index],
                reason: reasons[index],
                errorType: errorTypes[index],
                status: statuses[index]
            )
        }
        tally.include(firstFailedAt: try cells[6].decode(Int64?.self), lastFailedAt: try cells[7].decode(Int64?.self))
        tally.setAges(olderThan: try (8..<(8 + bounds.count)).map { Int(try cells[$0].decode(Int64.self)) })
        return tally.summary
    }
}
