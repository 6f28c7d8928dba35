import DeadLetters
import GRDB

extension SQLiteDeadLetterStore {
    /// Runs `body` in a `BEGIN IMMEDIATE` transaction on the writing connection, after the writes queued
    /// before it.
    ///
    /// The work is handed to the writer whole: a task cancelled while it waits still gets its write done
    /// (and its result), so nothing is half-acknowledged.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await self.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                try SQLiteSearch.flush(db)
                return .commit
            }
            guard let result else {
                throw DeadLetterError(code: .io, message: "a write transaction produced no result")
            }
            return result
        }
    }

    /// Runs `body` on the writing connection, outside of any transaction.
    func writeWithoutTransaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            self.pool.asyncWriteWithoutTransaction { db in
                do {
                    try self.prepareToWrite(db)
                    continuation.resume(returning: try body(db))
                } catch {
                    continuation.resume(throwing: self.failure(error))
                }
            }
        }
    }

    /// Throws unless the store may write: it was opened read-only, or its file was damaged, deleted or
    /// replaced (``SQLiteFileGuard``); then puts the writer back at full sync if needed.
    func prepareToWrite(_ db: Database) throws {
        if self.configuration.readOnly {
            throw DeadLetterError(
                code: .unsupported,
                message: "the store was opened read-only; nothing can be written to it",
                file: self.configuration.path
            )
        }
        try self.fileGuard.checkWritable()
        try self.restoreFullSyncIfNeeded(db)
    }

    /// Puts the writer back at full sync if a claim could not (``syncRelaxed``); throws, so that the write
    /// that follows does not commit, if it still cannot.
    func restoreFullSyncIfNeeded(_ db: Database) throws {
        guard self.syncRelaxed.withLock({ $0 }) else { return }
        try db.execute(sql: "PRAGMA synchronous = \(self.configuration.durability.synchronousPragma)")
        self.syncRelaxed.withLock { $0 = false }
    }

    /// Runs `body` on a reading connection, in a snapshot of the last commit.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            try self.fileGuard.checkFile()
            return try await self.pool.read(body)
        } catch {
            throw self.failure(error)
        }
    }

    /// ``storeError(_:path:)``, remembering damage SQLite reported (so that nothing more is written), and
    /// naming the file in a damaged row's error.
    func failure(_ error: any Error) -> any Error {
        let path = self.configuration.path
        if let error = error as? DatabaseError, Self.isDamage(error) {
            return self.fileGuard.noteDamage(error.message ?? "\(error.resultCode)")
        }
        let translated = Self.storeError(error, path: path)
        if var failure = translated as? DeadLetterError, failure.code == .invalidFormat, failure.file == nil {
            failure.file = path
            return failure
        }
        return translated
    }

    /// Whether SQLite reported the file damaged.
    static func isDamage(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }

    /// A ``DeadLetterError`` naming the path for an error of SQLite or GRDB; other errors pass unchanged.
    static func storeError(_ error: any Error, path: String) -> any Error {
        // Errors of SQLite are translated; others (a DeadLetterError, what reading an import threw) pass.
        guard let error = error as? DatabaseError else { return error }
        let detail = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return SQLiteFileGuard.damageError(detail, path: path)
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return DeadLetterError(
                code: .storeUnavailable,
                message: "the store stayed locked by another connection past the busy timeout (SQLite: \(detail))",
                file: path
            )
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH:
            return DeadLetterError(
                code: .storeUnavailable,
                message: "cannot open or write the store file; are the file and its folder writable? "
                    + "(SQLite: \(detail))",
                file: path
            )
        case .SQLITE_FULL:
            return DeadLetterError(code: .io, message: "the disk is full (SQLite: \(detail))", file: path)
        case .SQLITE_MISUSE where detail.contains("closed"):
            return DeadLetterError(code: .storeUnavailable, message: "the store is closed", file: path)
        default:
            return DeadLetterError(code: .io, message: "SQLite: \(detail)", file: path)
        }
    }
}
