import DeadLetters
import PostgresNIO

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
                message: "\(operation) failed on \(self.place): \(String(describing: type(of: error)))"
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
            let cause = error.underlying.map { String(describing: $0) } ?? error.code.description
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
}
