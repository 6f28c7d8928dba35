public import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// PostgreSQL's rendering of a ``DeadLetters/DeadLetterQueryPlan``: `$n` placeholders, a list bound as one
/// `text[]` parameter, and a search with `strpos(lower(…))` under the "C" collation.
struct PostgresDialect: DeadLetterSQLDialect {
    /// The values bound so far; `$n` is the n-th.
    var binds = PostgresBindings()
    /// The quoted schema of the store's tables and functions.
    let schema: String

    init(schema: String) {
        self.schema = schema
    }

    static let alwaysTrue = "TRUE"
    static let alwaysFalse = "FALSE"

    /// The next parameter's placeholder, `$n`, after binding `value`.
    mutating func placeholder(binding value: some PostgresDynamicTypeEncodable) -> String {
        self.binds.append(value)
        return "$\(self.binds.count)"
    }

    mutating func bind(_ text: String) -> String {
        "\(self.placeholder(binding: text))::text"
    }

    mutating func bind(_ integer: Int64) -> String {
        self.placeholder(binding: integer)
    }

    mutating func isIn(_ column: String, _ values: [String]) -> String {
        "\(column) = ANY(\(self.placeholder(binding: values))::text[])"
    }

    mutating func contains(_ column: String, ignoringASCIICase text: String) -> String {
        // With the "C" collation, lower() folds ASCII letters only, as DeadLetterFilter.matches does.
        "strpos(lower(\(column)), lower(\(self.bind(text)) COLLATE \"C\")) > 0"
    }

    /// Candidates from the trigram index on `search_text(…)` (ILIKE folds case at least as widely as ASCII, so
    /// it finds a superset), each field then checked exactly with ASCII folding under the "C" collation.
    /// Without pg_trgm, or for a text shorter than 3 characters, the same condition reads every letter.
    mutating func search(_ text: String) -> String {
        var pattern = "%"
        for character in text {
            if character == "%" || character == "_" || character == "\\" { pattern.append("\\") }
            pattern.append(character)
        }
        pattern += "%"
        let needle = DeadLetterFilter.asciiLowercased(text)
        let bound = self.bind(needle)
        var payload = "strpos(lower(\(self.schema).payload_text(payload) COLLATE \"C\"), \(bound)) > 0"
        if Self.survivesEscapeEncoding(needle) {
            payload = "strpos(lower(encode(payload, 'escape') COLLATE \"C\"), \(bound)) > 0 AND \(payload)"
        }
        var metadata = """
            EXISTS (SELECT 1 FROM jsonb_each_text(metadata) AS dlq_pair \
            WHERE strpos(lower(dlq_pair.value COLLATE "C"), \(bound)) > 0)
            """
        if Self.survivesJSONText(needle) {
            metadata = "strpos(lower(metadata::text COLLATE \"C\"), \(bound)) > 0 AND \(metadata)"
        }
        return """
            \(self.schema).search_text(error_message, metadata, payload) ILIKE \(self.bind(pattern)) \
            AND (strpos(lower(error_message), \(bound)) > 0 OR (\(payload)) OR (\(metadata)))
            """
    }

    // Each field's exact check is preceded, where the needle allows, by a cheaper check that selects a
    // superset: the payload's bytes in `escape` encoding (printable ASCII as itself, other bytes as `\ooo`,
    // no conversion that can fail) and the metadata as JSON text (keys too; values as themselves but for
    // `"`, `\` and control characters). Measured on a page of a text 1 letter in 10 holds (the plan walks the
    // id order, checking each letter), per letter that does not hold it: 4.3-6.3 µs -> 2.5 µs; the page,
    // 4.0 ms -> 2.5 ms in the server (200,000 letters of about 300-byte JSON).

