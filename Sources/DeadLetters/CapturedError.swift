/// What is recorded of an error: its type, its message and the chain of errors beneath it.
public struct CapturedError: Sendable, Hashable {
    /// The longest message kept; longer ones are cut with an ellipsis, so one huge error cannot bloat the store.
    public static let maxMessageLength = 4096
    /// The deepest chain of causes followed.
    public static let maxCauses = 16

    /// The error's type name, `String(describing: type(of: error))`.
    public var type: String
    /// The error's message.
    public var message: String
    /// The errors beneath it, outermost first, each as `"Type: message"`.
    public var causes: [String]

    /// Creates a captured error from its parts.
    public init(type: String, message: String, causes: [String] = []) {
        self.type = type
        self.message = message
        self.causes = causes
    }

    /// Captures `error`: its type, message and causes, following ``DeadLetterUnderlyingErrorProviding`` and
    /// the underlying error of a `DecodingError`'s context.
    public init(_ error: any Error) {
        self.type = Self.typeName(error)
        self.message = Self.message(of: error)
        var causes: [String] = []
        var next = Self.underlying(of: error)
        while let cause = next, causes.count < Self.maxCauses {
            causes.append("\(Self.typeName(cause)): \(Self.message(of: cause))")
            next = Self.underlying(of: cause)
        }
        self.causes = causes
    }

    private static func typeName(_ error: any Error) -> String {
        String(describing: Swift.type(of: error))
    }

    private static func underlying(of error: any Error) -> (any Error)? {
        if let provider = error as? any DeadLetterUnderlyingErrorProviding { return provider.underlyingError }
        if let decoding = error as? DecodingError {
            switch decoding {
            case .keyNotFound(_, let context), .valueNotFound(_, let context), .typeMismatch(_, let context),
                .dataCorrupted(let context):
                return context.underlyingError
            @unknown default:
                return nil
            }
        }
        return nil
    }

    /// A readable message: `DecodingError`s as `keyNotFound: total`, others as `String(describing:)`.
    static func message(of error: any Error) -> String {
        let message: String
        if let decoding = error as? DecodingError {
            message = Self.describe(decoding)
        } else {
            message = String(describing: error)
        }
        return Self.truncate(message)
    }

    static func truncate(_ message: String) -> String {
        guard message.utf8.count > Self.maxMessageLength else { return message }
        var cut = message.utf8.prefix(Self.maxMessageLength)
        while !cut.isEmpty, String(cut) == nil { cut = cut.dropLast() }
        return (String(cut) ?? "") + "…"
    }

    private static func path(_ context: DecodingError.Context, appending key: (any CodingKey)? = nil) -> String {
        var keys = context.codingPath
        if let key { keys.append(key) }
        return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "keyNotFound: \(path(context, appending: key))"
        case .valueNotFound(let type, let context):
            return "valueNotFound: \(type) at \(path(context).isEmpty ? "top level" : path(context))"
        case .typeMismatch(let type, let context):
            let at = path(context)
            return "typeMismatch: expected \(type) at \(at.isEmpty ? "top level" : at)"
        case .dataCorrupted(let context):
            let at = path(context)
            return "dataCorrupted: \(context.debugDescription)\(at.isEmpty ? "" : " at \(at)")"
        @unknown default:
            return String(describing: error)
        }
    }
}
