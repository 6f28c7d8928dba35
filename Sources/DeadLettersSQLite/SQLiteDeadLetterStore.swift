public import DeadLetters
import GRDB
import Logging

/// The embedded, durable dead-letter store: one SQLite file in WAL mode, through GRDB.
///
/// - Durability: with ``Durability/durable`` (the default) `append` returns only once its commit is on disk
///   (`synchronous=FULL`, verified when the store opens). Appends from concurrent callers are coalesced into
///   one transaction that shares one fsync (group commit); each caller's letters are still all or nothing, and
///   a caller that fails (a duplicate id, a full store) does not fail the others. Completions and releases of
///   claimed letters (replays, retries) are coalesced the same way.
/// - Files: a new file is created with mode 0600 and never in a missing folder. A file that is not a store
///   (garbage, an empty file, another application's database, a truncated file, a store of a newer schema)
///   is reported as `notAStore` / `incompatibleStore` naming the path, and never written to; so is anything
///   at the path that is not a regular file (a FIFO, a device), without opening it. A file deleted or replaced
///   while the store is open is neither read nor written any more (`storeUnavailable`), and once SQLite
///   reports the file damaged nothing more is committed to it (see ``SQLiteStoreCheck`` for a full check).
///   ``Configuration/readOnly`` opens a file for reading only.
/// - Claims take leases in `BEGIN IMMEDIATE` transactions, so several stores or processes on one file never
///   claim the same letter at once.
/// - Memory: queries stream from indexes; counts, usage and the summary of the whole store read running
///   totals kept by triggers, so nothing loads the whole store and opening does not scan it.
public final class SQLiteDeadLetterStore: DeadLetterStore {
    /// The configuration the store was opened with.
    public let configuration: Configuration
    let pool: DatabasePool
    /// Refuses reads and commits once the file was deleted or replaced, and commits once it was damaged.
    let fileGuard: SQLiteFileGuard
    let appends = SQLiteLock(AppendQueue())
    let completions = SQLiteLock(OutcomeQueue())
    /// Set when a claim could not put the writer back at full sync after its relaxed commit; the next write
    /// restores it before it commits anything (see ``restoreFullSyncIfNeeded(_:)``).
    let syncRelaxed = SQLiteLock(false)
    /// The schema version the file had before this open migrated it: `0` when the open created the file,
    /// `nil` when it was already at ``schemaVersion``.
    public let previousSchemaVersion: Int?

    /// The schema version this code writes.
    public static var schemaVersion: Int { SQLiteSchema.version }

