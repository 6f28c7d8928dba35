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
        let now = now.millisecondsSince1970
        // A letter is older than a bucket's bound when first_failed_at <= now - bound.
        let bounds: [Int64] = [now - 86_400_000, now - 21_600_000, now - 3_600_000]
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
        let oldest = try cells[6].decode(Int64?.self)
        let newest = try cells[7].decode(Int64?.self)
        let older = try (8..<11).map { Int(try cells[$0].decode(Int64.self)) }

        var summary = DeadLetterSummary(
            total: 0,
            byReason: [:],
            bySource: [:],
            byErrorType: [:],
            byStatus: Dictionary(uniqueKeysWithValues: DeadLetterStatus.allCases.map { ($0.rawValue, 0) }),
            byAge: [:],
            oldestFailedAt: nil,
            newestFailedAt: nil,
            averageAttempts: 0
        )
        // In floating point: letters stored before DeadLetter.maximumCount bounded them may hold up to
        // Int64.max attempts, and their sum must not overflow.
        var attemptsTotal = 0.0
        for index in counts.indices {
            let count = Int(counts[index])
            summary.total += count
            attemptsTotal += attempts[index]
            summary.bySource[sources[index], default: 0] += count
            summary.byReason[reasons[index], default: 0] += count
            summary.byErrorType[errorTypes[index], default: 0] += count
            summary.byStatus[statuses[index], default: 0] += count
        }
        summary.byAge = [
            ">24h": older[0],
            "6h-24h": older[1] - older[0],
            "1h-6h": older[2] - older[1],
            "<1h": summary.total - older[2],
        ]
        if summary.total > 0 {
            summary.oldestFailedAt = oldest.map { Date(millisecondsSince1970: $0) }
            summary.newestFailedAt = newest.map { Date(millisecondsSince1970: $0) }
            summary.averageAttempts = attemptsTotal / Double(summary.total)
        }
        return summary
    }
}
