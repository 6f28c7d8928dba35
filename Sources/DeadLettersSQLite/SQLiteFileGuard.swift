import DeadLetters
import GRDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps a store from writing into a file that is no longer its path's, or on into a damaged one.
///
/// - A store file deleted (with its `-wal` and `-shm`) or replaced by another file while the store is open is
///   still open: SQLite would go on reading it and committing into it, and every letter written then is lost
///   with the file. The guard remembers the file's identity (device and inode) when the store opens, and
///   every read and every commit first checks that the path still names that file (one `stat`, about a
///   microsecond).
/// - Once SQLite reported the file damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`), nothing more is committed to
///   it: SQLite notices damage only in the pages an operation touches, and writing on around a damaged page
///   spreads the damage. Reads go on, so what can still be read can be exported.
///
/// It is installed as a GRDB transaction observer on the writing connection: ``databaseWillCommit()`` throws,
/// which rolls the transaction back, so no path that writes can commit past it.
final class SQLiteFileGuard: TransactionObserver, @unchecked Sendable {
    // @unchecked Sendable: `identity` is set once in `init`; `damage` is behind a lock.

    let path: String
    private let identity: (device: UInt64, inode: UInt64)
    private let damage = SQLiteLock<DeadLetterError?>(nil)

    /// Remembers the identity of the file now at `path`.
    /// - Throws: `storeUnavailable` when the path names no file.
    init(path: String) throws {
        self.path = path
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "the store file disappeared while it was being opened (\(SQLiteStoreFile.errnoText()))",
                file: path
            )
        }
        self.identity = (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Throws `storeUnavailable` when the path no longer names the file the store opened.
    func checkFile() throws {
        var info = stat()
        let found = stat(self.path, &info) == 0
        if found, UInt64(info.st_dev) == self.identity.device, UInt64(info.st_ino) == self.identity.inode { return }
        let what = found ? "replaced by another file" : "deleted"
        throw DeadLetterError(
            code: .storeUnavailable,
            message: "the store file was \(what) after it was opened; nothing more is read from or written to "
                + "the file that was open (reopen the store, or restart the service, to use the file now at "
                + "the path)",
            file: self.path
        )
    }

    /// Throws when nothing may be committed: the file was damaged, deleted or replaced.
    func checkWritable() throws {
        if let damage = self.damage.withLock({ $0 }) { throw damage }
        try self.checkFile()
    }

    /// Whether SQLite reported the file damaged.
    var isDamaged: Bool { self.damage.withLock { $0 != nil } }

    /// Remembers that SQLite reported the file damaged (the first report is kept), and returns the error
    /// that says so.
    @discardableResult
    func noteDamage(_ detail: String) -> DeadLetterError {
        let error = Self.damageError(detail, path: self.path)
        return self.damage.withLock { damage in
            if damage == nil { damage = error }
            return error
        }
    }

    /// The error for a file SQLite reported damaged.
    static func damageError(_ detail: String, path: String) -> DeadLetterError {
        DeadLetterError(
            code: .notAStore,
            message: "the store file is damaged (SQLite reported: \(detail)); nothing more is written to it: "
                + "run 'dlq check' on it to see what is wrong, then restore a backup or export what can be read",
            file: path
        )
    }

    // MARK: TransactionObserver

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseWillCommit() throws { try self.checkWritable() }
    func databaseDidCommit(_ db: Database) {}
    func databaseDidRollback(_ db: Database) {}
}
