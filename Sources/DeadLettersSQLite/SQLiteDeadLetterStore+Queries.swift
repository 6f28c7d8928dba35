public import DeadLetters
import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension SQLiteDeadLetterStore {
    /// The letter with `id`, or `nil`.
    public func letter(id: String) async throws -> DeadLetter? {
        try await self.read { db in
            try SQLiteRows.fetchLetters(
                db,
                sql: "SELECT \(SQLiteRows.columns) FROM dlq_letters WHERE id = ?",
                arguments: [id]
            ).first
        }
    }

    /// A page of the letters `filter` selects, in id order, after the id `cursor`; `limit` below 1 reads 1.
    public func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        try await self.page(filter, sortedBy: .id, after: cursor, limit: limit)
    }

    /// A page of the letters `filter` selects in the order `sort`, after `cursor`, from the index on the
    /// sort's column and the id; `limit` below 1 reads 1.
    public func page(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        let limit = Swift.max(1, limit)
        // Validates the cursor before reading.
        _ = try Self.pageQuery(filter, sortedBy: sort, after: cursor, limit: limit)
        var letters = try await self.read { db in
            let (sql, arguments) = try Self.pageQuery(
                filter,
                sortedBy: sort,
                after: cursor,
                limit: limit,
                indexSearch: !Self.isCommonSearch(filter, db),
                correlateMetadata: Self.isCommonMetadata(filter, db)
            )
            return try SQLiteRows.fetchLetters(db, sql: sql, arguments: arguments)
        }
        guard letters.count > limit else { return DeadLetterPage(letters: letters, nextCursor: nil) }
        letters.removeLast(letters.count - limit)
        return DeadLetterPage(
            letters: letters,
            nextCursor: letters.last.map { sort == .id ? $0.id : sort.cursor(after: $0) }
        )
    }

    /// Candidates from the trigram index beyond which a page's search checks letters in the page's order
    /// instead: a text that many letters hold fills a page within the first few thousand letters, while
    /// reading all its candidates and ordering them would cost more.
    static let commonSearchCandidates = 2000

    /// Whether each of `filter`'s metadata pairs is held by at least ``commonSearchCandidates`` letters: then
    /// a page checks its letters' pairs in the page's order instead of reading every letter holding them.
    static func isCommonMetadata(_ filter: DeadLetterFilter, _ db: Database) throws -> Bool {
        guard !filter.metadata.isEmpty else { return false }
        let statement = try db.cachedStatement(
            sql: "SELECT count(*) FROM (SELECT 1 FROM dlq_letter_meta WHERE key = ? AND value = ? LIMIT ?)"
        )
        for (key, value) in filter.metadata {
            let holders = try Int.fetchOne(statement, arguments: [key, value, self.commonSearchCandidates])
            if holders != self.commonSearchCandidates { return false }
        }
        return true
    }

    /// Whether `filter`'s search text has at least ``commonSearchCandidates`` candidates in the trigram index.
    static func isCommonSearch(_ filter: DeadLetterFilter, _ db: Database) throws -> Bool {
        guard let search = filter.search, search.unicodeScalars.count >= 3, !search.utf8.contains(0) else {
            return false
        }
        let candidates = try Int.fetchOne(
            db.cachedStatement(
                sql: "SELECT count(*) FROM (SELECT rowid FROM dlq_search WHERE dlq_search MATCH ? LIMIT ?)"
            ),
            arguments: [SQLiteSearch.trigramQuery(search), self.commonSearchCandidates]
        )
        return candidates == self.commonSearchCandidates
    }

    /// The statement of a sorted page and its arguments; it reads `limit + 1` letters.
    static func pageQuery(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int,
        indexSearch: Bool = true,
        correlateMetadata: Bool = false
    ) throws -> (sql: String, arguments: StatementArguments) {
        var plan = DeadLetterQueryPlan(filter)
        try plan.after(sort, cursor: cursor)
        let (condition, filterArguments) = SQLiteRows.condition(
            plan,
            indexSearch: indexSearch,
            correlateMetadata: correlateMetadata
        )
        let sql = """
            SELECT \(SQLiteRows.columns) FROM dlq_letters WHERE \(condition) \
            ORDER BY \(DeadLetterQueryPlan.orderBy(sort)) LIMIT ?
            """
        return (sql, filterArguments + [limit + 1])
    }

    /// How many letters `filter` selects; the whole store's count reads running totals.
    public func count(_ filter: DeadLetterFilter) async throws -> Int {
        if filter.isEmpty { return try await self.usage().count }
        let (condition, arguments) = SQLiteRows.condition(filter)
        return try await self.read { db in
            try Int.fetchOne(
                db.cachedStatement(sql: "SELECT count(*) FROM dlq_letters WHERE \(condition)"),
                arguments: arguments
            ) ?? 0
        }
    }

    /// How many letters the store holds and their storage size, from running totals.
    public func usage() async throws -> DeadLetterUsage {
        try await self.read { db in try Self.usage(db) }
    }

    /// The letters `filter` selects, grouped by fingerprint, largest group first (ties by fingerprint).
    ///
    /// A group's error type and sample message are those of its oldest letter (by id). For the whole store
    /// the groups come from running totals per fingerprint and source, and each group's times from indexes,
    /// so the cost does not grow with the number of letters; with a filter the selected letters are read once.
    public func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        guard limit > 0 else { return [] }
        if filter.isEmpty {
            return try await self.read { db in try Self.wholeStoreGroups(db, limit: limit) }
        }
        let (condition, arguments) = SQLiteRows.condition(filter)
        let groupSQL = """
            SELECT fingerprint, count(*) AS n, min(first_failed_at), max(last_failed_at), min(id) FROM dlq_letters
            WHERE \(condition) GROUP BY fingerprint ORDER BY n DESC, fingerprint LIMIT ?
            """
        let sourcesSQL = """
            SELECT DISTINCT source FROM dlq_letters WHERE fingerprint = ? AND \(condition) ORDER BY source
            """
        return try await self.read { db in
            var groups: [DeadLetterGroup] = []
            let rows = try Row.fetchAll(db.cachedStatement(sql: groupSQL), arguments: arguments + [limit])
            for row in rows {
                let fingerprint = try row.decode(String.self, atIndex: 0)
                let sample = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT error_type, error_message FROM dlq_letters WHERE id = ?"),
                    arguments: [try row.decode(String.self, atIndex: 4)]
                )
                let sources = try String.fetchAll(
                    db.cachedStatement(sql: sourcesSQL),
                    arguments: [fingerprint] + arguments
                )
                groups.append(
                    DeadLetterGroup(
                        fingerprint: fingerprint,
                        count: try row.decode(Int.self, atIndex: 1),
                        errorType: try sample?.decode(String.self, atIndex: 0) ?? "",
                        sampleMessage: try sample?.decode(String.self, atIndex: 1) ?? "",
                        sources: sources,
                        firstFailedAt: Date(millisecondsSince1970: try row.decode(Int64.self, atIndex: 2)),
                        lastFailedAt: Date(millisecondsSince1970: try row.decode(Int64.self, atIndex: 3))
                    )
                )
            }
            return groups
        }
    }

    private static func wholeStoreGroups(_ db: Database, limit: Int) throws -> [DeadLetterGroup] {
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT fingerprint, sum(count) AS n FROM dlq_groups GROUP BY fingerprint HAVING n > 0
                    ORDER BY n DESC, fingerprint LIMIT ?
                    """
            ),
            arguments: [limit]
        )
        let sample = try db.cachedStatement(
            sql: "SELECT error_type, error_message FROM dlq_letters WHERE fingerprint = ? ORDER BY id LIMIT 1"
        )
        let oldest = try db.cachedStatement(sql: "SELECT min(first_failed_at) FROM dlq_letters WHERE fingerprint = ?")
        let newest = try db.cachedStatement(sql: "SELECT max(last_failed_at) FROM dlq_letters WHERE fingerprint = ?")
        let sources = try db.cachedStatement(
            sql: "SELECT source FROM dlq_groups WHERE fingerprint = ? AND count > 0 ORDER BY source"
        )
        var groups: [DeadLetterGroup] = []
        for row in rows {
            let fingerprint = try row.decode(String.self, atIndex: 0)
            guard let first = try Row.fetchOne(sample, arguments: [fingerprint]) else { continue }
            let firstFailed = try Int64.fetchOne(oldest, arguments: [fingerprint]) ?? 0
            let lastFailed = try Int64.fetchOne(newest, arguments: [fingerprint]) ?? 0
            groups.append(
                DeadLetterGroup(
                    fingerprint: fingerprint,
                    count: try row.decode(Int.self, atIndex: 1),
                    errorType: try first.decode(String.self, atIndex: 0),
                    sampleMessage: try first.decode(String.self, atIndex: 1),
                    sources: try String.fetchAll(sources, arguments: [fingerprint]),
                    firstFailedAt: Date(millisecondsSince1970: firstFailed),
                    lastFailedAt: Date(millisecondsSince1970: lastFailed)
                )
            )
        }
        return groups
    }

    /// Removes the letters with these ids, leased or not.
    public func delete(ids: [String]) async throws -> Int {
        if ids.isEmpty { return 0 }
        let (condition, arguments) = SQLiteRows.condition(DeadLetterFilter(ids: ids))
        return try await self.write { db in
            try db.cachedStatement(sql: "DELETE FROM dlq_letters WHERE \(condition)").execute(arguments: arguments)
            return db.changesCount
        }
    }
}
