public import DeadLetters
import GRDB

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension SQLiteDeadLetterStore {
    /// Counts and times over the letters `filter` selects, ages measured from `now`.
    ///
    /// For the whole store it reads the running totals and a per-minute histogram of first failures, plus
    /// a few index lookups, so it costs about the same at ten letters and at millions; with a filter it reads
    /// the selected letters' indexed columns once.
    public func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        let bounds = DeadLetterSummary.ageBounds(now: now.millisecondsSince1970)
        if filter.isEmpty {
            return try await self.read { db in try Self.wholeStoreSummary(db, bounds: bounds) }
        }
        // A letter is past a bucket's limit when first_failed_at <= its bound.
        var dialect = SQLiteDialect()
        let older = bounds.map { "sum(first_failed_at <= \(dialect.bind($0)))" }.joined(separator: ", ")
        let condition = DeadLetterQueryPlan(filter).render(&dialect)
        let sql = """
            SELECT source, reason, error_type, status, count(*), total(attempts), min(first_failed_at),
                max(last_failed_at), \(older)
            FROM dlq_letters WHERE \(condition) GROUP BY source, reason, error_type, status
            """
        let arguments = dialect.arguments
        return try await self.read { db in
            var tally = DeadLetterSummaryTally()
            var olderThan = [Int](repeating: 0, count: bounds.count)
            let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
            while let row = try rows.next() {
                try Self.add(row, to: &tally)
                tally.include(
                    firstFailedAt: try row.decode(Int64.self, atIndex: 6),
                    lastFailedAt: try row.decode(Int64.self, atIndex: 7)
                )
                for index in olderThan.indices { olderThan[index] += try row.decode(Int.self, atIndex: 8 + index) }
            }
            tally.setAges(olderThan: olderThan)
            return tally.summary
        }
    }

    private static func wholeStoreSummary(_ db: Database, bounds: [Int64]) throws -> DeadLetterSummary {
        var tally = DeadLetterSummaryTally()
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: """
                    SELECT source, reason, error_type, status, count, attempts FROM dlq_tallies WHERE count > 0
                    """
            )
        )
        while let row = try rows.next() { try Self.add(row, to: &tally) }
        tally.include(
            firstFailedAt: try Int64.fetchOne(db.cachedStatement(sql: "SELECT min(first_failed_at) FROM dlq_letters")),
            lastFailedAt: try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(last_failed_at) FROM dlq_letters"))
        )
        var olderThan: [Int] = []
        let histogram = try db.cachedStatement(
            sql: "SELECT coalesce(sum(count), 0) FROM dlq_first_failures WHERE minute < ?"
        )
        let partial = try db.cachedStatement(
            sql: "SELECT count(*) FROM dlq_letters WHERE first_failed_at >= ? AND first_failed_at <= ?"
        )
        for bound in bounds {
            let minute = bound >= 0 ? bound / 60000 : (bound - 59999) / 60000
            let whole = try Int.fetchOne(histogram, arguments: [minute]) ?? 0
            let rest = try Int.fetchOne(partial, arguments: [minute * 60000, bound]) ?? 0
            olderThan.append(whole + rest)
        }
        tally.setAges(olderThan: olderThan)
        return tally.summary
    }

    /// Adds a row of (source, reason, error type, status, count, attempts) to a summary.
    ///
    /// Attempts are read as a `REAL`: SQLite's `total()`, and a `REAL` in the totals, since SQLite's `sum()`
    /// fails on overflow and its `+` turns a running total into a `REAL`.
    private static func add(_ row: Row, to tally: inout DeadLetterSummaryTally) throws {
        tally.add(
            count: try row.decode(Int.self, atIndex: 4),
            attempts: try row.decode(Double.self, atIndex: 5),
            source: try row.decode(String.self, atIndex: 0),
            reason: try row.decode(String.self, atIndex: 1),
            errorType: try row.decode(String.self, atIndex: 2),
            status: try row.decode(String.self, atIndex: 3)
        )
    }
}

extension SQLiteDeadLetterStore {
    /// Counts the window's letters in one grouped query over the `last_failed_at` index (rows per bucket,
    /// reason and fingerprint), then finds the fingerprints first seen in the window from their groups.
    public func timeline(
        _ filter: DeadLetterFilter,
        into timeline: DeadLetterTimeline
    ) async throws -> DeadLetterTimeline {
        guard let start = timeline.start, let end = timeline.end else { return timeline }
        var dialect = SQLiteDialect()
        let origin = dialect.bind(start.millisecondsSince1970)
        let width = dialect.bind(timeline.bucketMilliseconds)
        let condition = DeadLetterQueryPlan(DeadLetterTimeline.windowFilter(filter, timeline)).render(&dialect)
        let sql = """
            SELECT (last_failed_at - \(origin)) / \(width), reason, fingerprint, count(*)
            FROM dlq_letters WHERE \(condition) GROUP BY 1, 2, 3
            """
        let arguments = dialect.arguments
        let rows = try await self.read { db in
            var rows: [(offset: Int64, reason: String, fingerprint: String, count: Int)] = []
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
            while let row = try cursor.next() {
                rows.append(
                    (
                        try row.decode(Int64.self, atIndex: 0), try row.decode(String.self, atIndex: 1),
                        try row.decode(String.self, atIndex: 2), try row.decode(Int.self, atIndex: 3)
                    )
                )
            }
            return rows
        }
        var result = timeline
        var reasons: [String: String] = [:]
        for row in rows {
            let at = start.millisecondsSince1970 + row.offset * timeline.bucketMilliseconds
            result.add(row.count, reason: row.reason, at: Date(millisecondsSince1970: at))
            if reasons[row.fingerprint] == nil { reasons[row.fingerprint] = row.reason }
        }
        result.firstSeen = try await self.firstSeen(filter, reasons: reasons, in: start..<end)
        return result
    }
}
