#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A ``DeadLetterFilter`` as SQL conditions over the letters' columns, each value to be bound as a
/// parameter: the one translation of a filter that both SQL stores render, each in its dialect
/// (``DeadLetterSQLDialect``).
///
/// The conditions follow ``DeadLetterFilter/matches(_:)``. Stored text never holds NUL (PostgreSQL refuses it,
/// SQLite binds text only up to it), so a value holding one selects nothing. A list of one value is an `=`,
/// so that an index on `(column, id)` serves `ORDER BY id` directly.
package struct DeadLetterQueryPlan: Sendable, Hashable {
    /// A column of the letters' table, named as both SQL stores name it.
    package enum Column: String, Sendable, Hashable {
        case id
        case source
        case reason
        case errorType = "error_type"
        case errorMessage = "error_message"
        case fingerprint
        case status
        case attempts
        case lastFailedAt = "last_failed_at"
        case firstFailedAt = "first_failed_at"
        case expiresAt = "expires_at"
    }

    /// One condition; a plan's conditions all hold for a selected letter.
    package enum Condition: Sendable, Hashable {
        /// Selects nothing.
        case never
        /// The column's text is this value.
        case equals(Column, String)
        /// The column's text is one of these values (two or more, bound as one parameter).
        case isIn(Column, [String])
        /// The column's text sorts after this value (a page's cursor).
        case after(Column, String)
        /// The column's integer is at least this value.
        case atLeast(Column, Int64)
        /// The column's integer is below this value.
        case below(Column, Int64)
        /// The column's integer is at most this value; a `NULL` is not selected.
        case atMost(Column, Int64)
        /// The column's text contains this text, folding the case of ASCII letters only.
        case containsIgnoringASCIICase(Column, String)
        /// The error message, a metadata value or the text payload contains this text, folding the case of
        /// ASCII letters only (``DeadLetterFilter/search``).
        case search(String)
        /// The metadata has this key with this value.
        case metadata(key: String, value: String)
        /// The pair (column, id) sorts after (or, descending, before) this pair (a sorted page's cursor).
        case afterPosition(Column, DeadLetterSort.SortValue, id: String, descending: Bool)
    }

    /// The conditions, in the order they are rendered (and, for `?` placeholders, bound).
    package private(set) var conditions: [Condition] = []

    /// The conditions that select what `filter` selects.
    package init(_ filter: DeadLetterFilter) {
        self.add(.id, oneOf: filter.ids)
        self.add(.source, oneOf: filter.sources)
        self.add(.reason, oneOf: filter.reasons)
        self.add(.errorType, oneOf: filter.errorTypes)
        self.add(.fingerprint, oneOf: filter.fingerprints)
        self.add(.status, oneOf: filter.statuses.map(\.rawValue))
        if let since = filter.since { self.add(.atLeast(.lastFailedAt, since.millisecondsSince1970)) }
        if let until = filter.until { self.add(.below(.lastFailedAt, until.millisecondsSince1970)) }
        if let minAttempts = filter.minAttempts { self.add(.atLeast(.attempts, Int64(minAttempts))) }
        if let search = filter.search, search.utf8.contains(0) {
            self.add(.never)
        } else if let search = filter.search, !search.isEmpty {
            self.add(.search(search))
        }
        for (key, value) in filter.metadata.sorted(by: { $0.key < $1.key }) {
            self.add(key.utf8.contains(0) || value.utf8.contains(0) ? .never : .metadata(key: key, value: value))
        }
        if let expiresBefore = filter.expiresBefore {
            self.add(.atMost(.expiresAt, expiresBefore.millisecondsSince1970))
        }
    }

    /// Adds a condition.
    package mutating func add(_ condition: Condition) {
        self.conditions.append(condition)
    }

    /// Selects only letters whose id sorts after `cursor` (a page's ``DeadLetterPage/nextCursor``), when there
    /// is one. Ids never hold NUL, so the cursor is cut at its first NUL: the same letters follow it.
    package mutating func after(id cursor: String?) {
        guard let cursor else { return }
        self.add(.after(.id, String(cursor.prefix { $0 != "\0" })))
    }

    /// Selects only letters after `cursor` (a ``DeadLetterPage/nextCursor`` of a page sorted by `sort`), when
    /// there is one.
    /// - Throws: ``DeadLetterError/Code/invalidFilter`` for a cursor that is not one of this order.
    package mutating func after(_ sort: DeadLetterSort, cursor: String?) throws {
        guard let cursor else { return }
        guard let column = Self.column(sort) else { return self.after(id: cursor) }
        let position = try sort.position(cursor)
        var value = position.value
        if case .text(let text) = value { value = .text(String(text.prefix { $0 != "\0" })) }
        let id = String(position.id.prefix { $0 != "\0" })
        self.add(.afterPosition(column, value, id: id, descending: sort.isDescending))
    }

    /// The column `sort` orders by before the id, or `nil` for the id order.
    package static func column(_ sort: DeadLetterSort) -> Column? {
        switch sort.key {
        case .id: return nil
        case .lastFailed: return .lastFailedAt
        case .firstFailed: return .firstFailedAt
        case .attempts: return .attempts
        case .source: return .source
        }
    }

    /// The `ORDER BY` terms (without the keywords) of `sort`: its column then the id, in one direction, so
    /// that an index on (column, id) serves it.
    package static func orderBy(_ sort: DeadLetterSort) -> String {
        guard let column = self.column(sort) else { return "id" }
        let direction = sort.isDescending ? " DESC" : ""
        return "\(column.rawValue)\(direction), id\(direction)"
    }

    private mutating func add(_ column: Column, oneOf values: [String]) {
        guard !values.isEmpty else { return }
        let storable = values.filter { !$0.utf8.contains(0) }
        switch storable.count {
        case 0: self.add(.never)
        case 1: self.add(.equals(column, storable[0]))
        default: self.add(.isIn(column, storable))
        }
    }

    /// The `WHERE` condition (without the keyword) in `dialect`, whose bindings receive the values in the
    /// order their placeholders appear. The SQL text depends only on which conditions there are.
    package func render<Dialect: DeadLetterSQLDialect>(_ dialect: inout Dialect) -> String {
        guard !self.conditions.isEmpty else { return Dialect.alwaysTrue }
        var parts: [String] = []
        for condition in self.conditions {
            switch condition {
            case .never: parts.append(Dialect.alwaysFalse)
            case .equals(let column, let value): parts.append("\(column.rawValue) = \(dialect.bind(value))")
            case .isIn(let column, let values): parts.append(dialect.isIn(column.rawValue, values))
            case .after(let column, let value): parts.append("\(column.rawValue) > \(dialect.bind(value))")
            case .atLeast(let column, let value): parts.append("\(column.rawValue) >= \(dialect.bind(value))")
            case .below(let column, let value): parts.append("\(column.rawValue) < \(dialect.bind(value))")
            case .atMost(let column, let value):
                // `IS NOT NULL` spelled out: SQLite then serves the range from a partial index on the column's
                // non-null values (without it, a page of expiring letters scans the id index).
                parts.append("\(column.rawValue) IS NOT NULL AND \(column.rawValue) <= \(dialect.bind(value))")
            case .containsIgnoringASCIICase(let column, let text):
                parts.append(dialect.contains(column.rawValue, ignoringASCIICase: text))
            case .search(let text): parts.append(dialect.search(text))
            case .metadata(let key, let value): parts.append(dialect.metadata(key: key, value: value))
            case .afterPosition(let column, let value, let id, let descending):
                let bound: String
                switch value {
                case .text(let text): bound = dialect.bind(text)
                case .integer(let integer): bound = dialect.bind(integer)
                }
                parts.append("(\(column.rawValue), id) \(descending ? "<" : ">") (\(bound), \(dialect.bind(id)))")
            }
        }
        return parts.joined(separator: " AND ")
    }
}

