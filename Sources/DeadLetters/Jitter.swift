/// How a backoff delay is spread at random, so that items that failed together do not all retry together.
///
/// The kinds are the formulas of AWS's "Exponential Backoff and Jitter", with `d` the backoff's delay:
/// - ``none``: `d`.
/// - ``full``: a uniform draw in `0...d`.
/// - ``equal``: `d/2` plus a uniform draw in `0...d/2`, so at least half the delay is kept.
/// - ``decorrelated(multiplier:)``: `min(cap, uniform(base...previous × 3))`, which grows from the previous
///   delay rather than from `d`.
///
/// Draws are whole nanoseconds from the generator passed in, so that a seeded generator gives exact delays.
/// `Jitter` is an extensible set: a struct with static members.
public struct Jitter: Sendable, Hashable {
    private enum Kind: Sendable, Hashable {
        case none
        case full
        case equal
        case decorrelated(multiplier: Double)
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// No jitter: the backoff's delay as it is.
    public static let none = Jitter(.none)

    /// Full jitter: a uniform draw between zero and the delay.
    public static let full = Jitter(.full)

    /// Equal jitter: half the delay, plus a uniform draw between zero and the other half.
    public static let equal = Jitter(.equal)

    /// Decorrelated jitter: `min(cap, uniform(base...previous × multiplier))`, where `previous` is the delay
    /// used last time (`base` the first time). It ignores the backoff's delay for the attempt and uses only
    /// its first delay (`base`) and its maximum (`cap`).
    /// - Parameter multiplier: how far above the previous delay a draw may reach (default 3, as AWS); finite
    ///   and at least 1.
    public static func decorrelated(multiplier: Double = 3) -> Jitter {
        Jitter(.decorrelated(multiplier: multiplier))
    }

    /// Spreads a delay.
    /// - Parameters:
    ///   - delay: the backoff's delay for this attempt (`d`).
    ///   - previous: the delay actually waited before the previous attempt, if any; read by
    ///     ``decorrelated(multiplier:)`` only, which takes `base` when it is `nil`.
    ///   - base: the backoff's first delay; read by ``decorrelated(multiplier:)`` only.
    ///   - cap: the longest delay; read by ``decorrelated(multiplier:)`` only (the other kinds never exceed
    ///     `delay`).
    ///   - rng: the random source, drawn from once per call except for ``none`` (never) and zero ranges.
    /// - Returns: the delay to wait, never negative.
    public func apply(
        to delay: Duration,
        previous: Duration?,
        base: Duration,
        cap: Duration,
        using rng: inout some RandomNumberGenerator
    ) -> Duration {
        let d = Swift.max(0, Backoff.wholeNanoseconds(delay))
        switch self.kind {
        case .none:
            return delay
        case .full:
            return .nanoseconds(Self.draw(0, d, using: &rng))
        case .equal:
            let half = d / 2
            return .nanoseconds(half + Self.draw(0, d - half, using: &rng))
        case .decorrelated(let multiplier):
            let base = Swift.max(0, Backoff.wholeNanoseconds(base))
            let cap = Swift.max(0, Backoff.wholeNanoseconds(cap))
            let previous = previous.map { Swift.max(0, Backoff.wholeNanoseconds($0)) } ?? base
            let reach = Double(previous) * multiplier
            let upper = reach.isFinite && reach < Backoff.maximumNanoseconds ? Int64(reach.rounded()) : Int64.max
            let drawn = Self.draw(base, upper, using: &rng)
            return .nanoseconds(Swift.min(cap, drawn))
        }
    }

    /// A uniform draw in `lower...upper`, or `lower` when the range holds one value or none (no draw then).
    private static func draw(_ lower: Int64, _ upper: Int64, using rng: inout some RandomNumberGenerator) -> Int64 {
        guard upper > lower else { return lower }
        return Int64.random(in: lower...upper, using: &rng)
    }

    /// Checks that the jitter's values are in range.
    /// - Throws: ``DeadLetterError`` with code ``DeadLetterError/Code/invalidConfiguration`` naming the value.
    public func validate() throws {
        try self.validate(named: "jitter")
    }

    func validate(named name: String) throws {
        if case .decorrelated(let multiplier) = self.kind, !(multiplier.isFinite && multiplier >= 1) {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "\(name) \(self): the multiplier must be finite and at least 1"
            )
        }
    }
}

extension Jitter: CustomStringConvertible {
    /// A short description: `none`, `full`, `equal` or `decorrelated(x3.0)`.
    public var description: String {
        switch self.kind {
        case .none: return "none"
        case .full: return "full"
        case .equal: return "equal"
        case .decorrelated(let multiplier): return "decorrelated(x\(multiplier))"
        }
    }
}