    /// Whether `needle` appears as itself in the `escape` encoding of any bytes that hold it: printable
    /// ASCII without a backslash.
    static func survivesEscapeEncoding(_ needle: String) -> Bool {
        needle.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }
    }

    /// Whether `needle` appears as itself in the JSON text of any metadata value that holds it: no `"`, no
    /// `\` and no control character (PostgreSQL's JSON text writes other characters, non-ASCII ones too, as
    /// they are).
    static func survivesJSONText(_ needle: String) -> Bool {
        needle.utf8.allSatisfy { $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    mutating func metadata(key: String, value: String) -> String {
        "metadata @> \(self.placeholder(binding: PostgresDeadLetterStore.jsonObject([key: value])))::jsonb"
    }

    /// The `WHERE` condition (without the keyword) selecting what `plan` selects, its values bound here.
    mutating func condition(_ plan: DeadLetterQueryPlan) -> String {
        plan.render(&self)
    }
}

extension PostgresDeadLetterStore {
    public func letter(id: String) async throws -> DeadLetter? {
        guard !id.utf8.contains(0) else { return nil }
        return try await self.perform("letter") {
            let rows = try await self.rows(
                PostgresQuery(
                    unsafeSQL: "SELECT \(Self.letterColumns) FROM \(self.schema).letters WHERE id = $1",
                    binds: Self.binds(id)
                )
            )
            return try rows.first.map(Self.decodeLetter)
        }
    }

    public func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        try await self.perform("page") {
            var plan = DeadLetterQueryPlan(filter)
            plan.after(id: cursor)
            var dialect = PostgresDialect(schema: self.schema)
            let limit = max(1, limit)
            let sql = """
                SELECT \(Self.letterColumns) FROM \(self.schema).letters WHERE \(dialect.condition(plan))
                ORDER BY id LIMIT \(dialect.bind(Int64(limit) + 1))
                """
            var letters = try await self.rows(PostgresQuery(unsafeSQL: sql, binds: dialect.binds)).map(
                Self.decodeLetter
            )
            guard letters.count > limit else { return DeadLetterPage(letters: letters, nextCursor: nil) }
            letters.removeLast(letters.count - limit)
            return DeadLetterPage(letters: letters, nextCursor: letters.last?.id)
        }
    }

    public func page(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        if sort == .id { return try await self.page(filter, after: cursor, limit: limit) }
        var plan = DeadLetterQueryPlan(filter)
        try plan.after(sort, cursor: cursor)
        return try await self.perform("page") {
            var dialect = PostgresDialect(schema: self.schema)
            let limit = max(1, limit)
            let sql = """
                SELECT \(Self.letterColumns) FROM \(self.schema).letters WHERE \(dialect.condition(plan))
                ORDER BY \(DeadLetterQueryPlan.orderBy(sort)) LIMIT \(dialect.bind(Int64(limit) + 1))
                """
            var letters = try await self.rows(PostgresQuery(unsafeSQL: sql, binds: dialect.binds)).map(
                Self.decodeLetter
            )
            guard letters.count > limit else { return DeadLetterPage(letters: letters, nextCursor: nil) }
            letters.removeLast(letters.count - limit)
            return DeadLetterPage(letters: letters, nextCursor: letters.last.map(sort.cursor(after:)))
        }
    }

    public func count(_ filter: DeadLetterFilter) async throws -> Int {
        try await self.perform("count") {
            var dialect = PostgresDialect(schema: self.schema)
            let condition = dialect.condition(DeadLetterQueryPlan(filter))
            let rows = try await self.rows(
                PostgresQuery(
                    unsafeSQL: "SELECT count(*) FROM \(self.schema).letters WHERE \(condition)",
                    binds: dialect.binds
                )
            )
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }

    public func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        try await self.perform("summary") {
            if filter.isEmpty { return try await self.wholeStoreSummary(now: now) }
            var dialect = PostgresDialect(schema: self.schema)
            let condition = dialect.condition(DeadLetterQueryPlan(filter))
            let now = dialect.bind(now.millisecondsSince1970)
            let buckets = DeadLetterSummary.ageBuckets
            let whens = zip(DeadLetterSummary.ageBucketLimits, buckets).map { limit, bucket in
                "WHEN \(now) - first_failed_at < \(limit) THEN '\(bucket)'"
            }
            let age = "CASE \(whens.joined(separator: " ")) ELSE '\(buckets[whens.count])' END"
            let sql = """
                SELECT CASE GROUPING(reason, source, error_type, status, age)
                        WHEN 15 THEN 'reason' WHEN 23 THEN 'source' WHEN 27 THEN 'errorType'
                        WHEN 29 THEN 'status' WHEN 30 THEN 'age' ELSE 'total' END,
                    coalesce(reason, source, error_type, status, age, ''),
                    count(*), coalesce(min(first_failed_at), 0), coalesce(max(last_failed_at), 0),
                    coalesce(sum(attempts), 0)::text
                FROM (
                    SELECT reason, source, error_type, status, first_failed_at, last_failed_at, attempts,
                        (\(age)) COLLATE "C" AS age
                    FROM \(self.schema).letters WHERE \(condition)
                ) AS f
                GROUP BY GROUPING SETS ((reason), (source), (error_type), (status), (age), ())
                """
            let dimensions: [String: DeadLetterSummaryTally.Dimension] = [
                "reason": .reason, "source": .source, "errorType": .errorType, "status": .status, "age": .age,
            ]
            var tally = DeadLetterSummaryTally()
            for row in try await self.rows(PostgresQuery(unsafeSQL: sql, binds: dialect.binds)) {
                let cells = row.makeRandomAccess()
                let kind = try cells[0].decode(String.self)
                let count = Int(try cells[2].decode(Int64.self))
                if let dimension = dimensions[kind] {
                    tally.add(count, to: dimension, key: try cells[1].decode(String.self))
                } else if count > 0 {
                    // A numeric, read as a Double: a sum beyond Int64 (letters stored before
                    // DeadLetter.maximumCount bounded them) is not lost.
                    tally.add(count: count, attempts: Double(try cells[5].decode(String.self)) ?? 0)
                    tally.include(
                        firstFailedAt: try cells[3].decode(Int64.self),
                        lastFailedAt: try cells[4].decode(Int64.self)
                    )
                }
            }
            return tally.summary
        }
    }

    public func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        try await self.perform("groups") {
            // Counts per (fingerprint, source) in one pass over the selected letters; then, for the top groups
            // only, their first letter (one probe of the (fingerprint, source, id) index per source) and their
            // time span (walks of the first_failed_at and last_failed_at indexes). The filter's conditions
            // name bare columns, which in each subquery are those of its own `letters AS m`.
            var dialect = PostgresDialect(schema: self.schema)
            let condition = dialect.condition(DeadLetterQueryPlan(filter))
            let limit = dialect.bind(Int64(max(0, limit)))
            let letters = "\(self.schema).letters"
            let sql = """
                WITH c AS (
                    SELECT fingerprint, source, count(*) AS n FROM \(letters) WHERE \(condition)
                    GROUP BY fingerprint, source
                ),
                top AS (
                    SELECT fingerprint, sum(n)::int8 AS n, array_agg(source ORDER BY source) AS sources FROM c
                    GROUP BY fingerprint ORDER BY n DESC, fingerprint LIMIT \(limit)
                )
                SELECT top.fingerprint, top.n, l.error_type, l.error_message, top.sources,
                    (SELECT min(m.first_failed_at) FROM \(letters) AS m
                        WHERE m.fingerprint = top.fingerprint AND \(condition)),
                    (SELECT max(m.last_failed_at) FROM \(letters) AS m
                        WHERE m.fingerprint = top.fingerprint AND \(condition))
                FROM top
                CROSS JOIN LATERAL (
                    SELECT x.id FROM unnest(top.sources) AS s(source)
                    CROSS JOIN LATERAL (
                        SELECT m.id FROM \(letters) AS m
                        WHERE m.fingerprint = top.fingerprint AND m.source = s.source AND \(condition)
                        ORDER BY m.id LIMIT 1
                    ) AS x
                    ORDER BY x.id LIMIT 1
                ) AS f
                JOIN \(letters) AS l ON l.id = f.id
                ORDER BY top.n DESC, top.fingerprint
                """
            return try await self.rows(PostgresQuery(unsafeSQL: sql, binds: dialect.binds)).map { row in
                let (fingerprint, count, errorType, message, sources, first, last) = try row.decode(
                    (String, Int64, String, String, [String], Int64, Int64).self
                )
                return DeadLetterGroup(
                    fingerprint: fingerprint,
                    count: Int(count),
                    errorType: errorType,
                    sampleMessage: message,
                    sources: sources,
                    firstFailedAt: Date(millisecondsSince1970: first),
                    lastFailedAt: Date(millisecondsSince1970: last)
                )
            }
        }
    }

    public func usage() async throws -> DeadLetterUsage {
        try await self.perform("usage") {
            let rows = try await self.rows(
                PostgresQuery(
                    unsafeSQL:
                        "SELECT coalesce(sum(count), 0)::int8, coalesce(sum(bytes), 0)::int8 FROM \(self.schema).usage"
                )
            )
            guard let row = rows.first else { return DeadLetterUsage(count: 0, bytes: 0) }
            let (count, bytes) = try row.decode((Int64, Int64).self)
            return DeadLetterUsage(count: Int(count), bytes: Int(bytes))
        }
    }
}

