import DeadLetters
import Foundation
import Testing

/// A dialect that writes `?` and records what it bound, to read a plan's SQL as the SQL stores get it.
private struct RecordingDialect: DeadLetterSQLDialect {
    var bound: [String] = []
    static let alwaysTrue = "TRUE"
    static let alwaysFalse = "FALSE"
    mutating func bind(_ text: String) -> String {
        self.bound.append(text)
        return "?"
    }
    mutating func bind(_ integer: Int64) -> String {
        self.bound.append("\(integer)")
        return "?"
    }
    mutating func isIn(_ column: String, _ values: [String]) -> String {
        self.bound.append(values.joined(separator: ","))
        return "\(column) IN ?"
    }
    mutating func contains(_ column: String, ignoringASCIICase text: String) -> String {
        "contains(\(column), \(self.bind(text)))"
    }
    mutating func search(_ text: String) -> String {
        "search(\(self.bind(text)))"
    }
    mutating func metadata(key: String, value: String) -> String {
        "meta(\(self.bind(key)), \(self.bind(value)))"
    }
}

@Suite("DeadLetterQueryPlan and DeadLetterSummaryTally")
struct QueryPlanTests {
    private func render(_ plan: DeadLetterQueryPlan) -> (sql: String, bound: [String]) {
        var dialect = RecordingDialect()
        let sql = plan.render(&dialect)
        return (sql, dialect.bound)
    }

    @Test("a filter becomes conditions in field order, each value bound in the order of its placeholder")
    func conditions() {
        var filter = DeadLetterFilter(
            sources: ["a"],
            statuses: [.dead, .retrying],
            since: Date(millisecondsSince1970: 5),
            minAttempts: 2,
            search: "Timeout",
            expiresBefore: Date(millisecondsSince1970: 9),
            metadata: ["tenant": "acme", "b": "2"]
        )
        var plan = DeadLetterQueryPlan(filter)
        plan.after(id: "01\0x")
        let (sql, bound) = self.render(plan)
        #expect(
            sql == "source = ? AND status IN ? AND last_failed_at >= ? AND attempts >= ? "
                + "AND search(?) AND meta(?, ?) AND meta(?, ?) AND expires_at IS NOT NULL AND expires_at <= ? AND id > ?"
        )
        #expect(bound == ["a", "dead,retrying", "5", "2", "Timeout", "b", "2", "tenant", "acme", "9", "01"])
        filter = DeadLetterFilter()
        #expect(self.render(DeadLetterQueryPlan(filter)).sql == "TRUE")
    }

    @Test("a sorted page's cursor becomes a row comparison in the order's direction")
    func sortedCursor() throws {
        var plan = DeadLetterQueryPlan(DeadLetterFilter())
        let letter = DeadLetter(
            id: "01",
            source: "or~ders",
            reason: .timeout,
            errorType: "E",
            errorMessage: "m",
            attempts: 3,
            firstFailedAt: Date(millisecondsSince1970: 0),
            payload: Data()
        )
        try plan.after(.attempts, cursor: DeadLetterSort.attempts.cursor(after: letter))
        #expect(self.render(plan).sql == "(attempts, id) < (?, ?)")
        #expect(self.render(plan).bound == ["3", "01"])
        plan = DeadLetterQueryPlan(DeadLetterFilter())
        try plan.after(.source, cursor: DeadLetterSort.source.cursor(after: letter))
        #expect(self.render(plan).sql == "(source, id) > (?, ?)")
        #expect(self.render(plan).bound == ["or~ders", "01"])
        #expect(DeadLetterQueryPlan.orderBy(.lastFailed) == "last_failed_at DESC, id DESC")
        #expect(DeadLetterQueryPlan.orderBy(.firstFailed) == "first_failed_at, id")
        #expect(throws: DeadLetterError.self) { try plan.after(.lastFailed, cursor: "x~") }
        #expect(throws: DeadLetterError.self) { try plan.after(.source, cursor: "99~abc") }
    }

    @Test("a value holding NUL selects nothing, and a list left with one value is an '='")
    func nul() {
        #expect(self.render(DeadLetterQueryPlan(DeadLetterFilter(ids: ["a\0"]))).sql == "FALSE")
        #expect(self.render(DeadLetterQueryPlan(DeadLetterFilter(search: "\0"))).sql == "FALSE")
        #expect(self.render(DeadLetterQueryPlan(DeadLetterFilter(metadata: ["k": "v\0"]))).sql == "FALSE")
        #expect(self.render(DeadLetterQueryPlan(DeadLetterFilter(search: ""))).sql == "TRUE")
        let (sql, bound) = self.render(DeadLetterQueryPlan(DeadLetterFilter(reasons: ["x\0", "y"])))
        #expect(sql == "reason = ?" && bound == ["y"])
    }

    @Test("ages: bucket limits, bounds and the counts past each bound make every bucket")
    func ages() {
        #expect(
            [-1, 0, 3_599_999, 3_600_000, 21_600_000, 86_399_999, 86_400_000].map {
                DeadLetterSummary.ageBucketIndex(milliseconds: $0)
            } == [0, 0, 0, 1, 2, 2, 3]
        )
        #expect(DeadLetterSummary.ageBounds(now: 100_000_000) == [13_600_000, 78_400_000, 96_400_000])
        var tally = DeadLetterSummaryTally()
        tally.add(count: 10, attempts: 25, source: "s", reason: "r", errorType: "E", status: "dead")
        tally.add(count: 0, attempts: 0, source: "s", reason: "r", errorType: "E", status: "dead")
        tally.include(firstFailedAt: 7, lastFailedAt: 9)
        tally.include(firstFailedAt: 3, lastFailedAt: 8)
        tally.setAges(olderThan: [1, 3, 6])
        let summary = tally.summary
        #expect(summary.byAge == [">24h": 1, "6h-24h": 2, "1h-6h": 3, "<1h": 4])
        #expect(summary.byStatus == ["retrying": 0, "dead": 10, "parked": 0])
        #expect(summary.total == 10 && summary.averageAttempts == 2.5 && summary.bySource == ["s": 10])
        #expect(summary.oldestFailedAt == Date(millisecondsSince1970: 3))
        #expect(summary.newestFailedAt == Date(millisecondsSince1970: 9))
        let empty = DeadLetterSummaryTally().summary
        #expect(empty.total == 0 && empty.oldestFailedAt == nil && empty.averageAttempts == 0)
        #expect(empty.byAge == ["<1h": 0, "1h-6h": 0, "6h-24h": 0, ">24h": 0])
    }
}
