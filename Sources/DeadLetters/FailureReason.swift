/// Why an item could not be processed.
///
/// `FailureReason` is an extensible set: the package defines the common reasons as static members, and
/// users add their own with ``init(_:retryable:)``. Every reason says whether a failure for it is worth
/// retrying by default; a ``RetryPolicy`` may override that per reason.
///
/// Two reasons are equal when their ``rawValue``s are equal.
public struct FailureReason: Sendable, Hashable, CustomStringConvertible {
    /// The stable name of the reason, as stored (`"validation"`, `"timeout"`, …).
    public let rawValue: String
    /// Whether a failure for this reason may succeed later, so that it is retried by default.
    public let isRetryable: Bool

    /// Creates a reason of your own.
    /// - Parameters:
    ///   - rawValue: the stored name; keep it stable, since stored letters and filters use it.
    ///   - retryable: whether a failure for this reason is retried by default.
    public init(_ rawValue: String, retryable: Bool) {
        self.rawValue = rawValue
        self.isRetryable = retryable
    }

    /// The reason for a stored name: a known reason keeps its retryability; an unknown name is taken as
    /// not retryable, so that nothing is retried that nobody asked to retry.
    public init(rawValue: String) {
        self = Self.known[rawValue] ?? FailureReason(rawValue, retryable: false)
    }

    public var description: String { self.rawValue }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.rawValue) }

    /// The item's data broke a rule of the consumer. Not retryable.
    public static let validation = FailureReason("validation", retryable: false)
    /// The payload could not be decoded. Not retryable.
    public static let decoding = FailureReason("decoding", retryable: false)
    /// The handler failed while processing. Retryable.
    public static let processing = FailureReason("processing", retryable: true)
    /// The work took too long. Retryable.
    public static let timeout = FailureReason("timeout", retryable: true)
    /// A downstream service failed. Retryable.
    public static let dependency = FailureReason("dependency", retryable: true)
    /// A downstream service asked to slow down. Retryable.
    public static let rateLimited = FailureReason("rateLimited", retryable: true)
    /// Credentials were refused. Not retryable.
    public static let unauthorized = FailureReason("unauthorized", retryable: false)
    /// Something the item refers to does not exist. Not retryable.
    public static let notFound = FailureReason("notFound", retryable: false)
    /// The item conflicts with the current state (an optimistic-lock failure, say). Retryable.
    public static let conflict = FailureReason("conflict", retryable: true)
    /// A resource (memory, disk, a pool) ran out. Retryable.
    public static let resourceExhausted = FailureReason("resourceExhausted", retryable: true)
    /// The work was cancelled, at shutdown for example. Retryable.
    public static let cancelled = FailureReason("cancelled", retryable: true)
    /// The item was too old to process. Not retryable.
    public static let expired = FailureReason("expired", retryable: false)
    /// Nothing more is known. Retryable.
    public static let unknown = FailureReason("unknown", retryable: true)

    /// The reasons the package defines, in a stable order.
    public static let allKnown: [FailureReason] = [
        .validation, .decoding, .processing, .timeout, .dependency, .rateLimited, .unauthorized, .notFound,
        .conflict, .resourceExhausted, .cancelled, .expired, .unknown,
    ]

    private static let known: [String: FailureReason] = Dictionary(
        uniqueKeysWithValues: allKnown.map { ($0.rawValue, $0) }
    )
}

extension FailureReason: ExpressibleByStringLiteral {
    /// A reason by its stored name, as ``init(rawValue:)`` reads it.
    public init(stringLiteral value: String) {
        self.init(rawValue: value)
    }
}

/// An error that knows why it happened.
///
/// Conform your own errors to it so that the queue files them under the right reason without a
/// classifier rule.
public protocol DeadLetterReasonProviding: Error {
    /// The reason to record for this error.
    var failureReason: FailureReason { get }
}

/// An error that wraps another one, so that the whole chain of causes is recorded.
public protocol DeadLetterUnderlyingErrorProviding: Error {
    /// The error that caused this one, if any.
    var underlyingError: (any Error)? { get }
}
