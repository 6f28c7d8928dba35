/// When a ``CircuitBreaker`` opens, how long it stays open, and how it closes again.
///
/// The breaker opens when either rule trips, whichever comes first:
/// - ``consecutiveFailures`` failures in a row, or
/// - a failure rate of at least ``failureRateThreshold`` over the last ``window``, once the window holds at
///   least ``minimumCalls`` calls.
///
/// It then refuses calls for ``openDuration``, lets ``halfOpenProbes`` probe calls through at a time
/// (half-open), closes after ``closeAfterSuccesses`` successful probes, and opens again at the first failed
/// probe.
public struct CircuitBreakerConfiguration: Sendable, Hashable {
    /// The number of failures in a row that opens the circuit. Default 5; 0 turns this rule off.
    public var consecutiveFailures: Int
    /// The failure rate (failures ÷ calls, in `0...1`) over ``window`` that opens the circuit, or `nil` to turn
    /// this rule off. Default 0.5.
    public var failureRateThreshold: Double?
    /// The length of the sliding window of the failure-rate rule. Default 60 s. The window moves in steps of a
    /// tenth of its length: a call counts until the step that starts a whole window after its own step, so
    /// for between 90% and 100% of the window.
    public var window: Duration
    /// The number of calls the window must hold before the failure-rate rule applies. Default 20; at least 1.
    public var minimumCalls: Int
    /// How long the circuit stays open before it lets probes through. Default 30 s; not negative.
    public var openDuration: Duration
    /// The number of probe calls let through at a time while half-open. Default 1; at least 1. A slot frees
    /// when its probe's success is recorded.
    public var halfOpenProbes: Int
    /// The number of successful probes that close the circuit. Default 1; at least 1.
    public var closeAfterSuccesses: Int

    /// Creates a configuration. Call ``validate()`` to check it.
    /// - Parameters:
    ///   - consecutiveFailures: failures in a row that open the circuit (default 5; 0 turns the rule off).
    ///   - failureRateThreshold: the failure rate over `window` that opens it (default 0.5; `nil` turns the
    ///     rule off).
    ///   - window: the sliding window of the failure-rate rule (default 60 s).
    ///   - minimumCalls: calls the window must hold before the rate applies (default 20).
    ///   - openDuration: how long the circuit stays open (default 30 s).
    ///   - halfOpenProbes: probes let through at a time while half-open (default 1).
    ///   - closeAfterSuccesses: successful probes that close the circuit (default 1).
    public init(
        consecutiveFailures: Int = 5,
        failureRateThreshold: Double? = 0.5,
        window: Duration = .seconds(60),
        minimumCalls: Int = 20,
        openDuration: Duration = .seconds(30),
        halfOpenProbes: Int = 1,
        closeAfterSuccesses: Int = 1
    ) {
        self.consecutiveFailures = consecutiveFailures
        self.failureRateThreshold = failureRateThreshold
        self.window = window
        self.minimumCalls = minimumCalls
        self.openDuration = openDuration
        self.halfOpenProbes = halfOpenProbes
        self.closeAfterSuccesses = closeAfterSuccesses
    }

    /// The default configuration: 5 failures in a row or 50% of at least 20 calls in 60 s open the circuit for
    /// 30 s; one probe at a time; one success closes it.
    public static let `default` = CircuitBreakerConfiguration()

    /// Checks that every value is in range.
    /// - Throws: ``DeadLetterError`` with code ``DeadLetterError/Code/invalidConfiguration`` and a message
    ///   naming the value.
    public func validate() throws {
        func fail(_ field: String, _ message: String) -> DeadLetterError {
            DeadLetterError(
                code: .invalidConfiguration,
                message: "CircuitBreakerConfiguration.\(field) \(message)"
            )
        }
        guard self.consecutiveFailures >= 0 else {
            throw fail("consecutiveFailures", "must not be negative, got \(self.consecutiveFailures)")
        }
        if let threshold = self.failureRateThreshold {
            guard threshold.isFinite, threshold > 0, threshold <= 1 else {
                throw fail("failureRateThreshold", "must be greater than 0 and at most 1, got \(threshold)")
            }
            guard self.window > .zero else {
                throw fail("window", "must be longer than zero, got \(self.window)")
            }
        }
        guard self.minimumCalls >= 1 else {
            throw fail("minimumCalls", "must be at least 1, got \(self.minimumCalls)")
        }
        guard self.openDuration >= .zero else {
            throw fail("openDuration", "must not be negative, got \(self.openDuration)")
        }
        guard self.halfOpenProbes >= 1 else {
            throw fail("halfOpenProbes", "must be at least 1, got \(self.halfOpenProbes)")
        }
        guard self.closeAfterSuccesses >= 1 else {
            throw fail("closeAfterSuccesses", "must be at least 1, got \(self.closeAfterSuccesses)")
        }
    }
}
