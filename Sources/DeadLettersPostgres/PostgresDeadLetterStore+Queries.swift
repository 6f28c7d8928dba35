public import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A `WHERE` clause built from a filter, every value a bound parameter.
struct FilterClause {
    var conditions: [String] = []
    var binds = PostgresBindings()

    /// The next parameter's placeholder, `$N`, after binding `value`.
    mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        self.binds.append(value)
        return "$\(self.binds.count)"
    }

    init(_ filter: DeadLetterFilter) {
        // Stored text never holds NUL, and PostgreSQL refuses it in a parameter: such a value selects nothing.
        func any(_ column: String, _ values: [String]) -> String? {
            guard !values.isEmpty else { return nil }
            let storable = values.filter { !$0.utf8.contains(0) }
            // One value as `=`, so that an index on (column, …, id) serves `ORDER BY id` directly.
            if storable.count == 1 { return "\(column) = \(self.bind(storable[0]))::text" }
            return storable.isEmpty ? "FALSE" : "\(column) = ANY(\(self.bind(storable))::text[])"
        }
        var parts: [String?] = [
            any("id", filter.ids),
            any("source", filter.sources),
            any("reason", filter.reasons),
            any("error_type", filter.errorTypes),
            any("fingerprint", filter.fingerprints),
            any("status", filter.statuses.map(\.rawValue)),
        ]
        if let since = filter.since { parts.append("last_failed_at >= \(self.bind(since.millisecondsSince1970))") }
        if let until = filter.until { parts.append("last_failed_at < \(self.bind(until.millisecondsSince1970))") }
        if let minAttempts = filter.minAttempts { parts.append("attempts >= \(self.bind(Int64(minAttempts)))") }
        if let search = filter.search, search.utf8.contains(0) {
            parts.append("FALSE")
        } else if let search = filter.search, !search.isEmpty {
            // With the "C" collation, lower() folds ASCII letters only, as DeadLetterFilter.matches does.
            parts.append("strpos(lower(error_message), lower(\(self.bind(search))::text COLLATE \"C\")) > 0")
        }
        if let expiresBefore = filter.expiresBefore {
            parts.append("expires_at <= \(self.bind(expiresBefore.millisecondsSince1970))")
        }
        self.conditions = parts.compactMap { $0 }
    }

    mutating func add(_ condition: String) { self.conditions.append(condition) }

    var sql: String { self.conditions.isEmpty ? "TRUE" : self.conditions.joined(separator: " AND ") }
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
            var clause = FilterClause(filter)
            if let cursor { clause.add("id > \(clause.bind(String(cursor.prefix { $0 != "\0" })))") }
            let limit = max(1, limit)
            let sql = """
                SELECT \(Self.letterColumns) FROM \(self.schema).letters WHERE \(clause.sql)
                ORDER BY id LIMIT \(clause.bind(Int64(limit) + 1))
                """
            var letters = try await self.rows(PostgresQuery(unsafeSQL: sql, binds: clause.binds)).map(Self.decodeLetter)
            guard letters.count > limit else { return DeadLetterPage(letters: letters, nextCursor: nil) }
            letters.removeLast(letters.count - limit)
            return DeadLetterPage(letters: letters, nextCursor: letters.last?.id)
        }
    }

    public func count(_ filter: DeadLetterFilter) async throws -> Int {
        try await self.perform("count") {
            let clause = FilterClause(filter)
            let rows = try await self.rows(
                PostgresQuery(
                    unsafeSQL: "SELECT count(*) FROM \(self.schema).letters WHERE \(clause.sql)",
                    binds: clause.binds
                )
            )
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }

    public func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        try await self.perform("summary") {
            if filter.isEmpty { return try await self.wholeStoreSummary(now: now) }
            var clause = FilterClause(filter)
            let now = clause.bind(now.millisecondsSince1970)
            let sql = """
                SELECT CASE GROUPING(reason, source, error_type, status, age)
                        WHEN 15 THEN 'reason' WHEN 23 THEN 'source' WHEN 27 THEN 'errorType'
                        WHEN 29 THEN 'status' WHEN 30 THEN 'age' ELSE 'total' END,
                    coalesce(reason, source, error_type, status, age, ''),
                    count(*), coalesce(min(first_failed_at), 0), coalesce(max(last_failed_at), 0),
                    coalesce(sum(attempts), 0)::text
                FROM (
                    SELECT reason, source, error_type, status, first_failed_at, last_failed_at, attempts,
                        (CASE WHEN \(now) - first_failed_at < 3600000 THEN '<1h'
                             WHEN \(now) - first_failed_at < 21600000 THEN '1h-6h'
                             WHEN \(now) - first_failed_at < 86400000 THEN '6h-24h'
                             ELSE '>24h' END) COLLATE "C" AS age
                    FROM \(self.schema).letters WHERE \(clause.sql)
                ) AS f
                GROUP BY GROUPING SETS ((reason), (source), (error_type), (status), (age), ())
                """
            var summary = DeadLetterSummary(
                total: 0,
                byReason: [:],
                bySource: [:],
                byErrorType: [:],
                byStatus: Dictionary(uniqueKeysWithValues: DeadLetterStatus.allCases.map { ($0.rawValue, 0) }),
                byAge: Dictionary(uniqueKeysWithValues: DeadLetterSummary.ageBuckets.map { ($0, 0) }),
                oldestFailedAt: nil,
                newestFailedAt: nil,
                averageAttempts: 0
            )
            for row in try await self.rows(PostgresQuery(unsafeSQL: sql, binds: clause.binds)) {
                let cells = row.makeRandomAccess()
                let kind = try cells[0].decode(String.self)
                let key = try cells[1].decode(String.self)
                let count = Int(try cells[2].decode(Int64.self))
                // Added, not assigned: keys that PostgreSQL keeps apart byte by byte may be one Swift string
                // ("é" composed and decomposed), as the whole-store summary adds them up too.
                switch kind {
                case "reason": summary.byReason[key, default: 0] += count
                case "source": summary.bySource[key, default: 0] += count
                case "errorType": summary.byErrorType[key, default: 0] += count
                case "status": summary.byStatus[key, default: 0] += count
                case "age": summary.byAge[key, default: 0] += count
                default:
                    summary.total = count
                    guard count > 0 else { continue }
                    summary.oldestFailedAt = Date(millisecondsSince1970: try cells[3].decode(Int64.self))
                    summary.newestFailedAt = Date(millisecondsSince1970: try cells[4].decode(Int64.self))
                    // A numeric, read as a Double: a sum beyond Int64 (letters stored before
                    // DeadLetter.maximumCount bounded them) is not lost.
                    let attempts = try cells[5].decode(String.self)
                    summary.averageAttempts = (Double(attempts) ?? 0) / Double(count)
                }
            }
            return summary
        }
    }

    public func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        try await self.perform("groups") {
            // Counts per (fingerprint, source) in one pass over the selected letters; then, for the top groups
            // only, their first letter (one probe of the (fingerprint, source, id) index per source) and their
            // time span (walks of the first_failed_at and last_failed_at indexes). The filter's conditions
            // name bare columns, which in each subquery are those of its own `letters AS m`.
            var clause = FilterClause(filter)
            let limit = clause.bind(Int64(max(0, limit)))
            let condition = clause.sql
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
            return try await self.rows(PostgresQuery(unsafeSQL: sql, binds: clause.binds)).map { row in
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
