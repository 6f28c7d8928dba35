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
///
/// It also keeps the process-wide list of the files stores have open. POSIX locks belong to a process and a
/// file: closing *any* descriptor of a file drops every lock the process holds on it, SQLite's included. With
/// SQLite's locks gone, another process closing its last connection believes it is the last one and removes
/// the log that an open transaction here is writing to. So nothing in this process may open and close a
/// store file that SQLite has open: ``SQLiteStoreFile/inspect(path:)`` asks ``isOpenInProcess(_:)`` first.
final class SQLiteFileGuard: TransactionObserver, @unchecked Sendable {
    // @unchecked Sendable: `identity` is set once in `init`; `damage` and `released` are behind locks.

    /// A file, by device and inode.
    struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64

        init(_ info: stat) {
            self.device = UInt64(info.st_dev)
            self.inode = UInt64(info.st_ino)
        }
    }

    /// How many open stores of this process use each file.
    private static let openFiles = SQLiteLock<[FileID: Int]>([:])

    let path: String
    /// `path` made absolute when the store opened, as SQLite does, so that a later change of the working
    /// folder does not look like a replaced file.
    private let absolutePath: String
    private let identity: FileID
    private let damage = SQLiteLock<DeadLetterError?>(nil)
    private let released = SQLiteLock(false)

    /// Remembers the identity of the file now at `path`, and counts it open in this process until
    /// ``release()``.
    /// - Throws: `storeUnavailable` when the path names no file.
    init(path: String) throws {
        self.path = path
        var absolutePath = path
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            if getcwd(&buffer, buffer.count) != nil {
                let folder = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                absolutePath = String(decoding: folder, as: UTF8.self) + "/" + path
            }
        }
        self.absolutePath = absolutePath
        var info = stat()
        guard stat(absolutePath, &info) == 0 else {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "the store file disappeared while it was being opened (\(SQLiteStoreFile.errnoText()))",
                file: path
            )
        }
        let identity = FileID(info)
        self.identity = identity
        Self.openFiles.withLock { $0[identity, default: 0] += 1 }
    }

    deinit {
        self.release()
    }

    /// Stops counting the file open in this process: once SQLite's connections to it are closed.
    func release() {
        let first = self.released.withLock { released -> Bool in
            if released { return false }
            released = true
            return true
        }
        guard first else { return }
        let identity = self.identity
        Self.openFiles.withLock { files in
            let count = (files[identity] ?? 1) - 1
            files[identity] = count > 0 ? count : nil
        }
    }

    /// Whether a store of this process has the file described by `info` open.
    static func isOpenInProcess(_ info: stat) -> Bool {
        let identity = FileID(info)
        return Self.openFiles.withLock { $0[identity] != nil }
    }

    /// Throws `storeUnavailable` when the path no longer names the file the store opened.
    func checkFile() throws {
        var info = stat()
        let found = stat(self.absolutePath, &info) == 0
        if found, FileID(info) == self.identity { return }
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
