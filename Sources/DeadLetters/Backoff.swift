/// How long to wait before each retry, by the number of the attempt that failed.
///
/// `Backoff` is an extensible set: a struct with static factories, so that kinds can be added without
/// breaking anyone. Delays are computed to the nanosecond and never exceed about 292 years, whatever the
/// attempt number.
///
/// ```swift
/// let backoff = Backoff.exponential(initial: .milliseconds(100), multiplier: 2, max: .seconds(2))
/// backoff.delay(forAttempt: 1)  // 100 ms
/// backoff.delay(forAttempt: 3)  // 400 ms
/// backoff.delay(forAttempt: 9)  // 2 s (the cap)
/// ```
///
/// A ``Jitter`` spreads these delays so that many failing items do not retry in step; ``RetryPolicy``
/// applies it.
public struct Backoff: Sendable, Hashable {
    private enum Kind: Sendable, Hashable {
        case fixed(Duration)
        case linear(initial: Duration, increment: Duration, max: Duration?)
        case exponential(initial: Duration, multiplier: Double, max: Duration)
        case custom([Duration])
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// The same delay before every retry.
    /// - Parameter delay: the delay; not negative.
    public static func fixed(_ delay: Duration) -> Backoff {
        Backoff(.fixed(delay))
    }

    /// A delay that grows by the same step after each failure: `initial + increment × (attempt − 1)`.
    /// - Parameters:
    ///   - initial: the delay after the first failure; not negative.
    ///   - increment: what each further failure adds; not negative.
    ///   - max: the longest delay, if any (default: none); not less than `initial`.
    public static func linear(initial: Duration, increment: Duration, max: Duration? = nil) -> Backoff {
        Backoff(.linear(initial: initial, increment: increment, max: max))
    }

    /// A delay multiplied after each failure: `min(max, initial × multiplier^(attempt − 1))`.
    /// - Parameters:
    ///   - initial: the delay after the first failure; not negative.
    ///   - multiplier: the growth factor (default 2); finite and greater than zero.
    ///   - max: the longest delay; not less than `initial`.
    public static func exponential(initial: Duration, multiplier: Double = 2, max: Duration) -> Backoff {
        Backoff(.exponential(initial: initial, multiplier: multiplier, max: max))
    }

    /// Delays listed one by one: attempt 1 uses `delays[0]`, attempt *n* uses `delays[min(n − 1, count − 1)]`,
    /// so the last delay repeats.
    /// - Parameter delays: at least one delay, none negative.
    public static func custom(_ delays: [Duration]) -> Backoff {
        Backoff(.custom(delays))
    }

    /// The delay to wait after the given attempt failed.
    /// - Parameter attempt: the number of the attempt that failed, counting from 1 (the delay after the
    ///   first failure); values below 1 are taken as 1.
    /// - Returns: the delay before the next attempt, without jitter.
    public func delay(forAttempt attempt: Int) -> Duration {
        let attempt = Swift.max(1, attempt)
        switch self.kind {
        case .fixed(let delay):
            return delay
        case .linear(let initial, let increment, let max):
            let value = Self.nanoseconds(initial) + Self.nanoseconds(increment) * Double(attempt - 1)
            if let max, value >= Self.nanoseconds(max) { return max }
            return Self.duration(nanoseconds: value)
        case .exponential(let initial, let multiplier, let max):
            let value = Self.nanoseconds(initial) * Self.power(multiplier, attempt - 1)
            if !value.isFinite || value >= Self.nanoseconds(max) { return max }
            return Self.duration(nanoseconds: value)
        case .custom(let delays):
            guard !delays.isEmpty else { return .zero }
            return delays[Swift.min(attempt - 1, delays.count - 1)]
        }
    }

    /// The longest delay this backoff can give, or `nil` when it grows without a bound (``linear(initial:increment:max:)``
    /// without a `max`).
    public var maximumDelay: Duration? {
        switch self.kind {
        case .fixed(let delay): return delay
        case .linear(_, _, let max): return max
        case .exponential(_, _, let max): return max
        case .custom(let delays): return delays.max()
        }
    }

    /// Checks that the backoff's values are in range.
    /// - Throws: ``DeadLetterError`` with code ``DeadLetterError/Code/invalidConfiguration`` naming the value.
    public func validate() throws {
        try self.validate(named: "backoff")
    }

    func validate(named name: String) throws {
        func fail(_ message: String) -> DeadLetterError {
            DeadLetterError(code: .invalidConfiguration, message: "\(name) \(self): \(message)")
        }
        switch self.kind {
        case .fixed(let delay):
            guard delay >= .zero else { throw fail("the delay must not be negative") }
        case .linear(let initial, let increment, let max):
            guard initial >= .zero else { throw fail("the initial delay must not be negative") }
            guard increment >= .zero else { throw fail("the increment must not be negative") }
            if let max, max < initial { throw fail("the maximum must not be less than the initial delay") }
        case .exponential(let initial, let multiplier, let max):
            guard initial >= .zero else { throw fail("the initial delay must not be negative") }
            guard multiplier.isFinite, multiplier > 0 else {
                throw fail("the multiplier must be finite and greater than zero")
            }
            guard max >= initial else { throw fail("the maximum must not be less than the initial delay") }
        case .custom(let delays):
            guard !delays.isEmpty else { throw fail("at least one delay is needed") }
            guard delays.allSatisfy({ $0 >= .zero }) else { throw fail("no delay may be negative") }
        }
    }

    /// `base^exponent` by repeated squaring, exact for powers of two and stopping at infinity.
    private static func power(_ base: Double, _ exponent: Int) -> Double {
        var result = 1.0
        var factor = base
        var exponent = exponent
        while exponent > 0 {
            if exponent & 1 == 1 { result *= factor }
            exponent >>= 1
            if exponent > 0 { factor *= factor }
            if !result.isFinite || result == 0 { break }
        }
        return result
    }
}

extension Backoff {
    /// The largest number of nanoseconds a delay may hold (`Int64.max`, about 292 years).
    static let maximumNanoseconds = Double(Int64.max)

    /// `duration` in nanoseconds, as a `Double`; exact up to about 104 days.
    static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds / 1_000_000_000)
    }

    /// `duration` in whole nanoseconds, clamped to the range of `Int64`.
    static func wholeNanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        let (sum, overflow2) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? Int64.min : Int64.max }
        return sum
    }

    /// A duration of `nanoseconds`, rounded to the nearest nanosecond and clamped to `0...Int64.max` ns.
    static func duration(nanoseconds: Double) -> Duration {
        guard nanoseconds.isFinite else { return nanoseconds > 0 ? .nanoseconds(Int64.max) : .zero }
        if nanoseconds <= 0 { return .zero }
        if nanoseconds >= maximumNanoseconds { return .nanoseconds(Int64.max) }
        return .nanoseconds(Int64(nanoseconds.rounded()))
    }
}

extension Backoff: CustomStringConvertible {
    /// A short description, as `exponential(0.1 seconds, x2.0, max 2.0 seconds)`.
    public var description: String {
        switch self.kind {
        case .fixed(let delay):
            return "fixed(\(delay))"
        case .linear(let initial, let increment, let max):
            return "linear(\(initial), +\(increment)\(max.map { ", max \($0)" } ?? ""))"
        case .exponential(let initial, let multiplier, let max):
            return "exponential(\(initial), x\(multiplier), max \(max))"
        case .custom(let delays):
            return "custom(\(delays.map { "\($0)" }.joined(separator: ", ")))"
        }
    }
}
