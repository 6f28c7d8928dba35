import CMallocInfo
import DeadLetters
import DeadLettersSQLite
import Foundation
import GRDBSQLite

/// SQLite through its C API alone, the "raw SQLite" that the store's figures are divided by.
///
/// A baseline opens a file that ``SQLiteDeadLetterStore`` created (so its tables, indexes and triggers are the
/// store's own and cannot drift from it), sets what the store's writer sets (WAL, `synchronous`, the
/// checkpoint size, the page cache, temporary storage in memory), and runs only the statements: rows are made
/// before the clock starts.
final class RawSQLite {
    let handle: OpaquePointer

    init(path: String) throws {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &db, flags, nil) == SQLITE_OK, let db else {
            sqlite3_close_v2(db)
            throw BenchmarkError("raw SQLite cannot open \(path)")
        }
        self.handle = db
    }

    /// Opens `path` after creating an empty store there with ``SQLiteDeadLetterStore``, with the settings of
    /// the store's writer at `durability`.
    static func emptyStore(path: String, durable: Bool) throws -> RawSQLite {
        SQLiteFixtures.remove(path)
        try SQLiteDeadLetterStore(path: path).close()
        let raw = try RawSQLite(path: path)
        try raw.configure(durable: durable)
        return raw
    }

    /// The writer's settings of `SQLiteDeadLetterStore` (see its `prepareWriter` and `grdbConfiguration`).
    func configure(durable: Bool) throws {
        try self.execute(
            """
            PRAGMA journal_mode = WAL; PRAGMA synchronous = \(durable ? "FULL" : "NORMAL");
            PRAGMA wal_autocheckpoint = 8192; PRAGMA journal_size_limit = 67108864;
            PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY; PRAGMA busy_timeout = 5000;
            """
        )
    }

    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(self.handle, sql, nil, nil, &message) == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "unknown"
            sqlite3_free(message)
            throw BenchmarkError("raw SQLite: \(text) in \(sql.prefix(60))")
        }
    }

    func prepare(_ sql: String) throws -> RawStatement {
        var statement: OpaquePointer?
        guard
            sqlite3_prepare_v3(self.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
                == SQLITE_OK, let statement
        else {
            throw BenchmarkError("raw SQLite: \(String(cString: sqlite3_errmsg(self.handle))) in \(sql.prefix(60))")
        }
        return RawStatement(statement, db: self.handle)
    }

    func close() {
        sqlite3_close_v2(self.handle)
    }
}

/// A prepared statement of ``RawSQLite``.
final class RawStatement {
    let handle: OpaquePointer
    let db: OpaquePointer

    init(_ handle: OpaquePointer, db: OpaquePointer) {
        self.handle = handle
        self.db = db
    }

    deinit { sqlite3_finalize(self.handle) }

    func bind(_ value: String?, _ index: Int32) {
        guard let value else {
            sqlite3_bind_null(self.handle, index)
            return
        }
        var text = value
        text.withUTF8 { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            _ = sqlite3_bind_text(
                self.handle,
                index,
                base.assumingMemoryBound(to: CChar.self),
                Int32(bytes.count),
                rawTransient
            )
        }
    }

    func bind(_ value: Int64?, _ index: Int32) {
        if let value { sqlite3_bind_int64(self.handle, index, value) } else { sqlite3_bind_null(self.handle, index) }
    }

    func bind(_ value: Int, _ index: Int32) { sqlite3_bind_int64(self.handle, index, Int64(value)) }

