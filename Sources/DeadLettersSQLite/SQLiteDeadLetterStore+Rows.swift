import DeadLetters
import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How letters map to rows of `dlq_letters`, and filters to bound SQL.
enum SQLiteRows {
    /// The columns ``decode(_:)`` reads, in its order.
    static let columns = """
        id, source, reason, error_type, error_message, attempts, first_failed_at, last_failed_at, \
        next_attempt_at, expires_at, status, fingerprint, replay_count, content_type, causes, metadata, \
        history, payload, abandoned_claims
        """

    /// The insert of one letter, with ``insertArguments(_:)``.
    static func insertSQL(skipDuplicates: Bool) -> String {
        """
        INSERT INTO dlq_letters (id, source, reason, error_type, error_message, attempts, first_failed_at, \
        last_failed_at, next_attempt_at, expires_at, status, fingerprint, replay_count, content_type, size, \
        causes, metadata, history, payload, abandoned_claims) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """ + (skipDuplicates ? " ON CONFLICT (id) DO NOTHING" : "")
    }

    static func insertArguments(_ letter: DeadLetter) throws -> StatementArguments {
        var values: [(any DatabaseValueConvertible)?] = [letter.id]
        values.append(contentsOf: try self.stateValues(letter) as [(any DatabaseValueConvertible)?])
        return StatementArguments(values)
    }

    /// Every column but `id` and the lease, in the order of ``insertSQL(skipDuplicates:)``.
    private static func stateValues(_ letter: DeadLetter) throws -> [(any DatabaseValueConvertible)?] {
        [
            self.text(letter.source), self.text(letter.reason.rawValue), self.text(letter.errorType),
            self.text(letter.errorMessage), letter.attempts,
            letter.firstFailedAt.millisecondsSince1970, letter.lastFailedAt.millisecondsSince1970,
            letter.nextAttemptAt?.millisecondsSince1970, letter.expiresAt?.millisecondsSince1970,
            letter.status.rawValue, self.text(letter.fingerprint), letter.replayCount,
            letter.contentType.map(self.text),
            letter.storageSize,
            letter.causes.isEmpty ? nil : SQLiteJSON.encode(letter.causes),
            letter.metadata.isEmpty ? nil : SQLiteJSON.encode(letter.metadata),
            letter.storedHistoryJSON,
            letter.payload,
            letter.abandonedClaims,
        ]
    }

    /// A string to bind: SQLite binds text only up to a NUL, so a string holding one is stored as the BLOB of
    /// its UTF-8 bytes, which ``string(_:_:)`` reads back exactly.
    static func text(_ string: String) -> any DatabaseValueConvertible {
        string.utf8.contains(0) ? Data(string.utf8) : string
    }

    /// The string in column `index`, stored as text or (when it holds a NUL) as a BLOB.
    private static func string(_ row: Row, _ index: Int) throws -> String {
        let value: DatabaseValue = row[index]
        switch value.storage {
        case .string(let string): return string
        case .blob(let bytes): return String(decoding: bytes, as: UTF8.self)
        default:
            throw DeadLetterError(code: .invalidFormat, message: "a stored letter has no value in column \(index)")
        }
    }

    /// Writes a released letter's state and ends its lease, if `owner` holds it.
    static let releaseSQL = """
        UPDATE dlq_letters SET source = ?, reason = ?, error_type = ?, error_message = ?, attempts = ?, \
        first_failed_at = ?, last_failed_at = ?, next_attempt_at = ?, expires_at = ?, status = ?, fingerprint = ?, \
        replay_count = ?, content_type = ?, size = ?, causes = ?, metadata = ?, history = ?, payload = ?, \
        abandoned_claims = ?, lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?
        """

    static func releaseArguments(_ letter: DeadLetter, owner: String) throws -> StatementArguments {
        var values = try self.stateValues(letter)
        values.append(letter.id)
        values.append(owner)
        return StatementArguments(values)
    }

    /// The letter in a row selected with ``columns``.
    static func decode(_ row: Row) throws -> DeadLetter {
        let statusName = try row.decode(String.self, atIndex: 10)
        guard let status = DeadLetterStatus(rawValue: statusName) else {
            throw DeadLetterError(
                code: .invalidFormat,
                message: "unknown status '\(statusName)' in the store",
                id: try? row.decode(String.self, atIndex: 0)
            )
        }
        let nextAttemptAt = try row.decode(Int64?.self, atIndex: 8)
        let expiresAt = try row.decode(Int64?.self, atIndex: 9)
        let causes = try row.decode(String?.self, atIndex: 14)
        let metadata = try row.decode(String?.self, atIndex: 15)
        let history = try row.decode(String?.self, atIndex: 16).map(DeadLetter.storedHistory(fromJSON:))
        return DeadLetter(
            id: try row.decode(String.self, atIndex: 0),
            source: try self.string(row, 1),
            reason: FailureReason(rawValue: try self.string(row, 2)),
            errorType: try self.string(row, 3),
            errorMessage: try self.string(row, 4),
            causes: try causes.map { try SQLiteJSON.decodeArray($0) ?? self.unjson([String].self, $0) } ?? [],
            attempts: try row.decode(Int.self, atIndex: 5),
            firstFailedAt: Date(millisecondsSince1970: try row.decode(Int64.self, atIndex: 6)),
            lastFailedAt: Date(millisecondsSince1970: try row.decode(Int64.self, atIndex: 7)),
            nextAttemptAt: nextAttemptAt.map { Date(millisecondsSince1970: $0) },
            expiresAt: expiresAt.map { Date(millisecondsSince1970: $0) },
            status: status,
            fingerprint: try self.string(row, 11),
            replayCount: try row.decode(Int.self, atIndex: 12),
            metadata: try metadata.map { try SQLiteJSON.decodeObject($0) ?? self.unjson([String: String].self, $0) }
                ?? [:],
            contentType: try row.hasNull(atIndex: 13) ? nil : self.string(row, 13),
            payload: try row.decode(Data?.self, atIndex: 17) ?? Data(),
            history: history?.entries ?? [],
            historyOmitted: history?.omitted ?? 0,
            abandonedClaims: try row.decode(Int.self, atIndex: 18)
        )
    }

