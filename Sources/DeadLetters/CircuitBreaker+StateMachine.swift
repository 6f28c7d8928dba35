#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension CircuitBreaker {
    /// Why the circuit changed state.
    enum Cause: String, Sendable, Hashable {
        case consecutiveFailures = "consecutive-failures"
        case failureRate = "failure-rate"
        case openDurationElapsed = "open-duration-elapsed"
        case probeFailed = "probe-failed"
        case probesSucceeded = "probes-succeeded"
    }

    /// A change of state the breaker must report (log, gauge, callback).
    struct Transition: Sendable, Hashable {
        var from: CircuitState
        var to: CircuitState
        var cause: Cause
        /// Calls and failures in the window when the failure-rate rule opened the circuit, or failures in a row
        /// when the consecutive rule did; zero otherwise.
        var calls: Int = 0
        var failures: Int = 0
    }

    /// The breaker's logic as a value: it reads the time it is given and returns the transitions to report.
    /// `CircuitBreaker` keeps it behind a lock.
    struct StateMachine: Sendable {
        enum State: Sendable, Hashable {
            case closed(consecutiveFailures: Int)
            case open(since: Date)
            case halfOpen(inFlight: Int, successes: Int)
        }

        private let consecutiveLimit: Int
        private let rateThreshold: Double?
        private let minimumCalls: Int
        private let openSeconds: Double
        private let probes: Int
        private let successesToClose: Int
        private(set) var state: State = .closed(consecutiveFailures: 0)
        private var window: Window

        init(configuration: CircuitBreakerConfiguration, now: Date) {
            // Out-of-range values are clamped so that an unvalidated configuration still behaves sanely.
            self.consecutiveLimit = max(0, configuration.consecutiveFailures)
            self.rateThreshold = configuration.failureRateThreshold
            self.minimumCalls = max(1, configuration.minimumCalls)
            self.openSeconds = max(0, configuration.openDuration.seconds)
            self.probes = max(1, configuration.halfOpenProbes)
            self.successesToClose = max(1, configuration.closeAfterSuccesses)
            self.window = Window(length: configuration.window, epoch: now)
        }

        /// The public state at `now`, moving from open to half-open when the open duration is over.
        mutating func currentState(now: Date) -> (CircuitState, Transition?) {
            let transition = self.openToHalfOpenIfDue(now: now)
            switch self.state {
            case .closed: return (.closed, transition)
            case .open: return (.open, transition)
            case .halfOpen: return (.halfOpen, transition)
            }
        }

        /// Whether ``tryAcquire(now:)`` would let a call through at `now`, without taking a probe slot.
        mutating func allowsCalls(now: Date) -> (Bool, Transition?) {
            let transition = self.openToHalfOpenIfDue(now: now)
            switch self.state {
            case .closed: return (true, transition)
            case .open: return (false, transition)
            case .halfOpen(let inFlight, _): return (inFlight < self.probes, transition)
            }
        }

        /// Whether a call may go through at `now`: always when closed, never while open, and while half-open
        /// as long as fewer than `halfOpenProbes` probes are out.
        mutating func tryAcquire(now: Date) -> (Bool, Transition?) {
            let transition = self.openToHalfOpenIfDue(now: now)
            switch self.state {
            case .closed:
                return (true, transition)
            case .open:
                return (false, transition)
            case .halfOpen(let inFlight, let successes):
                guard inFlight < self.probes else { return (false, transition) }
                self.state = .halfOpen(inFlight: inFlight + 1, successes: successes)
                return (true, transition)
            }
        }

        /// Records a successful call.
        mutating func recordSuccess(now: Date) -> Transition? {
            switch self.state {
            case .closed:
                self.state = .closed(consecutiveFailures: 0)
                self.window.record(failure: false, at: now)
                return nil
            case .open:
                // A call let through before the circuit opened: it says nothing about the probes.
                return nil
            case .halfOpen(let inFlight, let successes):
                let successes = successes + 1
                guard successes >= self.successesToClose else {
                    self.state = .halfOpen(inFlight: max(0, inFlight - 1), successes: successes)
                    return nil
                }
                self.state = .closed(consecutiveFailures: 0)
                self.window.reset(at: now)
                return Transition(from: .halfOpen, to: .closed, cause: .probesSucceeded)
            }
        }

        /// Records a failed call.
        mutating func recordFailure(now: Date) -> Transition? {
            switch self.state {
            case .closed(let consecutive):
                let consecutive = consecutive + 1
                self.window.record(failure: true, at: now)
                if self.consecutiveLimit > 0, consecutive >= self.consecutiveLimit {
                    self.open(at: now)
                    return Transition(from: .closed, to: .open, cause: .consecutiveFailures, failures: consecutive)
                }
                if let threshold = self.rateThreshold {
                    let (calls, failures) = self.window.totals(at: now)
                    if calls >= self.minimumCalls, Double(failures) >= threshold * Double(calls) {
                        self.open(at: now)
                        return Transition(
                            from: .closed,
                            to: .open,
                            cause: .failureRate,
                            calls: calls,
                            failures: failures
                        )
                    }
                }
                self.state = .closed(consecutiveFailures: consecutive)
                return nil
            case .open:
                return nil
            case .halfOpen:
                self.open(at: now)
                return Transition(from: .halfOpen, to: .open, cause: .probeFailed)
            }
        }

        private mutating func open(at now: Date) {
            self.state = .open(since: now)
            self.window.reset(at: now)
        }

        private mutating func openToHalfOpenIfDue(now: Date) -> Transition? {
            guard case .open(let since) = self.state else { return nil }
            let elapsed = now.timeIntervalSince(since)
            if elapsed < 0 {
                // The wall clock went back: count the open duration from now rather than from the future.
                self.state = .open(since: now)
                return nil
            }
            guard elapsed >= self.openSeconds else { return nil }
            self.state = .halfOpen(inFlight: 0, successes: 0)
            return Transition(from: .open, to: .halfOpen, cause: .openDurationElapsed)
        }
    }

    /// Calls and failures over a sliding window, in ten buckets so that memory does not grow with the rate of
    /// calls. Bucket `k` holds the calls made in `[epoch + k·w, epoch + (k+1)·w)`, with `w` a tenth of the
    /// window; the window at time `t` is the bucket of `t` and the nine before it.
    struct Window: Sendable {
        private struct Bucket: Sendable {
            var index: Int64 = -1
            var calls = 0
            var failures = 0
        }

        static let bucketCount = 10

        private let bucketSeconds: Double
        private let epoch: Date
        private var latest: Int64 = 0
        private var buckets: [Bucket]

        init(length: Duration, epoch: Date) {
            self.bucketSeconds = max(length.seconds, 1e-9) / Double(Self.bucketCount)
            self.epoch = epoch
            self.buckets = Array(repeating: Bucket(), count: Self.bucketCount)
        }

        /// The bucket index of `date`, never before the latest index seen (the wall clock may go back).
        private mutating func index(at date: Date) -> Int64 {
            let steps = (date.timeIntervalSince(self.epoch) / self.bucketSeconds).rounded(.down)
            let index = steps.isFinite && steps < 9e18 ? Int64(max(0, steps)) : Int64.max / 2
            self.latest = max(self.latest, index)
            return self.latest
        }

        mutating func record(failure: Bool, at date: Date) {
            let index = self.index(at: date)
            let slot = Int(index % Int64(Self.bucketCount))
            if self.buckets[slot].index != index {
                self.buckets[slot] = Bucket(index: index)
            }
            self.buckets[slot].calls += 1
            if failure { self.buckets[slot].failures += 1 }
        }

        mutating func totals(at date: Date) -> (calls: Int, failures: Int) {
            let index = self.index(at: date)
            var calls = 0
            var failures = 0
            for bucket in self.buckets where bucket.index >= 0 && index - bucket.index < Int64(Self.bucketCount) {
                calls += bucket.calls
                failures += bucket.failures
            }
            return (calls, failures)
        }

        /// Forgets every call.
        mutating func reset(at date: Date) {
            _ = self.index(at: date)
            self.buckets = Array(repeating: Bucket(), count: Self.bucketCount)
        }
    }
}
