import ArgumentParser
import DeadLetters
import DeadLettersPostgres
import DeadLettersSQLite
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The global `--store` option, accepted before or after the subcommand's name.
///
/// Every subcommand declares `@OptionGroup var storeOptions: StoreOptions`, and so does the root command: a
/// value given before the subcommand is parsed by the root and handed down (argument-parser passes an option
/// group of the same type from a command to its subcommand); a value given after it is parsed by the
/// subcommand.
struct StoreOptions: ParsableArguments {
    /// The environment variable that names the store when `--store` is not given.
    static let environmentKey = "DLQ_STORE"
    /// The store when neither `--store` nor `DLQ_STORE` names one.
    static let defaultStore = "dead-letters.sqlite"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The store: a SQLite file path, or postgres://user:pass@host:port/db (env DLQ_STORE).",
            discussion: "Default: dead-letters.sqlite in the working directory. The folder must exist.",
            valueName: "url"
        )
    )
    var store: String?

    /// The store to use: `--store`, else `DLQ_STORE`, else `dead-letters.sqlite`.
    var location: StoreLocation {
        get throws {
            var value = self.store
            if value == nil, let env = getenv(Self.environmentKey) {
                let text = String(cString: env)
                if !text.isEmpty { value = text }
            }
            return try StoreLocation(value ?? Self.defaultStore)
        }
    }
}

/// Where the letters are: a SQLite file or a PostgreSQL database.
enum StoreLocation: CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// Reads a `--store` value.
    /// - Throws: ``CLIError`` (usage) for an empty value or an unsupported URL scheme.
    init(_ value: String) throws {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw CLIError.usage("--store must not be empty") }
        let lower = trimmed.lowercased()
        if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") {
            self = .postgres(url: trimmed)
        } else if let range = lower.range(of: "://"), !lower[..<range.lowerBound].contains("/") {
            let scheme = lower[..<range.lowerBound]
            throw CLIError.usage(
                "--store: unsupported scheme '\(scheme)://' (a SQLite file path or a postgres:// URL)"
            )
        } else if lower.hasPrefix("sqlite:") {
            var path = String(trimmed.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            self = .sqlite(path: path)
        } else {
            self = .sqlite(path: trimmed)
        }
    }

    /// The store as people read it, without a password.
    var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let url): return Self.redactingPassword(url)
        }
    }

    static func redactingPassword(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", options: .backwards),
            at.lowerBound > scheme.upperBound
        else { return url }
        let credentials = url[scheme.upperBound..<at.lowerBound]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
    }
}

/// Whether a command may create the store when it is missing.
enum StoreAccess {
    /// The store must exist and is only read: a SQLite file is opened read-only (never created nor
    /// migrated), so a read-only copy, file or folder can be inspected and exported.
    case read
    /// The store must exist (changing letters).
    case existing
    /// A missing SQLite file is created (a new, empty store); the folder must still exist.
    case create
    /// As `create`, and a PostgreSQL schema is created or migrated on first use.
    case migrate
}

extension StoreOptions {
    /// Opens the store, runs `body` with it, and closes it; a PostgreSQL client runs for the duration.
    /// - Throws: ``CLIError`` or ``DeadLetterError`` when the store cannot be opened, or what `body` throws.
    func withStore<Result: Sendable>(
        _ access: StoreAccess = .existing,
        _ body: @Sendable (any DeadLetterStore) async throws -> Result
    ) async throws -> Result {
        let encryption = try Self.encryptionFromEnvironment()
        let quiet = Logger(label: "dlq", factory: { _ in SwiftLogNoOpLogHandler() })
        @Sendable func wrapped(_ store: some DeadLetterStore) -> EncryptedDeadLetterStore {
            if let encryption {
                return EncryptedDeadLetterStore(base: store, encryption: encryption, logger: quiet)
            }
            return EncryptedDeadLetterStore.withoutKey(base: store, logger: quiet)
        }
        switch try self.location {
        case .sqlite(let path):
            let store = try Self.openSQLite(path: path, access: access)
            defer { try? store.close() }
            return try await body(wrapped(store))
        case .postgres(let url):
            var configuration = PostgresDeadLetterStore.Configuration()
            configuration.migrate = access == .migrate
            // A migration of a large store may build indexes for longer than a statement is otherwise given.
            if access == .migrate { configuration.queryTimeout = nil }
            return try await PostgresDeadLetterStore.withStore(url: url, configuration: configuration) { store in
                try await body(wrapped(store))
            }
        }
    }

