import DeadLetters
import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How the SQLite store keeps search and metadata pairs (schema version 5, ``SQLiteSchema``): the SQL of its
/// triggers and of a search's condition.
enum SQLiteSearch {
    /// `dlq_payload_text(bytes)`: the bytes as text when ``DeadLetters/DeadLetterFilter/searchablePayloadText(_:)``
    /// reads them as text (UTF-8 without NUL), else `NULL`. Registered on every connection of the store; only
    /// searches call it (the triggers are plain SQL, so that any SQLite connection can still write letters).
    static let payloadTextFunction = DatabaseFunction("dlq_payload_text", argumentCount: 1, pure: true) { values in
        guard case .blob(let bytes) = values[0].storage else { return nil }
        return DeadLetterFilter.searchablePayloadText(bytes)
    }

    /// The payload of `row` as the search table keeps it: its bytes as text unless they hold a NUL (a sealed
    /// payload starts with one). Bytes that are not UTF-8 are kept too, but a search checks each candidate
    /// with `dlq_payload_text`, so they never match.
    static func payloadText(_ row: String) -> String {
        "CASE WHEN instr(\(row).payload, x'00') = 0 THEN CAST(\(row).payload AS TEXT) END"
    }

    /// The metadata values of `row`, one per line, or `NULL`.
    static func metaValues(_ row: String) -> String {
        "(SELECT group_concat(value, char(10)) FROM json_each(\(row).metadata))"
    }

    /// Indexes the letter `row` (`NEW` in a trigger).
    static func index(_ row: String) -> String {
        """
        INSERT INTO dlq_search (rowid, message, meta, payload)
            VALUES (\(row).seq, \(row).error_message, \(self.metaValues(row)), \(self.payloadText(row)));
        INSERT INTO dlq_letter_meta (seq, key, value)
            SELECT \(row).seq, key, value FROM json_each(\(row).metadata) WHERE \(row).metadata IS NOT NULL;
        """
    }

    /// Removes the letter `row` (`OLD` in a trigger) from the index.
    static func unindex(_ row: String) -> String {
        """
        DELETE FROM dlq_search WHERE rowid = \(row).seq;
        DELETE FROM dlq_letter_meta WHERE seq = \(row).seq;
        """
    }

    /// The FTS5 query that finds `text` as a substring: one quoted string (quotes doubled).
    static func phrase(_ text: String) -> String {
        "\"" + text.replacing("\"", with: "\"\"") + "\""
    }
}