    static func fetchLetters(_ db: Database, sql: String, arguments: StatementArguments) throws -> [DeadLetter] {
        let statement = try db.cachedStatement(sql: sql)
        var letters: [DeadLetter] = []
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try rows.next() { letters.append(try self.decode(row)) }
        return letters
    }

    /// The `WHERE` condition (without the keyword) selecting what `plan` selects, and its bound values.
    /// Every value is bound; the SQL text depends only on which conditions there are.
    static func condition(
        _ plan: DeadLetterQueryPlan,
        indexSearch: Bool = true,
        correlateMetadata: Bool = false
    ) -> (sql: String, arguments: StatementArguments) {
        var dialect = SQLiteDialect()
        dialect.indexSearch = indexSearch
        dialect.correlateMetadata = correlateMetadata
        let sql = plan.render(&dialect)
        return (sql, dialect.arguments)
    }

    /// ``condition(_:)`` for what `filter` selects.
    static func condition(_ filter: DeadLetterFilter) -> (sql: String, arguments: StatementArguments) {
        self.condition(DeadLetterQueryPlan(filter))
    }

    static func json<Value: Encodable>(_ value: Value) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private static func unjson<Value: Decodable>(_ type: Value.Type, _ text: String) throws -> Value {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw DeadLetterError(code: .invalidFormat, message: "a stored JSON field cannot be read: \(error)")
        }
    }
}

/// SQLite's rendering of a ``DeadLetters/DeadLetterQueryPlan``: `?` placeholders bound in the order they
/// appear, a list bound as one JSON array read with `json_each`, and a search with `instr(lower(…))`.
struct SQLiteDialect: DeadLetterSQLDialect {
    /// The values bound so far, in the order of their placeholders.
    var arguments = StatementArguments()
    /// Whether a search reads its candidates from the trigram index (else it checks letters in the query's
    /// order, which finds the first page of a common text sooner).
    var indexSearch = true
    /// Whether a metadata pair is checked letter by letter in the query's order (else the letters holding it
    /// are read first, which suits a pair few letters hold).
    var correlateMetadata = false

    static let alwaysTrue = "1"
    static let alwaysFalse = "0"

    mutating func bind(_ text: String) -> String {
        self.arguments += [text]
        return "?"
    }

    mutating func bind(_ integer: Int64) -> String {
        self.arguments += [integer]
        return "?"
    }

    mutating func isIn(_ column: String, _ values: [String]) -> String {
        self.arguments += [SQLiteJSON.encode(values)]
        return "\(column) IN (SELECT value FROM json_each(?))"
    }

    mutating func contains(_ column: String, ignoringASCIICase text: String) -> String {
        // SQLite's lower() folds ASCII letters only, as DeadLetterFilter.matches does.
        "instr(lower(\(column)), lower(\(self.bind(text)))) > 0"
    }

    /// Candidates from the trigram index (the letters holding every trigram of the text, folding case more
    /// widely than ASCII: a superset) and the letters not indexed yet, each then checked exactly in `dlq_letters`. A text of fewer than 3
    /// characters has no trigram: every letter is checked.
    mutating func search(_ text: String) -> String {
        let candidates =
            text.unicodeScalars.count >= 3 && self.indexSearch
            ? "(seq IN (SELECT rowid FROM dlq_search WHERE dlq_search MATCH \(self.bind(SQLiteSearch.trigramQuery(text)))) "
                + "OR seq IN (SELECT seq FROM dlq_search_pending)) AND "
            : ""
        let needle = DeadLetterFilter.asciiLowercased(text)
        return """
            \(candidates)(instr(lower(error_message), \(self.bind(needle))) > 0 \
            OR (instr(lower(CAST(payload AS TEXT)), \(self.bind(needle))) > 0 \
            AND dlq_payload_text(payload) IS NOT NULL) \
            OR EXISTS (SELECT 1 FROM dlq_letter_meta AS dlq_pair WHERE dlq_pair.seq = dlq_letters.seq \
            AND instr(lower(dlq_pair.value), \(self.bind(needle))) > 0))
            """
    }

    mutating func metadata(key: String, value: String) -> String {
        if self.correlateMetadata {
            return """
                EXISTS (SELECT 1 FROM dlq_letter_meta AS dlq_pair WHERE dlq_pair.key = \(self.bind(key)) \
                AND dlq_pair.value = \(self.bind(value)) AND dlq_pair.seq = dlq_letters.seq)
                """
        }
        return "seq IN (SELECT seq FROM dlq_letter_meta WHERE key = \(self.bind(key)) AND value = \(self.bind(value)))"
    }
}
