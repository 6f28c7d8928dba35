import DeadLetters
import GRDB
import GRDBSQLite

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The insert of one letter into `dlq_letters`, bound with `sqlite3_bind_*` on GRDB's statement handle.
///
/// Appends and imports run this once per letter on the writer thread: binding the 20 values directly costs a
/// fraction of building `StatementArguments` (an array of existentials, boxed and retained per value).
struct SQLiteInsertStatement {
    private let raw: SQLiteRawStatement

    init(_ db: Database, skipDuplicates: Bool) throws {
        self.raw = try SQLiteRawStatement(db, sql: SQLiteRows.insertSQL(skipDuplicates: skipDuplicates))
    }

    /// Inserts `letter`; returns whether a row was inserted (`false`: a duplicate skipped under
    /// `ON CONFLICT DO NOTHING`).
    /// - Throws: `DatabaseError` (`SQLITE_CONSTRAINT` for a duplicate id without `skipDuplicates`).
    func insert(_ letter: DeadLetter) throws -> Bool {
        let raw = self.raw
        raw.reset()
        raw.bindID(letter.id, 1)
        raw.bindText(letter.source, 2)
        raw.bindText(letter.reason.rawValue, 3)
        raw.bindText(letter.errorType, 4)
        raw.bindText(letter.errorMessage, 5)
        raw.bindInt(letter.attempts, 6)
        raw.bindInt(letter.firstFailedAt.millisecondsSince1970, 7)
        raw.bindInt(letter.lastFailedAt.millisecondsSince1970, 8)
        raw.bindInt(letter.nextAttemptAt?.millisecondsSince1970, 9)
        raw.bindInt(letter.expiresAt?.millisecondsSince1970, 10)
        raw.bindText(letter.status.rawValue, 11)
        raw.bindText(letter.fingerprint, 12)
        raw.bindInt(letter.replayCount, 13)
        raw.bindText(letter.contentType, 14)
        raw.bindInt(letter.storageSize, 15)
        raw.bindText(letter.causes.isEmpty ? nil : SQLiteJSON.encode(letter.causes), 16)
        raw.bindText(letter.metadata.isEmpty ? nil : SQLiteJSON.encode(letter.metadata), 17)
        raw.bindText(letter.storedHistoryJSON, 18)
        raw.bindBlob(letter.payload, 19)
        raw.bindInt(letter.abandonedClaims, 20)
        return try raw.run() > 0
    }
}

/// A cached statement of the writer run through SQLite's C API: bound with `sqlite3_bind_*` and stepped with
/// `sqlite3_step` on GRDB's handle, for the statements that run once per letter or key.
///
/// Text is bound with its length, so a string holding a NUL is stored as the BLOB of its UTF-8 bytes, exactly
/// as ``SQLiteRows/text(_:)`` does; an id is bound up to its first NUL, as GRDB binds a `String`.
struct SQLiteRawStatement {
    /// Keeps the handle alive (GRDB's statement cache holds it too).
    private let statement: Statement
    private let handle: SQLiteStatement
    private let connection: SQLiteConnection

    init(_ db: Database, sql: String) throws {
        self.statement = try db.cachedStatement(sql: sql)
        self.handle = self.statement.sqliteStatement
        guard let connection = db.sqliteConnection else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the store is closed")
        }
        self.connection = connection
    }

    func reset() {
        sqlite3_reset(self.handle)
    }

    /// Runs the statement to its end and resets it.
    /// - Returns: how many rows it changed.
    /// - Throws: `DatabaseError` with SQLite's (extended) code and message.
    func run() throws -> Int {
        guard sqlite3_step(self.handle) == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(self.connection))
            let extended = sqlite3_extended_errcode(self.connection)
            sqlite3_reset(self.handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: extended), message: message)
        }
        let changes = Int(sqlite3_changes(self.connection))
        sqlite3_reset(self.handle)
        return changes
    }

    func bindInt(_ value: Int, _ index: CInt) {
        sqlite3_bind_int64(self.handle, index, Int64(value))
    }

    func bindInt(_ value: Int64?, _ index: CInt) {
        if let value { sqlite3_bind_int64(self.handle, index, value) } else { sqlite3_bind_null(self.handle, index) }
    }

    /// Binds `value` as an integer when it is a whole number within `Int64`, else as a `REAL`.
    func bindNumber(_ value: Double, _ index: CInt) {
        if let exact = Int64(exactly: value) {
            sqlite3_bind_int64(self.handle, index, exact)
        } else {
            sqlite3_bind_double(self.handle, index, value)
        }
    }

    func bindBlob(_ data: Data, _ index: CInt) {
        let handle = self.handle
        data.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(handle, index, bytes.baseAddress, CInt(bytes.count), transient)
        }
    }

    /// Binds `string` as text (NULL when `nil`), or as the BLOB of its bytes when it holds a NUL.
    func bindText(_ string: String?, _ index: CInt) {
        guard let string else {
            sqlite3_bind_null(self.handle, index)
            return
        }
        self.bind(string, index, truncateAtNUL: false)
    }

    /// Binds an id as text up to its first NUL.
    func bindID(_ string: String, _ index: CInt) {
        self.bind(string, index, truncateAtNUL: true)
    }

    private func bind(_ string: String, _ index: CInt, truncateAtNUL: Bool) {
        let handle = self.handle
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            Self.bind(UnsafeRawBufferPointer(bytes), to: handle, index, truncateAtNUL: truncateAtNUL)
        }
        if done == nil {
            let bytes = Array(string.utf8)
            bytes.withUnsafeBytes { Self.bind($0, to: handle, index, truncateAtNUL: truncateAtNUL) }
        }
    }

    /// Binds UTF-8 bytes as text; bytes holding a NUL are bound as a BLOB, or cut at the NUL if `truncateAtNUL`.
    private static func bind(
        _ bytes: UnsafeRawBufferPointer,
        to handle: SQLiteStatement,
        _ index: CInt,
        truncateAtNUL: Bool
    ) {
        let base = bytes.baseAddress
        let count = bytes.count
        // A non-nil pointer for the empty string, so that it binds as '' and not NULL.
        guard let base, count > 0 else {
            sqlite3_bind_text(handle, index, "", 0, transient)
            return
        }
        guard let nul = memchr(base, 0, count) else {
            sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), CInt(count), transient)
            return
        }
        if truncateAtNUL {
            let length = base.distance(to: UnsafeRawPointer(nul))
            sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), CInt(length), transient)
        } else {
            sqlite3_bind_blob(handle, index, base, CInt(count), transient)
        }
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the bind returns.
private var transient: sqlite3_destructor_type {
    unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
}
