#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Where the queue reads the time and waits: injected, so that retries, expiry and backoff are tested
/// exactly without sleeping.
///
/// `now()` is wall-clock time, used for stored timestamps and due times; `sleep(for:)` waits on the same
/// clock. `DeadLettersTesting` ships a manual clock.
public protocol DeadLetterClock: Sendable {
    /// The current wall-clock time.
    func now() -> Date
    /// Waits for `duration` on this clock.
    /// - Throws: `CancellationError` when the task is cancelled while waiting.
    func sleep(for duration: Duration) async throws
    /// Waits until `deadline` on this clock; returns at once when it has passed.
    ///
    /// The default implementation sleeps for the time left by ``now()``; a clock that can, implements it
    /// atomically, so that a deadline that passes while the sleep begins is never missed.
    /// - Throws: `CancellationError` when the task is cancelled while waiting.
    func sleep(until deadline: Date) async throws
}

extension DeadLetterClock {
    public func sleep(until deadline: Date) async throws {
        let left = deadline.timeIntervalSince(self.now())
        guard left > 0 else { return }
        try await self.sleep(for: .nanoseconds(Int64((left * 1e9).rounded(.up))))
    }
}

/// The system's clock: `Date()` for the time and `ContinuousClock` for waiting.
public struct SystemDeadLetterClock: DeadLetterClock {
    /// Creates the system clock.
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(for duration: Duration) async throws {
        try await ContinuousClock().sleep(for: duration)
    }
}

extension DeadLetterClock where Self == SystemDeadLetterClock {
    /// The system's clock.
    public static var system: SystemDeadLetterClock { SystemDeadLetterClock() }
}

extension Date {
    /// The date `duration` later.
    public func adding(_ duration: Duration) -> Date {
        let (seconds, attoseconds) = duration.components
        return self.addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
