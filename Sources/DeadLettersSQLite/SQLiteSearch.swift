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

    /// The payload of `row` as the search table indexes it: its bytes as text unless they hold a NUL (a sealed
    /// payload starts with one). Bytes that are not UTF-8 are kept too, but a search checks each candidate
    /// with `dlq_payload_text`, so they never match.
    static func payloadText(_ row: String) -> String {
        "CASE WHEN instr(\(row).payload, x'00') = 0 THEN CAST(\(row).payload AS TEXT) END"
    }

    /// The metadata values of `row`, one per line, or `NULL`.
    static func metaValues(_ row: String) -> String {
        "(SELECT group_concat(value, char(10)) FROM json_each(\(row).metadata))"
    }

    /// What the insert trigger does: the letter waits in `dlq_search_pending` for ``flush(_:)``; its metadata
    /// pairs are written at once.
    static func index(_ row: String) -> String {
        """
        INSERT OR IGNORE INTO dlq_search_pending (seq) VALUES (\(row).seq);
        INSERT INTO dlq_letter_meta (seq, key, value)
            SELECT \(row).seq, key, value FROM json_each(\(row).metadata) WHERE \(row).metadata IS NOT NULL;
        """
    }

    /// What the delete and update triggers do with the old row `row` (`OLD`): when the index holds it, its
    /// indexed values are kept in `dlq_search_deleted` for ``flush(_:)`` to take out (a contentless FTS5 table
    /// is told the values it indexed); its metadata pairs go at once.
    static func unindex(_ row: String) -> String {
        """
        INSERT OR IGNORE INTO dlq_search_deleted (seq, message, meta, payload)
            SELECT \(row).seq, \(row).error_message, \(self.metaValues(row)), \(self.payloadText(row))
            WHERE NOT EXISTS (SELECT 1 FROM dlq_search_pending WHERE seq = \(row).seq);
        DELETE FROM dlq_search_pending WHERE seq = \(row).seq;
        DELETE FROM dlq_letter_meta WHERE seq = \(row).seq;
        """
    }

    /// How many letters wait for the index before a write transaction indexes them: searches read waiting
    /// letters one by one (exact answers either way), so a thousand cost a search about a millisecond, and
    /// the index grows in segments of a thousand instead of one per commit.
    ///
    /// Measured (`dlq-benchmarks --profile-sqlite-add 64 300`, release, 2 shared cores, one after the other):
    /// indexing at the end of every write transaction, 8,998/s durable and 10,694/s fast; waiting for a
    /// thousand, 13,351/s and 14,674/s. (Appends of 1,000 or more index at each commit either way.)
    static let flushThreshold = 1000

    /// Brings the FTS5 index up to date in one statement each way, at the end of the store's write
    /// transactions once ``flushThreshold`` letters wait (or always, with `force`: an import, a migration):
    /// FTS5 writes its pending terms out at every statement of a transaction that follows a write to it, so a
    /// trigger that indexed each inserted letter made a segment per letter (appends of 1,000 ran 91% slower).
    /// Letters still waiting are searched by reading them.
    static func flush(_ db: Database, force: Bool = false) throws {
        let waiting: Bool?
        if force {
            waiting = try Bool.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT EXISTS (SELECT 1 FROM dlq_search_pending) OR EXISTS (SELECT 1 FROM dlq_search_deleted)
                        """
                )
            )
        } else {
            waiting = try Bool.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT (SELECT count(*) FROM (SELECT 1 FROM dlq_search_pending LIMIT ?1))
                            + (SELECT count(*) FROM (SELECT 1 FROM dlq_search_deleted LIMIT ?1)) >= ?1
                        """
                ),
                arguments: [Self.flushThreshold]
            )
        }
        guard waiting == true else { return }
        try db.cachedStatement(
            sql: """
                INSERT INTO dlq_search (dlq_search, rowid, message, meta, payload)
                    SELECT 'delete', seq, message, meta, payload FROM dlq_search_deleted
                """
        ).execute()
        try db.cachedStatement(sql: "DELETE FROM dlq_search_deleted").execute()
        try db.cachedStatement(
            sql: """
                INSERT INTO dlq_search (rowid, message, meta, payload)
                    SELECT l.seq, l.error_message, \(self.metaValues("l")), \(self.payloadText("l"))
                    FROM dlq_search_pending AS p JOIN dlq_letters AS l ON l.seq = p.seq
                """
        ).execute()
        try db.cachedStatement(sql: "DELETE FROM dlq_search_pending").execute()
    }

    /// At most this many trigrams of a text are looked up (spread over it): enough to narrow the candidates,
    /// which are checked exactly anyway.
    static let maximumTrigrams = 24

    /// The FTS5 query for the letters that hold every trigram of `text` (of 3 characters or more): each
    /// trigram a quoted string (quotes doubled), joined by `AND`. A superset of the letters holding `text`.
    static func trigramQuery(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var seen = Set<String>()
        var trigrams: [String] = []
        for start in 0...(scalars.count - 3) {
            var trigram = ""
            trigram.unicodeScalars.append(contentsOf: scalars[start..<(start + 3)])
            if seen.insert(trigram.lowercased()).inserted { trigrams.append(trigram) }
        }
        if trigrams.count > self.maximumTrigrams {
            let step = Double(trigrams.count - 1) / Double(self.maximumTrigrams - 1)
            trigrams = (0..<self.maximumTrigrams).map { trigrams[Int((Double($0) * step).rounded())] }
        }
        return trigrams.map { "\"" + $0.replacing("\"", with: "\"\"") + "\"" }.joined(separator: " AND ")
    }
}