    /// Opens the store at `configuration.path`, creating it when missing (if `createIfMissing`), and migrates
    /// its schema to the newest version.
    /// - Throws: ``DeadLetterError`` with `storeUnavailable` (the folder is missing, the file cannot be
    ///   created or opened, the store is locked), `notAStore` (the file is not a store, or is damaged), or
    ///   `incompatibleStore` (a newer schema); each names the path.
    public init(configuration: Configuration = Configuration()) throws {
        self.configuration = configuration
        let path = configuration.path
        let logger = configuration.logger
        guard configuration.maximumReaderCount >= 1, configuration.busyTimeout >= .zero else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "maximumReaderCount must be at least 1 and busyTimeout not negative",
                file: path
            )
        }
        var created = false
        let found = try SQLiteStoreFile.inspect(path: path)
        if found == .missing, configuration.readOnly {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "no store file exists (a store opened read-only is never created)",
                file: path
            )
        }
        if found == .missing {
            guard configuration.createIfMissing else {
                throw DeadLetterError(
                    code: .storeUnavailable,
                    message: "no store file exists and createIfMissing is false",
                    file: path
                )
            }
            try Self.create(at: path, configuration: configuration)
            created = true
            logger.info("created a dead-letter store", metadata: ["dlq.store.path": "\(path)"])
            // Another process may have created it meanwhile: look again.
            _ = try SQLiteStoreFile.inspect(path: path)
        }
        var grdb = Self.grdbConfiguration(configuration)
        var location = path
        if configuration.readOnly {
            switch try SQLiteStoreFile.readOnlyOpening(path: path) {
            case .queryOnly: break
            case .shared: grdb.readonly = true
            case .immutable:
                grdb.readonly = true
                location = SQLiteStoreFile.immutableURI(path)
            }
        } else {
            try SQLiteStoreFile.requireWritable(path: path)
        }
        let fileGuard = try SQLiteFileGuard(path: path)
        self.fileGuard = fileGuard
        do {
            self.pool = try DatabasePool(path: location, configuration: grdb)
        } catch {
            fileGuard.release()
            throw Self.storeError(error, path: path)
        }
        do {
            let migrated = try self.pool.writeWithoutTransaction { db -> Int? in
                if configuration.readOnly {
                    // The writing connection of a pool opened read-write (readers are read-only) changes nothing.
                    try db.execute(sql: "PRAGMA query_only = 1")
                    try Self.checkReadOnly(db, path: path)
                    return nil
                } else {
                    let migrated = try Self.prepareWriter(db, configuration: configuration)
                    db.add(transactionObserver: fileGuard, extent: .databaseLifetime)
                    return migrated
                }
            }
            self.previousSchemaVersion = created ? 0 : migrated
        } catch {
            try? self.pool.close()
            fileGuard.release()
            throw Self.storeError(error, path: path)
        }
        logger.debug(
            "opened a dead-letter store",
            metadata: ["dlq.store.path": "\(path)", "dlq.store.durability": "\(configuration.durability)"]
        )
    }

    /// Opens the store at `path` with the other settings at their defaults.
    public convenience init(path: String, durability: Durability = .durable) throws {
        try self.init(configuration: Configuration(path: path, durability: durability))
    }

    /// Closes the file. Later calls throw `storeUnavailable`.
    ///
    /// The write-ahead log is first copied into the file and truncated (`PRAGMA wal_checkpoint(TRUNCATE)`), so
    /// that a closed store is one file (a copy of it alone holds every letter) and leaves no large `-wal`
    /// behind; then the reading connections close before the writing one, so that, when no other process has
    /// the file open, SQLite removes the `-wal` and `-shm` files as the last connection closes. When another
    /// process is reading or writing the file at that moment, the checkpoint waits at most 200 ms and is
    /// otherwise left to whichever connection closes last.
    public func close() throws {
        if !self.configuration.readOnly, !self.fileGuard.isDamaged, (try? self.fileGuard.checkFile()) != nil {
            try? self.pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA busy_timeout = 200")
                try db.checkpoint(.truncate)
            }
        }
        // GRDB closes the writer first: read-only connections closing last could not remove the log.
        self.pool.releaseMemory()
        do { try self.pool.close() } catch { throw Self.storeError(error, path: self.configuration.path) }
        self.fileGuard.release()
    }

    /// The value of `PRAGMA synchronous` on the connection that writes: 2 (`FULL`) when durable, 1 (`NORMAL`)
    /// when fast.
    public func synchronousLevel() async throws -> Int {
        try await self.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// The result of SQLite's `PRAGMA integrity_check`: `["ok"]` for a sound file. Reads the whole file.
    public func integrityCheck() async throws -> [String] {
        try await self.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }

    /// The log is copied into the file once it holds this many pages (32 MiB).
    static let walAutocheckpointPages = 8192

    private static func grdbConfiguration(_ configuration: Configuration) -> GRDB.Configuration {
        var grdb = GRDB.Configuration()
        grdb.label = "dead-letters"
        grdb.maximumReaderCount = configuration.maximumReaderCount
        let timeout = configuration.busyTimeout.components
        grdb.busyMode = .timeout(Double(timeout.seconds) + Double(timeout.attoseconds) / 1e18)
        grdb.prepareDatabase { db in
            // Searches check candidates' payloads with it (schema version 5).
            db.add(function: SQLiteSearch.payloadTextFunction)
            try db.execute(sql: "PRAGMA cache_size = -16000")
            // Savepoints of a shared commit spill changed pages to a temporary file on disk by default (hundreds of
            // MB of writes under 64 adders); keep them in memory.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        return grdb
    }

    /// Builds a new store in a temporary file of mode 0600 and moves it into place whole, so that a crash
    /// never leaves a half-made store behind.
    private static func create(at path: String, configuration: Configuration) throws {
        let temporary = try SQLiteStoreFile.createTemporary(near: path)
        do {
            let queue = try DatabaseQueue(path: temporary, configuration: Self.grdbConfiguration(configuration))
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                try db.inTransaction(.immediate) {
                    try SQLiteSchema.migrate(db, from: 0)
                    return .commit
                }
            }
            try queue.close()
        } catch {
            SQLiteStoreFile.remove(temporary)
            throw Self.storeError(error, path: path)
        }
        _ = try SQLiteStoreFile.publish(temporary, at: path)
    }

    /// The schema version of a dead-letter store's file.
    /// - Throws: `notAStore` for another application's database, `incompatibleStore` for a newer schema.
    private static func schemaVersion(_ db: Database, path: String) throws -> Int {
        guard try Int32.fetchOne(db, sql: "PRAGMA application_id") == SQLiteStoreFile.applicationID else {
            throw DeadLetterError(
                code: .notAStore,
                message: "the file is a SQLite database of another application, not a dead-letter store",
                file: path
            )
        }
        let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        if version > SQLiteSchema.version { throw SQLiteSchema.newerError(version, path: path) }
        return version
    }

    /// Checks a store opened read-only: a store of this code's schema version; an older one is refused, since
    /// it cannot be migrated without writing.
    private static func checkReadOnly(_ db: Database, path: String) throws {
        let version = try Self.schemaVersion(db, path: path)
        if version < SQLiteSchema.version {
            throw DeadLetterError(
                code: .incompatibleStore,
                message: "the store has schema version \(version), older than version \(SQLiteSchema.version) that "
                    + "this version reads, and a store opened read-only is never migrated; open it once with "
                    + "write access (dlq migrate) to upgrade it",
                file: path
            )
        }
    }

    /// Sets and verifies the durability of the writing connection, checks that the file is a store, and
    /// migrates it.
    /// - Returns: the schema version the file had when this migrated it, `nil` when it was up to date.
    private static func prepareWriter(_ db: Database, configuration: Configuration) throws -> Int? {
        let path = configuration.path
        let durability = configuration.durability
        try db.execute(sql: "PRAGMA synchronous = \(durability.synchronousPragma)")
        // Checkpoint every 8,192 pages (32 MiB) rather than 1,000: index pages rewritten by many small commits
        // are copied into the file once; the log is cut back to 64 MiB after a checkpoint.
        try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walAutocheckpointPages)")
        try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
        let level = try Int.fetchOne(db, sql: "PRAGMA synchronous")
        guard level == durability.synchronousLevel else {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "SQLite did not accept synchronous=\(durability.synchronousPragma) (it reads \(level ?? -1))",
                file: path
            )
        }
        let journal = try String.fetchOne(db, sql: "PRAGMA journal_mode")
        guard journal?.lowercased() == "wal" else {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "the store file is not in WAL mode",
                file: path
            )
        }
        func check() throws -> Int { try Self.schemaVersion(db, path: path) }
        guard try check() < SQLiteSchema.version else { return nil }
        var migratedFrom: Int?
        try db.inTransaction(.immediate) {
            let version = try check()
            if version < SQLiteSchema.version {
                migratedFrom = version
                configuration.logger.info(
                    "migrating a dead-letter store",
                    metadata: ["dlq.store.path": "\(path)", "dlq.store.schema": "\(version)"]
                )
                try SQLiteSchema.migrate(db, from: version)
            }
            return .commit
        }
        return migratedFrom
    }
}

extension DeadLetterStore where Self == SQLiteDeadLetterStore {
    /// A durable store on one SQLite file: `dead-letters.sqlite` in the working directory unless `path` says
    /// otherwise. The file's folder must exist.
    /// - Throws: ``DeadLetterError`` when the file cannot be opened or is not a store.
    public static func sqlite(
        path: String = "dead-letters.sqlite",
        durability: SQLiteDeadLetterStore.Durability = .durable
    ) throws -> SQLiteDeadLetterStore {
        try SQLiteDeadLetterStore(path: path, durability: durability)
    }
}

extension SQLiteDeadLetterStore: ClosableDeadLetterStore {}
