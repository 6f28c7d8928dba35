import DeadLetters
import GRDB

/// The tables of a store file, versioned by `PRAGMA user_version` and migrated on open.
///
/// Version 1:
/// - `dlq_letters`: one row per letter; a column for every filterable field, timestamps as INTEGER
///   milliseconds since 1970, causes / metadata / history as JSON text (NULL when empty), the payload as a
///   BLOB (last, so reading the other columns never touches its overflow pages), the lease and the letter's
///   ``DeadLetter/storageSize``.
/// - `dlq_tallies`: letters, bytes and attempts per (source, reason, error type, status), kept in the same
///   transaction as every change (so that usage, counts and the summary of the whole store read a few rows
///   instead of every letter): by triggers for updates and deletes, and for inserts by the store itself, one
///   upsert per distinct key and batch (``SQLiteInsertTotals``), since a trigger per inserted row costs more
///   than the insert.
/// - `dlq_first_failures`: letters per minute of `first_failed_at`, for the age buckets of the summary.
/// - `dlq_groups`: letters per (fingerprint, source), for the groups of the whole store.
/// - `dlq_meta`: key / value facts about the file.
///
/// Version 3 adds `abandoned_claims` (see ``version3``); version 4 the operations and instances
/// (see ``version4``); version 5 search, metadata pairs and the sort indexes (see ``version5``).
///
/// Version 2 drops the indexes on `reason` and `error_type`: each letter written updated every index (most
/// of a commit's pages), and filters by reason or error type are served by the source and status indexes
/// (filters usually pair them with a source) or, alone, by walking the id order.
enum SQLiteSchema {
    /// The newest schema this code reads and writes.
    static let version = 5

    static func newerError(_ found: Int, path: String) -> DeadLetterError {
        DeadLetterError(
            code: .incompatibleStore,
            message: "the store has schema version \(found), newer than version \(Self.version) that this "
                + "version of swift-dead-letters knows; upgrade the package to open it (the file was left "
                + "untouched)",
            file: path
        )
    }

    /// Brings the schema of `db` to ``version``, in the caller's transaction.
    static func migrate(_ db: Database, from current: Int) throws {
        if current < 1 {
            try db.execute(sql: self.version1)
            try db.execute(sql: "PRAGMA application_id = \(SQLiteStoreFile.applicationID)")
        }
        if current < 2 {
            try db.execute(sql: self.version2)
        }
        if current < 3 {
            try db.execute(sql: self.version3)
        }
        if current < 4 {
            try db.execute(sql: self.version4)
        }
        if current < 5 {
            try db.execute(sql: self.version5)
        }
        try db.execute(sql: "PRAGMA user_version = \(Self.version)")
    }

    // The minute of a millisecond timestamp, rounded down (SQLite's `/` truncates toward zero).
    private static func minute(_ column: String) -> String {
        "(CASE WHEN \(column) >= 0 THEN \(column) / 60000 ELSE (\(column) - 59999) / 60000 END)"
    }

    private static var version1: String {
        """
        CREATE TABLE dlq_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
        INSERT INTO dlq_meta (key, value) VALUES ('format', 'swift-dead-letters store');
        CREATE TABLE dlq_letters (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            reason TEXT NOT NULL,
            error_type TEXT NOT NULL,
            error_message TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            first_failed_at INTEGER NOT NULL,
            last_failed_at INTEGER NOT NULL,
            next_attempt_at INTEGER,
            expires_at INTEGER,
            status TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            replay_count INTEGER NOT NULL,
            content_type TEXT,
            lease_owner TEXT,
            lease_expires_at INTEGER,
            size INTEGER NOT NULL,
            causes TEXT,
            metadata TEXT,
            history TEXT,
            payload BLOB
        );
        CREATE INDEX dlq_letters_source ON dlq_letters (source, id);
        CREATE INDEX dlq_letters_reason ON dlq_letters (reason, id);
        CREATE INDEX dlq_letters_error_type ON dlq_letters (error_type, id);
        CREATE INDEX dlq_letters_fingerprint ON dlq_letters (fingerprint, id, first_failed_at, last_failed_at);
        CREATE INDEX dlq_letters_status ON dlq_letters (status, id);
        CREATE INDEX dlq_letters_due ON dlq_letters (next_attempt_at) WHERE status = 'retrying';
        CREATE INDEX dlq_letters_expiry ON dlq_letters (expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX dlq_letters_first_failed ON dlq_letters (first_failed_at);
        CREATE INDEX dlq_letters_last_failed ON dlq_letters (last_failed_at);
        CREATE TABLE dlq_tallies (
            source TEXT NOT NULL,
            reason TEXT NOT NULL,
            error_type TEXT NOT NULL,
            status TEXT NOT NULL,
            count INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            PRIMARY KEY (source, reason, error_type, status)
        ) WITHOUT ROWID;
        CREATE TABLE dlq_first_failures (minute INTEGER PRIMARY KEY, count INTEGER NOT NULL);
        CREATE TABLE dlq_groups (
            fingerprint TEXT NOT NULL,
            source TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (fingerprint, source)
        ) WITHOUT ROWID;
        CREATE TRIGGER dlq_letters_deleted AFTER DELETE ON dlq_letters BEGIN
            \(self.subtract("OLD"))
        END;
        CREATE TRIGGER dlq_letters_updated
        AFTER UPDATE OF source, reason, error_type, status, attempts, size, first_failed_at, fingerprint ON dlq_letters
        BEGIN
            \(self.subtract("OLD"))
            \(self.add("NEW"))
        END;
        """
    }

