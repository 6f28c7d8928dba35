/// When and how often a failed item is tried again before it becomes a dead letter.
///
/// Retries come in two phases, as Sidekiq does them:
/// 1. **Immediate** attempts, in process, by `DeadLetterQueue.process`: the first try and up to
///    ``immediateAttempts`` − 1 retries, with ``immediateBackoff`` between them (milliseconds to seconds).
/// 2. **Delayed** attempts, scheduled in the store: when the immediate attempts are spent, the letter is stored
///    with a due time and the queue's `run()` tries it again, up to ``delayedAttempts`` times, with
///    ``delayedBackoff`` between them (seconds first, then minutes, then hours). When they are spent too, the
///    letter is `dead`.
///
/// A reason that is not retryable (``FailureReason/isRetryable``, or an override) is never retried: its
/// letter is stored `dead` at once. ``overrides`` change the retryability, the number of attempts and the
/// backoff per reason. ``jitter`` spreads every delay.
///
/// The policy is a value: it computes delays and never sleeps. ``validate()`` checks it.
public struct RetryPolicy: Sendable, Hashable {
    /// What a policy does differently for one reason. A `nil` field keeps the policy's value.
    public struct ReasonOverride: Sendable, Hashable {
        /// Whether the reason is retried; `nil` keeps ``FailureReason/isRetryable``.
        public var retryable: Bool?
        /// The number of in-process attempts, the first try included; `nil` keeps
        /// ``RetryPolicy/immediateAttempts``.
        public var immediateAttempts: Int?
        /// The number of delayed attempts; `nil` keeps ``RetryPolicy/delayedAttempts``.
        public var delayedAttempts: Int?
        /// The backoff between delayed attempts; `nil` keeps ``RetryPolicy/delayedBackoff``.
        public var backoff: Backoff?

        /// Creates an override; every field defaults to `nil` (keep the policy's value).
        /// - Parameters:
        ///   - retryable: whether the reason is retried.
        ///   - immediateAttempts: the number of in-process attempts, the first try included; at least 1.
        ///   - delayedAttempts: the number of delayed attempts; not negative.
        ///   - backoff: the backoff between delayed attempts.
        public init(
            retryable: Bool? = nil,
            immediateAttempts: Int? = nil,
            delayedAttempts: Int? = nil,
            backoff: Backoff? = nil
        ) {
            self.retryable = retryable
            self.immediateAttempts = immediateAttempts
            self.delayedAttempts = delayedAttempts
            self.backoff = backoff
        }
    }

    /// The number of in-process attempts `process` makes before storing the item, the first try included.
    /// Default 3; at least 1 (1 means no immediate retry).
    public var immediateAttempts: Int
    /// The backoff between in-process attempts. Default: exponential from 100 ms, ×2, at most 2 s.
    public var immediateBackoff: Backoff
    /// The number of attempts scheduled in the store after the immediate ones. Default 5; 0 means the letter
    /// is stored `dead` as soon as the immediate attempts are spent.
    public var delayedAttempts: Int
    /// The backoff between delayed attempts. Default: exponential from 10 s, ×6, at most 6 h, so the five
    /// default delays are 10 s, 1 min, 6 min, 36 min and 3 h 36 min (about 4 h 19 min in all, before jitter).
    public var delayedBackoff: Backoff
    /// How every delay is spread. Default ``Jitter/equal``: each delay keeps at least half its length, so a
    /// retry never comes much sooner than the backoff says, while items that failed together spread over the
    /// other half.
    public var jitter: Jitter
    /// Per-reason changes. Default: none.
    public var overrides: [FailureReason: ReasonOverride]

    /// The default immediate backoff: exponential from 100 ms, ×2, at most 2 s.
    public static let defaultImmediateBackoff = Backoff.exponential(
        initial: .milliseconds(100),
        multiplier: 2,
        max: .seconds(2)
    )

    /// The default delayed backoff: exponential from 10 s, ×6, at most 6 h.
    public static let defaultDelayedBackoff = Backoff.exponential(
        initial: .seconds(10),
        multiplier: 6,
        max: .seconds(6 * 3600)
    )

    /// Creates a policy. Call ``validate()`` to check it.
    /// - Parameters:
    ///   - immediateAttempts: in-process attempts, the first try included (default 3).
    ///   - immediateBackoff: the backoff between them (default ``defaultImmediateBackoff``).
    ///   - delayedAttempts: attempts scheduled in the store afterwards (default 5).
    ///   - delayedBackoff: the backoff between them (default ``defaultDelayedBackoff``).
    ///   - jitter: how delays are spread (default ``Jitter/equal``).
    ///   - overrides: per-reason changes (default none).
    public init(
        immediateAttempts: Int = 3,
        immediateBackoff: Backoff = RetryPolicy.defaultImmediateBackoff,
        delayedAttempts: Int = 5,
        delayedBackoff: Backoff = RetryPolicy.defaultDelayedBackoff,
        jitter: Jitter = .equal,
        overrides: [FailureReason: ReasonOverride] = [:]
    ) {
        self.immediateAttempts = immediateAttempts
        self.immediateBackoff = immediateBackoff
        self.delayedAttempts = delayedAttempts
        self.delayedBackoff = delayedBackoff
        self.jitter = jitter
        self.overrides = overrides
    }

    /// The default policy: 3 immediate attempts, then 5 delayed ones, equal jitter.
    public static let `default` = RetryPolicy()

    /// No retry at all: one try, then the letter is stored `dead`.
    public static let none = RetryPolicy(immediateAttempts: 1, delayedAttempts: 0, jitter: .none)

