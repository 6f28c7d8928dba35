import Synchronization

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
        self.init(error, facts: ErrorTypeFacts.of(error))
    }

    init(_ error: any Error, facts: ErrorTypeFacts) {
        self.type = facts.name
        self.message = Self.message(of: error, facts)
        var causes: [String] = []
        var next = facts.mayHaveUnderlying ? Self.underlying(of: error) : nil
        while let cause = next, causes.count < Self.maxCauses {
            let causeFacts = ErrorTypeFacts.of(cause)
            causes.append("\(causeFacts.name): \(Self.message(of: cause, causeFacts))")
            next = causeFacts.mayHaveUnderlying ? Self.underlying(of: cause) : nil
        }
        self.causes = causes
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
        Self.message(of: error, ErrorTypeFacts.of(error))
    }

    private static func message(of error: any Error, _ facts: ErrorTypeFacts) -> String {
        let message: String
        if facts.isDecodingError, let decoding = error as? DecodingError {
            message = Self.describe(decoding)
        } else if let describe = facts.describe {
            // What `String(describing:)` returns for such a type, without its search of the protocols.
            message = Self.describe(error, with: describe)
        } else {
            message = String(describing: error)
        }
        return Self.truncate(message)
    }

    /// Calls `describe` with a pointer to the error's value: `error` is opened to its type.
    private static func describe<E: Error>(_ error: E, with describe: (UnsafeRawPointer) -> String) -> String {
        withUnsafePointer(to: error) { describe(UnsafeRawPointer($0)) }
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

/// What capturing an error of one type needs, found once per type and kept: its name (which
/// `String(describing: type(of: error))` builds anew each time, through the runtime's casts of the metatype),
/// whether it can have an underlying error, and how it describes itself. An error of a type seen before then
/// costs one lookup in a small table instead of several dynamic casts.
///
/// A class: an add passes the facts along to the capture and the classifier, and copies of a struct with
/// its name, closure and reason cost a dozen reference counts per add (counted with `perf probe` on
/// `swift_retain`/`swift_release`, memory add of thrown errors).
final class ErrorTypeFacts: Sendable {
    /// `String(describing: type(of: error))`.
    let name: String
    /// A `DecodingError`.
    let isDecodingError: Bool
    /// A `DecodingError` or a ``DeadLetterUnderlyingErrorProviding``.
    let mayHaveUnderlying: Bool
    /// For a type that is `CustomStringConvertible` and not `TextOutputStreamable` (whose `String(describing:)`
    /// is its `description`): its `description`, reached through the conformance found once and read from a
    /// pointer to a value of the type (``CapturedError`` opens the error to its type to make one).
    ///
    /// The value is read as the type these facts were found for, `type(of: error)`: the opened type is that
    /// type, or for a class a superclass of it, whose value is the same reference. A cast to the type instead
    /// (`error as? T`) made the runtime instantiate `Optional<T>`'s metadata and search for a conformance at
    /// every call: 6-7% of a memory `add` (perf, 300,000 letters).
    let describe: (@Sendable (UnsafeRawPointer) -> String)?
    /// A ``DeadLetterReasonProviding``.
    let providesReason: Bool
    /// The reason ``FailureClassifier`` gives the type when no rule matches and it provides none itself, or
    /// `nil` for the classifier's fallback.
    let builtInReason: FailureReason?

    /// Types seen so far; errors come from a few types, and a process that made more than `limit` of them
    /// stops remembering new ones.
    private static let known = Locked([ObjectIdentifier: ErrorTypeFacts]())
    private static let limit = 1024

    /// The facts found last, read without the lock: a producer's errors are mostly of one type. It holds the
    /// address of facts kept in ``known``, which are never removed, so the address stays good (facts not kept,
    /// past ``limit``, never go here). Measured: the lock and the dictionary's hash were 40 ns of a memory
    /// `add`, and every queue in the process took that one lock at each add.
    private static let last = Atomic<UInt>(0)

    /// The type these facts are for.
    private let type: ObjectIdentifier

    static func of(_ error: any Error) -> ErrorTypeFacts {
        let type = Swift.type(of: error)
        let key = ObjectIdentifier(type)
        if let address = UnsafeRawPointer(bitPattern: Self.last.load(ordering: .acquiring)) {
            let facts = Unmanaged<ErrorTypeFacts>.fromOpaque(address).takeUnretainedValue()
            if facts.type == key { return facts }
        }
        let (facts, kept) = Self.known.withLock { known -> (ErrorTypeFacts, Bool) in
            if let facts = known[key] { return (facts, true) }
            let facts = ErrorTypeFacts(error, type: type)
            guard known.count < Self.limit else { return (facts, false) }
            known[key] = facts
            return (facts, true)
        }
        if kept {
            Self.last.store(UInt(bitPattern: Unmanaged.passUnretained(facts).toOpaque()), ordering: .releasing)
        }
        return facts
    }

    private static func describer<T: Error & CustomStringConvertible>(
        _: T.Type
    ) -> @Sendable (UnsafeRawPointer) -> String {
        { value in value.assumingMemoryBound(to: T.self).pointee.description }
    }

    private init(_ error: any Error, type: any Error.Type) {
        self.type = ObjectIdentifier(type)
        // What `String(describing: type)` prints for a metatype, without its first steps: it looks for
        // conformances of the metatype and reflects it (`Mirror`) before it calls this. Those steps, the first
        // time a process meets an error type, were 1.6% of adding 10,000 letters in a fresh process (perf).
        self.name = _typeName(type, qualified: false)
        self.isDecodingError = error is DecodingError
        self.mayHaveUnderlying = self.isDecodingError || error is any DeadLetterUnderlyingErrorProviding
        // `TextOutputStreamable` asked only of a type that describes itself: each first question of a type and a
        // protocol searches every conformance in the process (0.1 ms or more in a large binary), and a plain
        // error enum is neither.
        if let described = type as? any (Error & CustomStringConvertible).Type, !(error is any TextOutputStreamable) {
            self.describe = Self.describer(described)
        } else {
            self.describe = nil
        }
        self.providesReason = error is any DeadLetterReasonProviding
        switch error {
        case is CancellationError: self.builtInReason = .cancelled
        case is DecodingError: self.builtInReason = .decoding
        case is EncodingError: self.builtInReason = .processing
        default: self.builtInReason = nil
        }
    }
}
