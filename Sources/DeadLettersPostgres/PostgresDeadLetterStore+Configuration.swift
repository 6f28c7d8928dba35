import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension PostgresDeadLetterStore {
    /// How a PostgreSQL store keeps its tables and batches its writes.
    public struct Configuration: Sendable {
        /// The PostgreSQL schema that holds the store's tables, created by ``PostgresDeadLetterStore/migrate()``.
        /// Lower-case letters, digits and `_`, starting with a letter or `_`, at most 63 characters.
        /// Default `dead_letters`.
        public var schema: String
        /// Whether the store applies its migrations when first used; when `false`, a missing or older schema
        /// is an error that says to run `dlq migrate` (or ``PostgresDeadLetterStore/migrate()``). Default `false`.
        public var migrate: Bool
        /// At most this many letters in one group-commit transaction. Default 2,000.
        public var maxBatchSize: Int
        /// At most this many group-commit transactions at once (also for coalesced completions). Default 2.
        /// A second one starts only once 16 letters wait, so that commits stay large enough to be worth their
        /// fixed cost. On a 2-core machine running the server too, 64 concurrent adders reached 21,800–23,900
        /// letters/s with 1, 26,500–30,000/s with 2 and 25,000–30,000/s with 4 (paired runs on one server).
        public var maxConcurrentCommits: Int
        /// How long connecting to the server may take before the store reports it unreachable, and how long an
        /// operation waits for a pooled connection before it connects directly (see
        /// ``PostgresDeadLetterStore/withConnection(_:)``). Default 10 s.
        public var connectTimeout: Duration
        /// How long the server may take to answer one statement before the store closes the connection and
        /// reports it unreachable (a server that went silent); `nil` for no limit, as `dlq migrate` runs
        /// migrations (building indexes on a large store may take longer). Default 60 s.
        public var queryTimeout: Duration?
        /// The largest number of connections the store's own client opens (with ``PostgresDeadLetterStore/init(url:configuration:logger:)``).
        /// Default 20.
        public var maximumConnections: Int

        /// Creates a configuration with the defaults.
        public init(
            schema: String = "dead_letters",
            migrate: Bool = false,
            maxBatchSize: Int = 2000,
            maxConcurrentCommits: Int = 2,
            connectTimeout: Duration = .seconds(10),
            maximumConnections: Int = 20,
            queryTimeout: Duration? = .seconds(60)
        ) {
            self.schema = schema
            self.migrate = migrate
            self.maxBatchSize = maxBatchSize
            self.maxConcurrentCommits = maxConcurrentCommits
            self.connectTimeout = connectTimeout
            self.maximumConnections = maximumConnections
            self.queryTimeout = queryTimeout
        }

        /// Checks every field.
        /// - Throws: ``DeadLetters/DeadLetterError/Code/invalidConfiguration`` naming the field.
        public func validate() throws {
            try Self.validateSchemaName(self.schema)
            func invalid(_ field: String, _ message: String) -> DeadLetterError {
                DeadLetterError(code: .invalidConfiguration, message: "\(field) \(message)", field: field)
            }
            if self.maxBatchSize < 1 { throw invalid("maxBatchSize", "must be at least 1") }
            if self.maxConcurrentCommits < 1 { throw invalid("maxConcurrentCommits", "must be at least 1") }
            if self.connectTimeout <= .zero { throw invalid("connectTimeout", "must be positive") }
            if self.maximumConnections < 1 { throw invalid("maximumConnections", "must be at least 1") }
            if let queryTimeout = self.queryTimeout, queryTimeout <= .zero {
                throw invalid("queryTimeout", "must be positive, or nil for no limit")
            }
        }

        /// Throws unless `name` matches `^[a-z_][a-z0-9_]{0,62}$`.
        static func validateSchemaName(_ name: String) throws {
            let bytes = Array(name.utf8)
            let valid =
                !bytes.isEmpty && bytes.count <= 63
                && bytes.enumerated().allSatisfy { index, byte in
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || byte == UInt8(ascii: "_")
                        || (index > 0 && byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                }
            guard valid else {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message: "schema name must be 1 to 63 lower-case letters, digits or '_', not starting with a digit",
                    field: "schema"
                )
            }
        }
    }
}

/// Where a store connects, read from a `postgres://` URL; the password never appears in descriptions.
struct PostgresEndpoint: Sendable, CustomStringConvertible {
    enum SSLMode: String, Sendable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String
    var sslMode: SSLMode
    var sslRootCertificate: String?
    var schema: String?

    /// `user@host:port/database`, without the password.
    var description: String { "\(self.username)@\(self.hostAndPort)/\(self.database)" }