extension PostgresDeadLetterStore {
    /// Counts the window's letters in one grouped query over the `last_failed_at` index (rows per bucket,
    /// reason and fingerprint), then finds the fingerprints first seen in the window from their groups.
    public func timeline(
        _ filter: DeadLetterFilter,
        into timeline: DeadLetterTimeline
    ) async throws -> DeadLetterTimeline {
        guard let start = timeline.start, let end = timeline.end else { return timeline }
        let rows = try await self.perform("timeline") {
            var dialect = PostgresDialect(schema: self.schema)
            let origin = dialect.bind(start.millisecondsSince1970)
            let width = dialect.bind(timeline.bucketMilliseconds)
            let condition = dialect.condition(DeadLetterQueryPlan(DeadLetterTimeline.windowFilter(filter, timeline)))
            let sql = """
                SELECT ((last_failed_at - \(origin)) / \(width))::int8, reason, fingerprint, count(*)::int8
                FROM \(self.schema).letters WHERE \(condition) GROUP BY 1, 2, 3
                """
            return try await self.rows(PostgresQuery(unsafeSQL: sql, binds: dialect.binds)).map {
                try $0.decode((Int64, String, String, Int64).self)
            }
        }
        var result = timeline
        var reasons: [String: String] = [:]
        for (offset, reason, fingerprint, count) in rows {
            let at = start.millisecondsSince1970 + offset * timeline.bucketMilliseconds
            result.add(Int(count), reason: reason, at: Date(millisecondsSince1970: at))
            if reasons[fingerprint] == nil { reasons[fingerprint] = reason }
        }
        result.firstSeen = try await self.firstSeen(filter, reasons: reasons, in: start..<end)
        return result
    }
}