    /// The environment variable holding the payload encryption key (32 bytes in base64).
    static let encryptionKeyVariable = "DLQ_ENCRYPTION_KEY"
    /// The environment variable holding earlier keys (base64, separated by commas) that still open payloads.
    static let previousKeysVariable = "DLQ_ENCRYPTION_PREVIOUS_KEYS"

    /// The keys of `DLQ_ENCRYPTION_KEY` and `DLQ_ENCRYPTION_PREVIOUS_KEYS`, or `nil` when no key is set.
    /// - Throws: ``DeadLetterError`` `invalidConfiguration` naming the variable (never its value).
    static func encryptionFromEnvironment() throws -> PayloadEncryption? {
        func variable(_ name: String) -> String? {
            guard let value = getenv(name) else { return nil }
            let text = String(cString: value)
            return text.isEmpty ? nil : text
        }
        let previous = try (variable(Self.previousKeysVariable) ?? "").split(separator: ",").map {
            try PayloadEncryption.Key(base64: String($0), name: Self.previousKeysVariable)
        }
        guard let current = variable(Self.encryptionKeyVariable) else {
            guard previous.isEmpty else {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message: "is set without \(Self.encryptionKeyVariable), the key that seals new payloads",
                    field: Self.previousKeysVariable
                )
            }
            return nil
        }
        let key = try PayloadEncryption.Key(base64: current, name: Self.encryptionKeyVariable)
        return PayloadEncryption(key: key, previousKeys: previous)
    }

    /// Opens the store and a queue on it with the CLI's settings (no logging, no metrics), runs `body`.
    func withQueue<Result: Sendable>(
        _ access: StoreAccess = .existing,
        configure: (inout DeadLetterQueue.Configuration) -> Void = { _ in },
        _ body: @Sendable (DeadLetterQueue) async throws -> Result
    ) async throws -> Result {
        var configuration = DeadLetterQueue.Configuration()
        configuration.logger = Logger(label: "dlq", factory: { _ in SwiftLogNoOpLogHandler() })
        configure(&configuration)
        let settings = configuration
        return try await self.withStore(access) { store in
            let queue = try DeadLetterQueue(store: store, configuration: settings)
            return try await body(queue)
        }
    }

    static func openSQLite(path: String, access: StoreAccess) throws -> SQLiteDeadLetterStore {
        try Self.checkStorePath(path, access: access)
        var configuration = SQLiteDeadLetterStore.Configuration(
            path: path,
            createIfMissing: access == .create || access == .migrate
        )
        configuration.readOnly = access == .read
        return try SQLiteDeadLetterStore(configuration: configuration)
    }

    /// Refuses, before anything opens it, a store path whose folder is missing, that is not a regular file,
    /// or (unless `access` creates stores) that does not exist.
    static func checkStorePath(_ path: String, access: StoreAccess) throws {
        let folder = Self.folder(of: path)
        var info = stat()
        guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw CLIError.store("\(path): the folder '\(folder)' does not exist (dlq never creates folders)")
        }
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR: throw CLIError.store("\(path): is a folder, not a store file")
            default:
                // Refused before anything opens it: opening a FIFO would wait for a writer forever.
                throw CLIError.store(
                    "\(path): is \(Self.kind(info.st_mode)), not a store file (a store is a regular file)"
                )
            }
        } else if access == .existing || access == .read {
            throw CLIError.store(
                "\(path): no store here (dlq add, import, demo or migrate create one; or set --store / DLQ_STORE)"
            )
        }
    }

    /// What a file of `mode` is, for people: "a FIFO (named pipe)", "a character device", …
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFDIR: "a folder"
        default: "not a regular file"
        }
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }
}
