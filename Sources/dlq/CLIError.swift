import ArgumentParser
import DeadLetters

/// An error of the `dlq` command, with the exit status it ends the process with.
///
/// Exit statuses (stable; scripts may rely on them):
/// - 0: success.
/// - 1: the work ran but did not all succeed: a replay left failures, or a purge was declined.
/// - 2: a usage error: an unknown flag, a bad value, a missing argument, `purge` without a selector.
/// - 3: a letter named by id does not exist.
/// - 4: a store or file problem: the store's folder is missing, the file is not a store (or is damaged or
///   newer), the store cannot be reached, an import file is malformed, a file cannot be read or written.
/// - 5: anything else.
/// - 130: interrupted (Ctrl-C) before the work finished.
struct CLIError: Error, CustomStringConvertible {
    enum Kind {
        case usage, notFound, store, other
    }

    var kind: Kind
    var message: String

    static func usage(_ message: String) -> CLIError { CLIError(kind: .usage, message: message) }
    static func notFound(_ message: String) -> CLIError { CLIError(kind: .notFound, message: message) }
    static func store(_ message: String) -> CLIError { CLIError(kind: .store, message: message) }

    var description: String { self.message }

    var exitCode: Int32 {
        switch self.kind {
        case .usage: ExitStatus.usage
        case .notFound: ExitStatus.notFound
        case .store: ExitStatus.store
        case .other: ExitStatus.other
        }
    }
}

/// The exit statuses of `dlq`; see ``CLIError``.
enum ExitStatus {
    static let success: Int32 = 0
    static let incomplete: Int32 = 1
    static let usage: Int32 = 2
    static let notFound: Int32 = 3
    static let store: Int32 = 4
    static let other: Int32 = 5
    static let interrupted: Int32 = 130

    /// The exit status and the one-line message for an error thrown by a command.
    static func classify(_ error: any Error) -> (status: Int32, message: String) {
        switch error {
        case let error as CLIError:
            return (error.exitCode, error.message)
        case let error as DeadLetterError:
            switch error.code {
            case .notFound: return (Self.notFound, error.description)
            case .invalidConfiguration, .invalidFilter: return (Self.usage, error.description)
            case .invalidFormat, .storeUnavailable, .notAStore, .incompatibleStore, .io, .unsupported, .encryption:
                return (Self.store, error.description)
            default: return (Self.other, error.description)
            }
        default:
            return (Self.other, String(describing: error))
        }
    }
}

/// Leaves with an exit status and no message: the command already said what happened.
struct SilentExit: Error {
    var status: Int32
}
