import DeadLetters
import NIOCore
import NIOPosix
import PostgresNIO
import _ConnectionPoolModule

extension PostgresDeadLetterStore {
    /// Turns what postgres-nio throws into a ``DeadLetters/DeadLetterError`` that names the server, the
    /// database and the user, never the password, the query's values or a payload.
    func storeError(_ error: any Error, _ operation: String) -> any Error {
        if error is DeadLetterError || error is CancellationError || error is SourceError { return error }
        if let error = error as? PostgresTransactionError {
            if let inner = error.beginError ?? error.closureError ?? error.commitError {
                return self.storeError(inner, operation)
            }
        }
        guard let error = error as? PSQLError else {
            return DeadLetterError(
                code: .storeUnavailable,
                message: "\(operation) failed on \(self.place): \(Self.describe(error))"
            )
        }
        let user = self.endpoint.map { "'\($0.username)'" } ?? "the configured user"
        let database = self.endpoint.map { "'\($0.database)'" } ?? "the configured database"
        let server = self.endpoint.map { "PostgreSQL at \($0.hostAndPort)" } ?? "PostgreSQL"
        if let state = Self.sqlState(error) {
            let serverMessage = error.serverInfo?[.message] ?? "no message"
            switch state {
            case "28P01", "28000":
                return DeadLetterError(
                    code: .storeUnavailable,
                    message: "\(server) refused the login of user \(user) to database \(database): "
                        + "wrong password or no access (\(state))"
                )
            case "3D000":
                return DeadLetterError(
                    code: .storeUnavailable,
                    message: "database \(database) does not exist on \(server) (user \(user))"
                )
            case "42501":
                return DeadLetterError(
                    code: .storeUnavailable,
                    message: "user \(user) lacks a privilege for \(operation) in schema '\(self.configuration.schema)' "
                        + "of database \(database) on \(server): \(serverMessage)"
                )
            case "23505":
                return DeadLetterError(code: .duplicateID, message: "a letter with the same id is already stored")
            default:
                return DeadLetterError(
                    code: .storeUnavailable,
                    message: "\(operation) failed on \(self.place), schema '\(self.configuration.schema)': "
                        + "\(serverMessage) (SQLSTATE \(state))"
                )
            }
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            let cause = Self.describe(error)
            return DeadLetterError(
                code: .storeUnavailable,
                message: "cannot reach \(server) (database \(database), user \(user)): \(cause)"
            )
        case .poolClosed:
            return DeadLetterError(
                code: .shutdown,
                message: "\(operation) failed: the PostgreSQL client of \(self.place) is not running or has shut down"
            )
        case .queryCancelled:
            return CancellationError()
        case .sslUnsupported:
            return DeadLetterError(
                code: .storeUnavailable,
                message: "\(server) does not support TLS, which sslmode requires (database \(database), user \(user))"
            )
        case .authMechanismRequiresPassword:
            return DeadLetterError(
                code: .storeUnavailable,
                message: "\(server) asks user \(user) for a password and the URL gives none (database \(database))"
            )
        default:
            return DeadLetterError(
                code: .storeUnavailable,
                message: "\(operation) failed on \(self.place): \(error.code)"
            )
        }
    }

    /// What went wrong, in words: the server's message and SQLSTATE, or the cause beneath postgres-nio's
    /// errors (whose own description is a generic sentence that names nothing), or the error itself.
    static func describe(_ error: any Error) -> String {
        if let error = error as? DeadLetterError { return error.message }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return "the server said: \(message)\(state)"
            }
            if let underlying = error.underlying { return Self.describe(underlying) }
            switch error.code {
            case .serverClosedConnection: return "the server closed the connection"
            case .uncleanShutdown: return "the connection ended without a clean shutdown"
            case .clientClosedConnection: return "the connection was closed"
            default: return "\(error.code)"
            }
        }
        if let pool = error as? ConnectionPoolError {
            switch pool {
            case .connectionCreationCircuitBreakerTripped:
                return "the connection pool stopped trying after its connections kept failing"
            case .poolShutdown: return "the connection pool has shut down"
            default: return "the request for a connection was cancelled"
            }
        }
        if let connect = error as? NIOConnectionError {
            if let dns = connect.dnsAError ?? connect.dnsAAAAError { return "cannot resolve \(connect.host): \(dns)" }
            let failures = connect.connectionErrors.map { failure -> String in
                guard let io = failure.error as? IOError else { return "\(failure.error)" }
                // "connection refused", not NIO's "connection reset (error set): Connection refused (errno: 111)".
                return String(cString: strerror(io.errnoCode)).lowercased()
            }
            return failures.isEmpty ? "cannot connect" : Array(Set(failures)).sorted().joined(separator: "; ")
        }
        if let channel = error as? ChannelError, case .connectTimeout(let limit) = channel {
            return "no connection within \(limit.nanoseconds / 1_000_000) ms"
        }
        let text = String(describing: error)
        return text.contains("Generic description") ? String(describing: type(of: error)) : text
    }
}
