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
/// Appends and imports run this once per letter on the writer thread: binding the 19 values directly costs a
/// fraction of building `StatementArguments` (an array of existentials, boxed and retained per value).
/// Text is bound with its length, so a string holding a NUL is stored as the BLOB of its UTF-8 bytes, exactly as
/// ``SQLiteRows/text(_:)`` does, and the id is bound up to its first NUL, as GRDB binds a `String`.
struct SQLiteInsertStatement {
    private let statement: Statement
    private let handle: SQLiteStatement
    private let connection: SQLiteConnection

    init(_ db: Database, skipDuplicates: Bool) throws {
        self.statement = try db.cachedStatement(sql: SQLiteRows.insertSQL(skipDuplicates: skipDuplicates))
        self.handle = self.statement.sqliteStatement
        guard let connection = db.sqliteConnection else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the store is closed")
        }
        self.connection = connection
    }

    /// Inserts `letter`; returns whether a row was inserted (`false`: a duplicate skipped under
    /// `ON CONFLICT DO NOTHING`).
    /// - Throws: `DatabaseError` (`SQLITE_CONSTRAINT` for a duplicate id without `skipDuplicates`).
    func insert(_ letter: DeadLetter) throws -> Bool {
        let handle = self.handle
        sqlite3_reset(handle)
        self.bindID(letter.id, 1)
        self.bindText(letter.source, 2)
        self.bindText(letter.reason.rawValue, 3)
        self.bindText(letter.errorType, 4)
        self.bindText(letter.errorMessage, 5)
        sqlite3_bind_int64(handle, 6, Int64(letter.attempts))
        sqlite3_bind_int64(handle, 7, letter.firstFailedAt.millisecondsSince1970)
        sqlite3_bind_int64(handle, 8, letter.lastFailedAt.millisecondsSince1970)
        self.bindInt(letter.nextAttemptAt?.millisecondsSince1970, 9)
        self.bindInt(letter.expiresAt?.millisecondsSince1970, 10)
        self.bindText(letter.status.rawValue, 11)
        self.bindText(letter.fingerprint, 12)
        sqlite3_bind_int64(handle, 13, Int64(letter.replayCount))
        if let contentType = letter.contentType {
            self.bindText(contentType, 14)
        } else {
            sqlite3_bind_null(handle, 14)
        }
        sqlite3_bind_int64(handle, 15, Int64(letter.storageSize))
        if letter.causes.isEmpty {
            sqlite3_bind_null(handle, 16)
        } else {
            self.bindText(SQLiteJSON.encode(letter.causes), 16)
        }
        if letter.metadata.isEmpty {
            sqlite3_bind_null(handle, 17)
        } else {
            self.bindText(SQLiteJSON.encode(letter.metadata), 17)
        }
        if letter.history.isEmpty {
            sqlite3_bind_null(handle, 18)
        } else {
            self.bindText(try SQLiteRows.json(letter.history), 18)
        }
        letter.payload.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(handle, 19, bytes.baseAddress, CInt(bytes.count), transient)
        }
        guard sqlite3_step(handle) == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(self.connection))
            let extended = sqlite3_extended_errcode(self.connection)
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: extended), message: message)
        }
        let inserted = sqlite3_changes(self.connection) > 0
        sqlite3_reset(handle)
        return inserted
    }

    private func bindInt(_ value: Int64?, _ index: CInt) {
        if let value { sqlite3_bind_int64(self.handle, index, value) } else { sqlite3_bind_null(self.handle, index) }
    }

    private func bindText(_ string: String, _ index: CInt) {
        let handle = self.handle
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            Self.bind(UnsafeRawBufferPointer(bytes), to: handle, index, truncateAtNUL: false)
        }
        if done == nil {
            let bytes = Array(string.utf8)
            bytes.withUnsafeBytes { Self.bind($0, to: handle, index, truncateAtNUL: false) }
        }
    }

    private func bindID(_ string: String, _ index: CInt) {
        let handle = self.handle
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            Self.bind(UnsafeRawBufferPointer(bytes), to: handle, index, truncateAtNUL: true)
        }
        if done == nil {
            let bytes = Array(string.utf8)
            bytes.withUnsafeBytes { Self.bind($0, to: handle, index, truncateAtNUL: true) }
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
