public import CoreMetrics
public import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Stops calling a source that keeps failing, and tries it again after a pause.
///
/// The queue keeps one breaker per source. Before each call, ask ``tryAcquire()``; after it, record the
/// outcome with ``recordSuccess()`` or ``recordFailure()``:
///
/// ```swift
/// guard breaker.tryAcquire() else { return }  // open: skip the source for now
/// do {
///     try await handler(letter)
///     breaker.recordSuccess()
/// } catch {
///     breaker.recordFailure()
/// }
/// ```
///
/// The circuit is **closed** at first. It **opens** after ``CircuitBreakerConfiguration/consecutiveFailures``
/// failures in a row, or when the failure rate over the sliding window reaches
/// ``CircuitBreakerConfiguration/failureRateThreshold`` with at least
/// ``CircuitBreakerConfiguration/minimumCalls`` calls. Open, it refuses every call. Once
/// ``CircuitBreakerConfiguration/openDuration`` has passed it is **half-open**: it lets
/// ``CircuitBreakerConfiguration/halfOpenProbes`` calls through at a time, closes after
/// ``CircuitBreakerConfiguration/closeAfterSuccesses`` successes, and opens again at the first failure.
///
/// Outcomes recorded while open are ignored (they come from calls let through before it opened). While
/// half-open, every recorded outcome counts as a probe's.
///
/// Time comes only from the injected clock's `now()`. Every change of state is logged at `info` with the
/// metadata key `dlq.source`, recorded in the gauge `dlq_circuit_state{source}` (0 closed, 1 half-open,
/// 2 open) when a metrics factory is given, and passed to the `onStateChange` callback.
///
/// The breaker is safe to use from any task: its state sits behind a lock.
public final class CircuitBreaker: Sendable {
    /// The source this breaker guards.
    public let source: String
    /// The breaker's configuration.
    public let configuration: CircuitBreakerConfiguration

    private let clock: any DeadLetterClock
    private let logger: Logger
    private let gauge: Gauge?
    private let onStateChange: (@Sendable (_ from: CircuitState, _ to: CircuitState) -> Void)?
    private let machine: PThreadLock<StateMachine>

    /// Creates a closed breaker.
    /// - Parameters:
    ///   - source: the source it guards; the `source` dimension of its gauge and the `dlq.source` log metadata.
    ///   - configuration: when it opens and closes (default ``CircuitBreakerConfiguration/default``); validate it
    ///     first with ``CircuitBreakerConfiguration/validate()`` (out-of-range values are clamped here).
    ///   - clock: where the time comes from.
    ///   - logger: where state changes are logged, at `info`.
    ///   - metricsFactory: where the gauge `dlq_circuit_state` is created, if anywhere (default: none). It is
    ///     set to 0 (closed) at once.
    ///   - onStateChange: called after each change of state with the old and the new state (default: none).
    ///     It runs outside the breaker's lock, on the task that caused the change, so it may call the breaker.
    public init(
        source: String,
        configuration: CircuitBreakerConfiguration = .default,
        clock: any DeadLetterClock,
        logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil,
        onStateChange: (@Sendable (_ from: CircuitState, _ to: CircuitState) -> Void)? = nil
    ) {
        self.source = source
        self.configuration = configuration
        self.clock = clock
        var logger = logger
        logger[metadataKey: "dlq.source"] = "\(source)"
        self.logger = logger
        self.gauge = metricsFactory.map {
            Gauge(label: "dlq_circuit_state", dimensions: [("source", source)], factory: $0)
        }
        self.onStateChange = onStateChange
        self.machine = PThreadLock(StateMachine(configuration: configuration, now: clock.now()))
        self.gauge?.record(CircuitState.closed.metricValue)
    }

    /// The state now. Reading it moves an open circuit whose open duration is over to half-open.
    public var state: CircuitState {
        let now = self.clock.now()
        let (state, transition) = self.withMachine { $0.currentState(now: now) }
        self.report(transition)
        return state
    }

    /// Whether ``tryAcquire()`` would let a call through now, without taking a probe slot: `true` when closed,
    /// or half-open with a free slot. A queue reads it to decide whether to claim a source's letters at all.
    /// Reading it moves an open circuit whose open duration is over to half-open.
    public var allowsClaims: Bool {
        let now = self.clock.now()
        let (allowed, transition) = self.withMachine { $0.allowsCalls(now: now) }
        self.report(transition)
        return allowed
    }

    /// Whether a call may go through now: always when closed; never while open, until the open duration is
    /// over; while half-open, as long as fewer than ``CircuitBreakerConfiguration/halfOpenProbes`` probes are
    /// out. A `true` answer must be followed by ``recordSuccess()`` or ``recordFailure()``.
    public func tryAcquire() -> Bool {
        let now = self.clock.now()
        let (allowed, transition) = self.withMachine { $0.tryAcquire(now: now) }
        self.report(transition)
        return allowed
    }

    /// Records a call that succeeded.
    public func recordSuccess() {
        let now = self.clock.now()
        let transition = self.transition { $0.recordSuccess(now: now) }
        self.report(transition)
    }

    /// Records a call that failed.
    public func recordFailure() {
        let now = self.clock.now()
        let transition = self.transition { $0.recordFailure(now: now) }
        self.report(transition)
    }

    /// Runs `body` on the state machine under the lock, and sets the gauge there when the state changed, so
    /// that the gauge always ends at the latest state.
    private func withMachine<Result>(
        _ body: (inout StateMachine) -> (Result, Transition?)
    ) -> (Result, Transition?) {
        self.machine.withLock { machine in
            let (result, transition) = body(&machine)
            if let transition { self.gauge?.record(transition.to.metricValue) }
            return (result, transition)
        }
    }

    private func transition(_ body: (inout StateMachine) -> Transition?) -> Transition? {
        self.withMachine { machine in ((), body(&machine)) }.1
    }

    /// Logs a change of state and calls the callback, outside the lock.
    private func report(_ transition: Transition?) {
        guard let transition else { return }
        var metadata: Logger.Metadata = [
            "dlq.circuit.from": "\(transition.from)",
            "dlq.circuit.to": "\(transition.to)",
            "dlq.circuit.cause": "\(transition.cause.rawValue)",
        ]
        switch transition.cause {
        case .consecutiveFailures:
            metadata["dlq.circuit.failures"] = "\(transition.failures)"
        case .failureRate:
            metadata["dlq.circuit.failures"] = "\(transition.failures)"
            metadata["dlq.circuit.calls"] = "\(transition.calls)"
        case .openDurationElapsed, .probeFailed, .probesSucceeded:
            break
        }
        let message: Logger.Message
        switch transition.to {
        case .open: message = "Circuit opened"
        case .halfOpen: message = "Circuit half-open: letting probes through"
        case .closed: message = "Circuit closed"
        }
        self.logger.info(message, metadata: metadata)
        self.onStateChange?(transition.from, transition.to)
    }
}
