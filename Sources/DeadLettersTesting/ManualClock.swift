public import DeadLetters

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A clock that moves only when a test advances it, so that time-dependent code is tested exactly and
/// without real sleeps.
///
/// ```swift
/// let clock = ManualClock()
/// async let woke: Void = clock.sleep(for: .seconds(5))
/// await clock.waitForSleepers(1)
/// clock.advance(by: .seconds(5))
/// try await woke
/// ```
///
/// `advance(by:)` moves the time in one step to the new instant and wakes every sleeper whose deadline is at
/// or before it, in deadline order (ties in the order they started sleeping). A sleeper that starts
/// sleeping afterwards measures its deadline from the new time.
public final class ManualClock: DeadLetterClock, Sendable {
    private struct Sleeper {
        var deadline: Date
        var sequence: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct Waiter {
        var count: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var now: Date
        var nextID: UInt64 = 0
        var sleepers: [UInt64: Sleeper] = [:]
        /// Sleeps cancelled before they registered their continuation.
        var cancelled: Set<UInt64> = []
        var waiters: [UInt64: Waiter] = [:]
        var cancelledWaiters: Set<UInt64> = []

        mutating func makeID() -> UInt64 {
            self.nextID += 1
            return self.nextID
        }

        /// Removes and returns the waiters satisfied by the current number of sleepers.
        mutating func satisfiedWaiters() -> [CheckedContinuation<Void, Never>] {
            let count = self.sleepers.count
            let ready = self.waiters.filter { $0.value.count <= count }
            for id in ready.keys { self.waiters[id] = nil }
            return ready.values.map(\.continuation)
        }
    }

    private let state: PThreadLock<State>

    /// The instant a new manual clock starts at by default: 2026-01-01T00:00:00Z.
    public static let defaultStart = Date(timeIntervalSince1970: 1_767_225_600)

    /// Creates a clock.
    /// - Parameter now: the time it starts at; 2026-01-01T00:00:00Z by default.
    public init(now: Date = ManualClock.defaultStart) {
        self.state = PThreadLock(State(now: now))
    }

    /// The clock's current time.
    public func now() -> Date {
        self.state.withLock { $0.now }
    }

    /// How many tasks are sleeping on this clock now.
    public var sleeperCount: Int {
        self.state.withLock { $0.sleepers.count }
    }

    /// Moves the time forward by `duration` and wakes every sleeper whose deadline has passed, in deadline
    /// order.
    /// - Parameter duration: how far to move; a negative duration does not move the clock back.
    public func advance(by duration: Duration) {
        let due: [Sleeper] = self.state.withLock { state in
            if duration > .zero { state.now = state.now.adding(duration) }
            return Self.takeDue(&state)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Moves the time forward to `date` (never back) and wakes every sleeper whose deadline has passed, in
    /// deadline order.
    public func advance(to date: Date) {
        let due: [Sleeper] = self.state.withLock { state in
            if date > state.now { state.now = date }
            return Self.takeDue(&state)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    private static func takeDue(_ state: inout State) -> [Sleeper] {
        let now = state.now
        let due = state.sleepers.values.filter { $0.deadline <= now }.sorted {
            ($0.deadline, $0.sequence) < ($1.deadline, $1.sequence)
        }
        for sleeper in due { state.sleepers[sleeper.sequence] = nil }
        return due
    }

    /// Suspends until the clock is advanced `duration` past the time of the call.
    ///
    /// A duration of zero or less returns at once.
    /// - Throws: `CancellationError` as soon as the calling task is cancelled.
    public func sleep(for duration: Duration) async throws {
        try await self.sleep { now in duration <= .zero ? nil : now.adding(duration) }
    }

    /// Suspends until the clock reaches `deadline`; returns at once when it already has.
    ///
    /// The deadline is compared with the clock's time under its lock, so a deadline the clock passes while the
    /// sleep begins is never missed.
    /// - Throws: `CancellationError` as soon as the calling task is cancelled.
    public func sleep(until deadline: Date) async throws {
        try await self.sleep { now in deadline <= now ? nil : deadline }
    }

    /// Sleeps until the deadline `deadlineAt(now)` gives, read under the lock; `nil` means due now.
    private func sleep(_ deadlineAt: @escaping @Sendable (Date) -> Date?) async throws {
        try Task.checkCancellation()
        let id = self.state.withLock { $0.makeID() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Outcome {
                    case sleeping([CheckedContinuation<Void, Never>])
                    case cancelled, due
                }
                let outcome: Outcome = self.state.withLock { state in
                    if state.cancelled.remove(id) != nil { return .cancelled }
                    guard let deadline = deadlineAt(state.now) else { return .due }
                    state.sleepers[id] = Sleeper(deadline: deadline, sequence: id, continuation: continuation)
                    return .sleeping(state.satisfiedWaiters())
                }
                switch outcome {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .due: continuation.resume()
                case .sleeping(let waiters): for waiter in waiters { waiter.resume() }
                }
            }
        } onCancel: {
            let sleeper: Sleeper? = self.state.withLock { state in
                if let sleeper = state.sleepers.removeValue(forKey: id) { return sleeper }
                state.cancelled.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        // A sleep that finished normally leaves no mark behind.
        self.state.withLock { _ = $0.cancelled.remove(id) }
    }

    /// Returns once at least `count` tasks are sleeping on this clock (or the calling task is cancelled).
    ///
    /// Use it to step time-dependent code deterministically: wait until the code under test sleeps, then
    /// advance.
    public func waitForSleepers(_ count: Int) async {
        let id = self.state.withLock { $0.makeID() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready: Bool = self.state.withLock { state in
                    if state.cancelledWaiters.remove(id) != nil || state.sleepers.count >= count { return true }
                    state.waiters[id] = Waiter(count: count, continuation: continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter: Waiter? = self.state.withLock { state in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelledWaiters.insert(id)
                return nil
            }
            waiter?.continuation.resume()
        }
        self.state.withLock { _ = $0.cancelledWaiters.remove(id) }
    }
}