/// How an SQL store writes what differs between SQL dialects in a ``DeadLetterQueryPlan``: placeholders
/// (`?` or `$n`), the binding of a list and a case-insensitive search. A dialect value collects the bound
/// values in its own form (GRDB's arguments, PostgresNIO's bindings).
package protocol DeadLetterSQLDialect {
    /// A condition that always holds.
    static var alwaysTrue: String { get }
    /// A condition that never holds.
    static var alwaysFalse: String { get }
    /// Binds a text value.
    /// - Returns: the expression that stands for it in SQL.
    mutating func bind(_ text: String) -> String
    /// Binds an integer value.
    /// - Returns: the expression that stands for it in SQL.
    mutating func bind(_ integer: Int64) -> String
    /// The condition that `column` is one of `values`, bound as one parameter.
    mutating func isIn(_ column: String, _ values: [String]) -> String
    /// The condition that `column` contains `text`, folding the case of ASCII letters only (as
    /// ``DeadLetterFilter/asciiCaseInsensitiveContains(_:_:)`` does).
    mutating func contains(_ column: String, ignoringASCIICase text: String) -> String
    /// The condition that the letter's error message, one of its metadata values or its text payload contains
    /// `text`, folding the case of ASCII letters only (``DeadLetterFilter/search``), served by the store's
    /// search index.
    mutating func search(_ text: String) -> String
    /// The condition that the letter's metadata has `key` with `value`, served by the store's metadata table.
    mutating func metadata(key: String, value: String) -> String
}
