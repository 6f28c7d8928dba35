public import Logging

extension SQLiteDeadLetterStore {
    /// How a ``SQLiteDeadLetterStore`` opens its file and writes to it.
    public struct Configuration: Sendable {
        /// The store file. Default `dead-letters.sqlite` (in the working directory). Its folder must exist:
        /// the store never creates folders.
        public var path: String
        /// How safe a returned `add` is. Default ``Durability/durable``.
        public var durability: Durability
        /// How long an operation waits for another process that holds the file's write lock before it
        /// fails with `storeUnavailable`. Default 5 seconds.
        public var busyTimeout: Duration
        /// Whether a missing file is created as a new, empty store (mode 0600). Default `true`; when `false`,
        /// a missing file is a `storeUnavailable` error.
        public var createIfMissing: Bool
        /// How many connections may read at once (WAL readers never wait for the writer). Default 4.
        public var maximumReaderCount: Int
        /// Where the store logs what it does (opening, migrations). Default: a logger that drops everything.
        public var logger: Logger
        /// Whether the store only reads: the file is opened read-only, never created nor migrated (a store of
        /// an older schema is refused with `incompatibleStore`), and every write throws `unsupported`. When this
        /// process can write neither the file nor its folder (a read-only copy, an immutable file, a read-only
        /// file system), the file is opened with SQLite's `immutable` parameter, so that nothing is created
        /// beside it; changes another process makes meanwhile are then not seen. Default `false`.
        public var readOnly: Bool

        /// Creates a configuration; every parameter has the default stated on its property.
        public init(
            path: String = "dead-letters.sqlite",
            durability: Durability = .durable,
            busyTimeout: Duration = .seconds(5),
            createIfMissing: Bool = true,
            maximumReaderCount: Int = 4,
            logger: Logger = Logger(label: "dead-letters.sqlite", factory: { _ in SwiftLogNoOpLogHandler() }),
            readOnly: Bool = false
        ) {
            self.path = path
            self.durability = durability
            self.busyTimeout = busyTimeout
            self.createIfMissing = createIfMissing
            self.maximumReaderCount = maximumReaderCount
            self.logger = logger
            self.readOnly = readOnly
        }
    }

    /// How safe a returned write is: an extensible set of modes.
    public struct Durability: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case durable, fast
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// WAL with `synchronous=FULL`: a write returns only once its commit is on disk, so neither a crash
        /// nor a power loss loses it. Concurrent writers share commits (group commit).
        public static let durable = Durability(.durable)
        /// WAL with `synchronous=NORMAL`: a crash of the process loses nothing, a power loss may lose the
        /// last commits; the file is never corrupted.
        public static let fast = Durability(.fast)

        public var description: String { self.base.rawValue }

        var synchronousPragma: String { self.base == .durable ? "FULL" : "NORMAL" }
        var synchronousLevel: Int { self.base == .durable ? 2 : 1 }
    }
}
