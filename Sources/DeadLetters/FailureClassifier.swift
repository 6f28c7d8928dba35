/// Decides the ``FailureReason`` of an error.
///
/// In order: an error that states its own reason (``DeadLetterReasonProviding``) wins; then the rules, first
/// match wins; then the built-in mapping: `CancellationError` → ``FailureReason/cancelled``,
/// `DecodingError` → ``FailureReason/decoding``, `EncodingError` → ``FailureReason/processing``; anything
/// else is ``fallback``.
public struct FailureClassifier: Sendable {
    /// A rule: the reason for an error, or `nil` to let the next rule decide.
    public typealias Rule = @Sendable (any Error) -> FailureReason?

    /// The rules, tried in order before the built-in mapping.
    public var rules: [Rule]
    /// The reason of an error nothing else classifies. Default ``FailureReason/unknown``.
    public var fallback: FailureReason

    /// Creates a classifier.
    /// - Parameters:
    ///   - rules: tried in order before the built-in mapping.
    ///   - fallback: the reason when nothing matches; default ``FailureReason/unknown``.
    public init(rules: [Rule] = [], fallback: FailureReason = .unknown) {
        self.rules = rules
        self.fallback = fallback
    }

    /// The built-in mapping alone.
    public static var `default`: FailureClassifier { FailureClassifier() }

    /// Adds a rule that maps every error of type `E` to `reason`.
    public mutating func map<E: Error>(_ type: E.Type, to reason: FailureReason) {
        self.rules.append { $0 is E ? reason : nil }
    }

    /// The reason for `error`.
    public func classify(_ error: any Error) -> FailureReason {
        self.classify(error, facts: ErrorTypeFacts.of(error))
    }

    /// The reason for `error`, whose type's facts are known: what the type can be is looked up once per type
    /// (``ErrorTypeFacts``), not cast each time.
    func classify(_ error: any Error, facts: ErrorTypeFacts) -> FailureReason {
        if facts.providesReason, let provider = error as? any DeadLetterReasonProviding {
            return provider.failureReason
        }
        for rule in self.rules {
            if let reason = rule(error) { return reason }
        }
        return facts.builtInReason ?? self.fallback
    }
}