    var hostAndPort: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }

    /// Reads `postgres://user:password@host:port/database?sslmode=…&sslrootcert=…&schema=…`.
    init(url: String) throws {
        func invalid(_ message: String) -> DeadLetterError {
            DeadLetterError(code: .invalidConfiguration, message: "invalid PostgreSQL URL: \(message)", field: "url")
        }
        var rest = Substring(url)
        if rest.hasPrefix("postgres://") {
            rest = rest.dropFirst("postgres://".count)
        } else if rest.hasPrefix("postgresql://") {
            rest = rest.dropFirst("postgresql://".count)
        } else {
            throw invalid("it must start with postgres:// or postgresql://")
        }
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var userInfo: Substring?
        if let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        let hostPort = rest
        guard let userInfo, !userInfo.isEmpty else {
            throw invalid("a user name is required (postgres://user:password@host/db)")
        }
        if let colon = userInfo.firstIndex(of: ":") {
            self.username = try Self.decode(userInfo[..<colon], "user name")
            self.password = try Self.decode(userInfo[userInfo.index(after: colon)...], "password")
        } else {
            self.username = try Self.decode(userInfo, "user name")
            self.password = nil
        }
        guard !self.username.isEmpty else { throw invalid("the user name is empty") }
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("an IPv6 host lacks its closing ']'") }
            self.host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            self.port = try Self.port(after.hasPrefix(":") ? after.dropFirst() : nil, invalid)
        } else if let colon = hostPort.lastIndex(of: ":") {
            self.host = String(hostPort[..<colon])
            self.port = try Self.port(hostPort[hostPort.index(after: colon)...], invalid)
        } else {
            self.host = String(hostPort)
            self.port = 5432
        }
        guard !self.host.isEmpty else { throw invalid("the host is empty") }
        let database = try Self.decode(path, "database")
        self.database = database.isEmpty ? self.username : database
        self.sslMode = .prefer
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0])
            let value = try Self.decode(parts.count > 1 ? parts[1] : "", key)
            switch key {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw invalid("sslmode must be disable, prefer, require, verify-ca or verify-full")
                }
                self.sslMode = mode
            case "sslrootcert": self.sslRootCertificate = value
            case "schema":
                try PostgresDeadLetterStore.Configuration.validateSchemaName(value)
                self.schema = value
            case "application_name", "connect_timeout": continue
            default: throw invalid("unknown parameter '\(key)' (known: sslmode, sslrootcert, schema)")
            }
        }
    }

    private static func port(
        _ text: Substring?,
        _ invalid: (String) -> DeadLetterError
    ) throws -> Int {
        guard let text, !text.isEmpty else { return 5432 }
        guard let port = Int(text), (1...65535).contains(port) else { throw invalid("the port must be 1 to 65535") }
        return port
    }

    /// Percent-decodes a URL component.
    private static func decode(_ text: Substring, _ what: String) throws -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Self.hex), let low = iterator.next().flatMap(Self.hex) else {
                    throw DeadLetterError(
                        code: .invalidConfiguration,
                        message: "invalid PostgreSQL URL: bad percent-encoding in the \(what)",
                        field: "url"
                    )
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The TLS configuration the `sslmode` asks for, as libpq reads it.
    func tlsConfiguration() -> TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch self.sslMode {
        case .disable: return nil
        case .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let root = self.sslRootCertificate { tls.trustRoots = .file(root) }
        return tls
    }

    func clientConfiguration(_ configuration: PostgresDeadLetterStore.Configuration) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch (self.sslMode, self.tlsConfiguration()) {
        case (.disable, _), (_, nil): tls = .disable
        case (.prefer, let config?): tls = .prefer(config)
        case (_, let config?): tls = .require(config)
        }
        var client = PostgresClient.Configuration(
            host: self.host,
            port: self.port,
            username: self.username,
            password: self.password,
            database: self.database,
            tls: tls
        )
        client.options.maximumConnections = configuration.maximumConnections
        client.options.connectTimeout = configuration.connectTimeout
        return client
    }

    func connectionConfiguration(
        _ configuration: PostgresDeadLetterStore.Configuration
    ) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch (self.sslMode, self.tlsConfiguration()) {
        case (.disable, _), (_, nil): tls = .disable
        case (.prefer, let config?): tls = .prefer(try NIOSSLContext(configuration: config))
        case (_, let config?): tls = .require(try NIOSSLContext(configuration: config))
        }
        var connection = PostgresConnection.Configuration(
            host: self.host,
            port: self.port,
            username: self.username,
            password: self.password,
            database: self.database,
            tls: tls
        )
        let (seconds, attoseconds) = configuration.connectTimeout.components
        connection.options.connectTimeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        return connection
    }
}
