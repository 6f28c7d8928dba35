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
        let path = self.configuration.path
        return try await withCheckedThrowingContinuation { continuation in
            self.pool.asyncWriteWithoutTransaction { db in
                do {
                    try self.restoreFullSyncIfNeeded(db)
                    continuation.resume(returning: try body(db))
                } catch {
                    continuation.resume(throwing: Self.storeError(error, path: path))
                }
            }
        }
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
            return try await self.pool.read(body)
        } catch {
            throw Self.storeError(error, path: self.configuration.path)
        }
    }

    /// A ``DeadLetterError`` naming the path for an error of SQLite or GRDB; other errors pass unchanged.
    static func storeError(_ error: any Error, path: String) -> any Error {
        // Errors of SQLite are translated; others (a DeadLetterError, what reading an import threw) pass.
        guard let error = error as? DatabaseError else { return error }
        let detail = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return DeadLetterError(
                code: .notAStore,
                message: "the file is damaged or not a dead-letter store (SQLite: \(detail))",
                file: path
            )
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