    func bind(_ value: Data, _ index: Int32) {
        value.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(self.handle, index, bytes.baseAddress, Int32(bytes.count), rawTransient)
        }
    }

    /// Steps to the next row; `false` at the end (or on an error).
    func nextRow() -> Bool { sqlite3_step(self.handle) == SQLITE_ROW }

    /// The text of `column` in the current row.
    func text(_ column: Int32) -> String {
        sqlite3_column_text(self.handle, column).map { String(cString: $0) } ?? ""
    }

    /// Steps to the end, then resets; throws on an error.
    func run() throws {
        var code = sqlite3_step(self.handle)
        while code == SQLITE_ROW { code = sqlite3_step(self.handle) }
        sqlite3_reset(self.handle)
        guard code == SQLITE_DONE else {
            throw BenchmarkError("raw SQLite: \(String(cString: sqlite3_errmsg(self.db)))")
        }
    }

    /// Steps through the rows, reading each column once as SQLite's own types (as a decoder would touch them).
    func readRows(columns: Int32) throws -> Int {
        var rows = 0
        var code = sqlite3_step(self.handle)
        while code == SQLITE_ROW {
            for column in 0..<columns {
                switch sqlite3_column_type(self.handle, column) {
                case SQLITE_INTEGER: _ = sqlite3_column_int64(self.handle, column)
                case SQLITE_TEXT: _ = sqlite3_column_text(self.handle, column)
                case SQLITE_BLOB: _ = sqlite3_column_blob(self.handle, column)
                default: break
                }
            }
            rows += 1
            code = sqlite3_step(self.handle)
        }
        sqlite3_reset(self.handle)
        guard code == SQLITE_DONE else {
            throw BenchmarkError("raw SQLite: \(String(cString: sqlite3_errmsg(self.db)))")
        }
        return rows
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies the bound bytes.
let rawTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// The rows of a batch of letters as the store writes them: the letters' rows and what they add to the running
/// totals (one upsert per distinct key of the batch, as the store writes them), made before the clock starts.
struct RawBatch {
    struct Tally: Hashable {
        var source: String
        var reason: String
        var errorType: String
        var status: String
    }

    struct Group: Hashable {
        var fingerprint: String
        var source: String
    }

    var letters: [DeadLetter]
    var metadata: [String?]
    var tallies: [Tally: (count: Int, bytes: Int, attempts: Int)] = [:]
    var minutes: [Int64: Int] = [:]
    var groups: [Group: Int] = [:]

    init(_ letters: [DeadLetter]) {
        self.letters = letters
        self.metadata = letters.map { $0.metadata.isEmpty ? nil : Self.json($0.metadata) }
        for letter in letters {
            let key = Tally(
                source: letter.source,
                reason: letter.reason.rawValue,
                errorType: letter.errorType,
                status: letter.status.rawValue
            )
            let old = self.tallies[key] ?? (0, 0, 0)
            self.tallies[key] = (old.count + 1, old.bytes + letter.storageSize, old.attempts + letter.attempts)
            let milliseconds = letter.firstFailedAt.millisecondsSince1970
            let minute = milliseconds >= 0 ? milliseconds / 60000 : (milliseconds - 59999) / 60000
            self.minutes[minute, default: 0] += 1
            self.groups[Group(fingerprint: letter.fingerprint, source: letter.source), default: 0] += 1
        }
    }

    /// The store's metadata text: an object with sorted keys.
    static func json(_ metadata: [String: String]) -> String {
        let data = try? JSONSerialization.data(
            withJSONObject: metadata,
            options: [.sortedKeys, .withoutEscapingSlashes]
        )
        return data.map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// The statements that insert letters into a store's tables, prepared once.
struct RawInserter {
    let insert: RawStatement
    let tally: RawStatement
    let minute: RawStatement
    let group: RawStatement

    init(_ db: RawSQLite) throws {
        self.insert = try db.prepare(
            """
            INSERT INTO dlq_letters (id, source, reason, error_type, error_message, attempts, first_failed_at, \
            last_failed_at, next_attempt_at, expires_at, status, fingerprint, replay_count, content_type, size, \
            causes, metadata, history, payload, abandoned_claims) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        )
        self.tally = try db.prepare(
            """
            INSERT INTO dlq_tallies (source, reason, error_type, status, count, bytes, attempts) \
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count, \
            bytes = bytes + excluded.bytes, attempts = attempts + excluded.attempts
            """
        )
        self.minute = try db.prepare(
            """
            INSERT INTO dlq_first_failures (minute, count) VALUES (?, ?) \
            ON CONFLICT DO UPDATE SET count = count + excluded.count
            """
        )
        self.group = try db.prepare(
            """
            INSERT INTO dlq_groups (fingerprint, source, count) VALUES (?, ?, ?) \
            ON CONFLICT DO UPDATE SET count = count + excluded.count
            """
        )
    }

    /// Inserts the batch's letters and upserts its totals (in the caller's transaction).
    func write(_ batch: RawBatch) throws {
        let insert = self.insert
        for (letter, metadata) in zip(batch.letters, batch.metadata) {
            insert.bind(letter.id, 1)
            insert.bind(letter.source, 2)
            insert.bind(letter.reason.rawValue, 3)
            insert.bind(letter.errorType, 4)
            insert.bind(letter.errorMessage, 5)
            insert.bind(letter.attempts, 6)
            insert.bind(letter.firstFailedAt.millisecondsSince1970, 7)
            insert.bind(letter.lastFailedAt.millisecondsSince1970, 8)
            insert.bind(letter.nextAttemptAt?.millisecondsSince1970, 9)
            insert.bind(letter.expiresAt?.millisecondsSince1970, 10)
            insert.bind(letter.status.rawValue, 11)
            insert.bind(letter.fingerprint, 12)
            insert.bind(letter.replayCount, 13)
            insert.bind(letter.contentType, 14)
            insert.bind(letter.storageSize, 15)
            insert.bind(nil as String?, 16)
            insert.bind(metadata, 17)
            insert.bind(letter.storedHistoryJSON, 18)
            insert.bind(letter.payload, 19)
            insert.bind(letter.abandonedClaims, 20)
            try insert.run()
        }
        for (key, value) in batch.tallies {
            self.tally.bind(key.source, 1)
            self.tally.bind(key.reason, 2)
            self.tally.bind(key.errorType, 3)
            self.tally.bind(key.status, 4)
            self.tally.bind(value.count, 5)
            self.tally.bind(value.bytes, 6)
            self.tally.bind(value.attempts, 7)
            try self.tally.run()
        }
        for (minute, count) in batch.minutes {
            self.minute.bind(minute, 1)
            self.minute.bind(count, 2)
            try self.minute.run()
        }
        for (key, count) in batch.groups {
            self.group.bind(key.fingerprint, 1)
            self.group.bind(key.source, 2)
            self.group.bind(count, 3)
            try self.group.run()
        }
    }
}

/// Calls to `fsync` and `fdatasync` in this process so far (counted by CMallocInfo's wrappers): with
/// `synchronous=FULL` in WAL mode SQLite syncs the log once per commit, so the syncs of a durable run are its
/// commits (plus a few for checkpoints).
func syncCount() -> Int { Int(cmallocinfo_sync_count()) }

/// The search index's upkeep, as the store does it at the end of a write transaction (its `SQLiteSearch.flush`,
/// mirrored here so that the baseline is SQLite doing the same work): once 1,000 letters wait, the deleted
/// ones are taken out of the contentless FTS5 table (told the values it indexed) and the waiting ones are
/// indexed. Raw SQLite inserting or deleting rows fills the same waiting tables through the store's
/// triggers; without this, the baseline would leave the index's work undone and the ratio would measure
/// the schema instead of the code.
struct RawSearchUpkeep {
    static let threshold = 1000
    private let waiting: RawStatement
    private let statements: [RawStatement]

    init(_ db: RawSQLite) throws {
        self.waiting = try db.prepare(
            """
            SELECT (SELECT count(*) FROM (SELECT 1 FROM dlq_search_pending LIMIT \(Self.threshold)))
                + (SELECT count(*) FROM (SELECT 1 FROM dlq_search_deleted LIMIT \(Self.threshold))) >= \(Self.threshold)
            """
        )
        self.statements = try [
            """
            INSERT INTO dlq_search (dlq_search, rowid, message, meta, payload)
                SELECT 'delete', seq, message, meta, payload FROM dlq_search_deleted
            """,
            "DELETE FROM dlq_search_deleted",
            """
            INSERT INTO dlq_search (rowid, message, meta, payload)
                SELECT l.seq, l.error_message, (SELECT group_concat(value, char(10)) FROM json_each(l.metadata)),
                    CASE WHEN instr(l.payload, x'00') = 0 THEN CAST(l.payload AS TEXT) END
                FROM dlq_search_pending AS p JOIN dlq_letters AS l ON l.seq = p.seq
            """,
            "DELETE FROM dlq_search_pending",
        ].map { try db.prepare($0) }
    }

    /// At the end of a write transaction, before its commit; with `force` (as at the end of an import)
    /// whatever waits.
    func run(force: Bool = false) throws {
        let due = self.waiting.nextRow() && self.waiting.text(0) == "1"
        try self.waiting.run()
        guard due || force else { return }
        for statement in self.statements { try statement.run() }
    }
}
