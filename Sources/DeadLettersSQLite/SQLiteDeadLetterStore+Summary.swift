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
        let now = now.millisecondsSince1970
        // A letter is older than a bucket's bound when first_failed_at <= now - bound.
        let bounds: [Int64] = [now - 86_400_000, now - 21_600_000, now - 3_600_000]
        if filter.isEmpty {
            return try await self.read { db in try Self.wholeStoreSummary(db, bounds: bounds) }
        }
        let (condition, arguments) = try SQLiteRows.condition(filter)
        let sql = """
            SELECT source, reason, error_type, status, count(*), total(attempts), min(first_failed_at),
                max(last_failed_at), sum(first_failed_at <= ?), sum(first_failed_at <= ?), sum(first_failed_at <= ?)
            FROM dlq_letters WHERE \(condition) GROUP BY source, reason, error_type, status
            """
        return try await self.read { db in
            var tally = SummaryTally()
            var olderThan: [Int] = [0, 0, 0]
            let rows = try Row.fetchCursor(
                db.cachedStatement(sql: sql),
                arguments: [bounds[0], bounds[1], bounds[2]] + arguments
            )
            while let row = try rows.next() {
                try tally.add(row)
                tally.oldest = Swift.min(tally.oldest ?? .max, try row.decode(Int64.self, atIndex: 6))
                tally.newest = Swift.max(tally.newest ?? .min, try row.decode(Int64.self, atIndex: 7))
                for index in 0..<3 { olderThan[index] += try row.decode(Int.self, atIndex: 8 + index) }
            }
            return tally.summary(olderThan: olderThan)
        }
    }

    private static func wholeStoreSummary(_ db: Database, bounds: [Int64]) throws -> DeadLetterSummary {
        var tally = SummaryTally()
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: """
                    SELECT source, reason, error_type, status, count, attempts FROM dlq_tallies WHERE count > 0
                    """
            )
        )
        while let row = try rows.next() { try tally.add(row) }
        tally.oldest = try Int64.fetchOne(db.cachedStatement(sql: "SELECT min(first_failed_at) FROM dlq_letters"))
        tally.newest = try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(last_failed_at) FROM dlq_letters"))
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
        return tally.summary(olderThan: olderThan)
    }
}

/// Sums rows of (source, reason, error type, status, count, attempts) into a summary.
///
/// Attempts are added up in floating point (SQLite's `total()`, a `REAL` in the totals): letters stored before
/// ``DeadLetters/DeadLetter/maximumCount`` bounded them may hold up to `Int64.max`, and their sum must not
/// overflow (SQLite's `sum()` fails, and its `+` turns a running total into a `REAL`).
private struct SummaryTally {
    var total = 0
    var attempts = 0.0
    var byReason: [String: Int] = [:]
    var bySource: [String: Int] = [:]
    var byErrorType: [String: Int] = [:]
    var byStatus: [String: Int] = Dictionary(uniqueKeysWithValues: DeadLetterStatus.allCases.map { ($0.rawValue, 0) })
    var oldest: Int64?
    var newest: Int64?

    mutating func add(_ row: Row) throws {
        let count = try row.decode(Int.self, atIndex: 4)
        guard count > 0 else { return }
        self.total += count
        self.attempts += try row.decode(Double.self, atIndex: 5)
        self.bySource[try row.decode(String.self, atIndex: 0), default: 0] += count
        self.byReason[try row.decode(String.self, atIndex: 1), default: 0] += count
        self.byErrorType[try row.decode(String.self, atIndex: 2), default: 0] += count
        self.byStatus[try row.decode(String.self, atIndex: 3), default: 0] += count
    }

    /// The summary, given how many letters are older than 24 h, 6 h and 1 h.
    func summary(olderThan: [Int]) -> DeadLetterSummary {
        let byAge = [
            ">24h": olderThan[0],
            "6h-24h": olderThan[1] - olderThan[0],
            "1h-6h": olderThan[2] - olderThan[1],
            "<1h": self.total - olderThan[2],
        ]
        return DeadLetterSummary(
            total: self.total,
            byReason: self.byReason,
            bySource: self.bySource,
            byErrorType: self.byErrorType,
            byStatus: self.byStatus,
            byAge: byAge,
            oldestFailedAt: self.total == 0 ? nil : self.oldest.map { Date(millisecondsSince1970: $0) },
            newestFailedAt: self.total == 0 ? nil : self.newest.map { Date(millisecondsSince1970: $0) },
            averageAttempts: self.total == 0 ? 0 : self.attempts / Double(self.total)
        )
    }
}