    /// Whether failures for `reason` are retried: the override's `retryable` if any, else
    /// ``FailureReason/isRetryable``.
    public func isRetryable(_ reason: FailureReason) -> Bool {
        self.overrides[reason]?.retryable ?? reason.isRetryable
    }

    /// The number of in-process attempts for a failure with `reason`, the first try included: 1 when the reason
    /// is not retryable, else the override's or ``immediateAttempts`` (at least 1).
    public func maxImmediateAttempts(for reason: FailureReason) -> Int {
        guard self.isRetryable(reason) else { return 1 }
        return Swift.max(1, self.overrides[reason]?.immediateAttempts ?? self.immediateAttempts)
    }

    /// The number of delayed attempts for a failure with `reason`: 0 when the reason is not retryable, else
    /// the override's or ``delayedAttempts`` (at least 0).
    public func maxDelayedAttempts(for reason: FailureReason) -> Int {
        guard self.isRetryable(reason) else { return 0 }
        return Swift.max(0, self.overrides[reason]?.delayedAttempts ?? self.delayedAttempts)
    }

    /// The backoff between delayed attempts for `reason`: the override's or ``delayedBackoff``.
    public func delayedBackoff(for reason: FailureReason) -> Backoff {
        self.overrides[reason]?.backoff ?? self.delayedBackoff
    }

    /// The in-process delay after attempt `n` failed, jitter applied. Whether to retry at all is the caller's
    /// decision (``maxImmediateAttempts(for:)``).
    /// - Parameters:
    ///   - n: the number of the attempt that failed, counting from 1 (the first try).
    ///   - previous: the delay waited before attempt `n`, if any; only decorrelated jitter reads it. When it
    ///     is `nil`, the backoff's delay for attempt `n − 1` stands in.
    ///   - rng: the random source for the jitter.
    public func immediateDelay(
        afterAttempt n: Int,
        previous: Duration?,
        using rng: inout some RandomNumberGenerator
    ) -> Duration {
        Self.jittered(self.immediateBackoff, attempt: n, previous: previous, jitter: self.jitter, using: &rng)
    }

    /// The delay before delayed attempt `n`, jitter applied, or `nil` when there is no such attempt and the
    /// letter must be marked dead.
    /// - Parameters:
    ///   - n: the number of the delayed attempt to schedule, counting from 1: 1 when the letter is first
    ///     stored after its immediate attempts, 2 after the first delayed attempt failed, and so on. Values
    ///     below 1 are taken as 1.
    ///   - reason: the reason of the last failure; it selects the override.
    ///   - previous: the delay waited before delayed attempt `n − 1`, if any; only decorrelated jitter reads
    ///     it. When it is `nil`, the backoff's delay for attempt `n − 1` stands in.
    ///   - rng: the random source for the jitter.
    /// - Returns: the backoff's delay for attempt `n` (``delayedBackoff(for:)``), jittered; or `nil` when
    ///   `reason` is not retryable or `n` is beyond its ``maxDelayedAttempts(for:)``.
    public func delayedDelay(
        afterDelayedAttempt n: Int,
        reason: FailureReason,
        previous: Duration?,
        using rng: inout some RandomNumberGenerator
    ) -> Duration? {
        let attempt = Swift.max(1, n)
        guard attempt <= self.maxDelayedAttempts(for: reason) else { return nil }
        return Self.jittered(
            self.delayedBackoff(for: reason),
            attempt: attempt,
            previous: previous,
            jitter: self.jitter,
            using: &rng
        )
    }

    private static func jittered(
        _ backoff: Backoff,
        attempt: Int,
        previous: Duration?,
        jitter: Jitter,
        using rng: inout some RandomNumberGenerator
    ) -> Duration {
        let attempt = Swift.max(1, attempt)
        let delay = backoff.delay(forAttempt: attempt)
        let base = backoff.delay(forAttempt: 1)
        let previous = previous ?? backoff.delay(forAttempt: attempt - 1)
        let cap = backoff.maximumDelay ?? Swift.max(delay, previous)
        return jitter.apply(to: delay, previous: previous, base: base, cap: cap, using: &rng)
    }

    /// Checks that every count and backoff is in range.
    /// - Throws: ``DeadLetterError`` with code ``DeadLetterError/Code/invalidConfiguration`` and a message
    ///   naming the value: a count below its minimum, a negative delay, a multiplier that is not positive, an
    ///   empty custom backoff, a maximum below the initial delay.
    public func validate() throws {
        func fail(_ field: String, _ message: String) -> DeadLetterError {
            DeadLetterError(code: .invalidConfiguration, message: "RetryPolicy.\(field) \(message)")
        }
        guard self.immediateAttempts >= 1 else {
            throw fail("immediateAttempts", "must be at least 1 (the first try), got \(self.immediateAttempts)")
        }
        guard self.delayedAttempts >= 0 else {
            throw fail("delayedAttempts", "must not be negative, got \(self.delayedAttempts)")
        }
        try self.immediateBackoff.validate(named: "RetryPolicy.immediateBackoff")
        try self.delayedBackoff.validate(named: "RetryPolicy.delayedBackoff")
        try self.jitter.validate(named: "RetryPolicy.jitter")
        for (reason, override) in self.overrides.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let field = "overrides[\(reason.rawValue)]"
            if let count = override.immediateAttempts, count < 1 {
                throw fail("\(field).immediateAttempts", "must be at least 1 (the first try), got \(count)")
            }
            if let count = override.delayedAttempts, count < 0 {
                throw fail("\(field).delayedAttempts", "must not be negative, got \(count)")
            }
            try override.backoff?.validate(named: "RetryPolicy.\(field).backoff")
        }
    }
}