    /// Version 3, the letter's lifecycle: `abandoned_claims` counts claims that ended without an outcome (a
    /// lease still recorded when the letter is claimed again). The history column keeps stored format
    /// version 2's entries, without the first failure while it is still the letter's own error (version-1
    /// histories read as they are), so no row is rewritten.
    private static var version3: String {
        """
        ALTER TABLE dlq_letters ADD COLUMN abandoned_claims INTEGER NOT NULL DEFAULT 0;
        """
    }

    /// Version 4, recovery as operations: `dlq_operations` (one JSON document per operation beside its
    /// creation time and stored state), `dlq_operation_letters` (each operation's frozen set, one row per
    /// letter with its outcome; counts are read from it), `dlq_instances` (who runs a queue). New tables
    /// only: no letter row is touched.
    private static var version4: String {
        """
        CREATE TABLE IF NOT EXISTS dlq_operations (
            id TEXT PRIMARY KEY NOT NULL,
            created_at INTEGER NOT NULL,
            state TEXT NOT NULL,
            document TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS dlq_operations_created ON dlq_operations (created_at);
        CREATE TABLE IF NOT EXISTS dlq_operation_letters (
            operation_id TEXT NOT NULL,
            letter_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            at INTEGER,
            error_type TEXT,
            error_message TEXT,
            PRIMARY KEY (operation_id, letter_id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS dlq_operation_letters_outcome ON dlq_operation_letters (operation_id, outcome, letter_id);
        CREATE TABLE IF NOT EXISTS dlq_instances (
            id TEXT PRIMARY KEY NOT NULL,
            last_seen_at INTEGER NOT NULL,
            document TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    }

    /// Version 5, search and sorting:
    /// - `dlq_search`: an FTS5 index with the trigram tokenizer, one row per letter (its rowid the letter's
    ///   `seq`): the error message, the metadata values (one per line) and the payload as text when it is
    ///   bytes without NUL (``SQLiteSearch/payloadText(_:)``; a sealed payload starts with NUL, so it is never
    ///   indexed). Contentless and without positions (`content = ''`, `detail = none`): it keeps only which
    ///   letters hold each trigram, a third of the size and of the cost to write of a full FTS5 table. A search
    ///   asks it for the letters that hold every trigram of the text, then checks each candidate's fields
    ///   exactly in `dlq_letters` (and that the payload is UTF-8, with the function `dlq_payload_text` the
    ///   store registers on its connections).
    /// - `dlq_letter_meta`: one row per metadata pair (`seq`, key, value), indexed by (key, value, seq).
    /// - Triggers keep both in step with every insert, delete and update of the message, metadata or payload,
    ///   whichever code path writes it (append, import, outcomes, edits, deletes, purges, expiry, eviction):
    ///   the metadata pairs at once; the FTS5 index through `dlq_search_pending` (letters to index) and
    ///   `dlq_search_deleted` (indexed values to take out), which the store applies in one statement each at
    ///   the end of its write transactions (``SQLiteSearch/flush(_:)``). A search also reads the pending
    ///   letters, so it is exact at every moment. The triggers are plain SQL: any SQLite connection may still
    ///   write letters (the store indexes them at its next write).
    /// - Indexes for the sorts: `(last_failed_at, id)`, `(first_failed_at, id)` (replacing the one-column
    ///   indexes) and `(attempts, id)`; `(source, id)` exists since version 1.
    /// Existing letters are indexed by the migration, which can run again (a file whose version was set back).
    private static var version5: String {
        """
        CREATE VIRTUAL TABLE IF NOT EXISTS dlq_search USING fts5(
            message, meta, payload, tokenize = 'trigram', content = '', detail = none
        );
        CREATE TABLE IF NOT EXISTS dlq_letter_meta (
            seq INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (key, value, seq)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS dlq_letter_meta_seq ON dlq_letter_meta (seq);
        CREATE TABLE IF NOT EXISTS dlq_search_pending (seq INTEGER PRIMARY KEY);
        CREATE TABLE IF NOT EXISTS dlq_search_deleted (
            seq INTEGER PRIMARY KEY, message TEXT, meta TEXT, payload TEXT
        );
        CREATE TRIGGER IF NOT EXISTS dlq_letters_search_inserted AFTER INSERT ON dlq_letters BEGIN
            \(SQLiteSearch.index("NEW"))
        END;
        CREATE TRIGGER IF NOT EXISTS dlq_letters_search_deleted AFTER DELETE ON dlq_letters BEGIN
            \(SQLiteSearch.unindex("OLD"))
        END;
        CREATE TRIGGER IF NOT EXISTS dlq_letters_search_updated
        AFTER UPDATE OF error_message, metadata, payload ON dlq_letters
        WHEN OLD.error_message IS NOT NEW.error_message OR OLD.metadata IS NOT NEW.metadata
            OR OLD.payload IS NOT NEW.payload
        BEGIN
            \(SQLiteSearch.unindex("OLD"))
            \(SQLiteSearch.index("NEW"))
        END;
        INSERT INTO dlq_search (dlq_search) VALUES ('delete-all');
        DELETE FROM dlq_search_pending;
        DELETE FROM dlq_search_deleted;
        DELETE FROM dlq_letter_meta;
        INSERT INTO dlq_search (rowid, message, meta, payload)
            SELECT seq, error_message, \(SQLiteSearch.metaValues("dlq_letters")), \(SQLiteSearch.payloadText("dlq_letters"))
            FROM dlq_letters;
        INSERT INTO dlq_letter_meta (seq, key, value)
            SELECT dlq_letters.seq, m.key, m.value FROM dlq_letters, json_each(dlq_letters.metadata) AS m
            WHERE dlq_letters.metadata IS NOT NULL;
        DROP INDEX IF EXISTS dlq_letters_first_failed;
        DROP INDEX IF EXISTS dlq_letters_last_failed;
        CREATE INDEX IF NOT EXISTS dlq_letters_last_failed ON dlq_letters (last_failed_at, id);
        CREATE INDEX IF NOT EXISTS dlq_letters_first_failed ON dlq_letters (first_failed_at, id);
        CREATE INDEX IF NOT EXISTS dlq_letters_attempts ON dlq_letters (attempts, id);
        """
    }

    private static var version2: String {
        """
        DROP INDEX IF EXISTS dlq_letters_reason;
        DROP INDEX IF EXISTS dlq_letters_error_type;
        """
    }

    /// Adds inserted letters to `dlq_tallies`: source, reason, error type, status, count, bytes, attempts.
    static let addTally = """
        INSERT INTO dlq_tallies (source, reason, error_type, status, count, bytes, attempts) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET count = count + excluded.count, bytes = bytes + excluded.bytes,
            attempts = attempts + excluded.attempts
        """
    /// Adds inserted letters to `dlq_first_failures`: minute, count.
    static let addFirstFailures = """
        INSERT INTO dlq_first_failures (minute, count) VALUES (?, ?)
        ON CONFLICT DO UPDATE SET count = count + excluded.count
        """
    /// Adds inserted letters to `dlq_groups`: fingerprint, source, count.
    static let addGroup = """
        INSERT INTO dlq_groups (fingerprint, source, count) VALUES (?, ?, ?)
        ON CONFLICT DO UPDATE SET count = count + excluded.count
        """

    /// The minute of a millisecond timestamp, rounded down, as the triggers compute it.
    static func minute(ofMilliseconds milliseconds: Int64) -> Int64 {
        milliseconds >= 0 ? milliseconds / 60000 : (milliseconds - 59999) / 60000
    }

    private static func add(_ row: String) -> String {
        """
        INSERT INTO dlq_tallies (source, reason, error_type, status, count, bytes, attempts)
            VALUES (\(row).source, \(row).reason, \(row).error_type, \(row).status, 1, \(row).size, \(row).attempts)
            ON CONFLICT DO UPDATE SET count = count + 1, bytes = bytes + excluded.bytes,
                attempts = attempts + excluded.attempts;
        INSERT INTO dlq_first_failures (minute, count) VALUES (\(self.minute("\(row).first_failed_at")), 1)
            ON CONFLICT DO UPDATE SET count = count + 1;
        INSERT INTO dlq_groups (fingerprint, source, count) VALUES (\(row).fingerprint, \(row).source, 1)
            ON CONFLICT DO UPDATE SET count = count + 1;
        """
    }

    private static func subtract(_ row: String) -> String {
        """
        UPDATE dlq_tallies SET count = count - 1, bytes = bytes - \(row).size, attempts = attempts - \(row).attempts
            WHERE source = \(row).source AND reason = \(row).reason AND error_type = \(row).error_type
                AND status = \(row).status;
        UPDATE dlq_first_failures SET count = count - 1 WHERE minute = \(self.minute("\(row).first_failed_at"));
        UPDATE dlq_groups SET count = count - 1 WHERE fingerprint = \(row).fingerprint AND source = \(row).source;
        """
    }
}
