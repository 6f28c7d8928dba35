import CoreMetrics
import DeadLetters
import Logging
import Synchronization
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A clock whose time moves only when the test says so.
private final class StepClock: DeadLetterClock {
    private let current = Mutex(Date(timeIntervalSince1970: 1_800_000_000))

    func now() -> Date { self.current.withLock { $0 } }

    func sleep(for duration: Duration) async throws { self.advance(by: duration) }

    func advance(by duration: Duration) {
        self.current.withLock { $0 = $0.adding(duration) }
    }

    func goBack(by duration: Duration) {
        self.current.withLock { $0 = $0.adding(.zero - duration) }
    }
}

/// Keeps every log entry, for assertions.
private final class LogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let storage = Mutex<[Entry]>([])
    var entries: [Entry] { self.storage.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    func append(_ entry: Entry) { self.storage.withLock { $0.append(entry) } }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            self.recorder.append(
                Entry(
                    level: event.level,
                    message: event.message.description,
                    metadata: self.metadata.merging(event.metadata ?? [:]) { $1 }
                )
            )
        }
    }
}

/// A metrics factory that keeps the values recorded by each recorder, for assertions.
private final class MetricsRecorder: MetricsFactory, Sendable {
    final class Values: RecorderHandler, CounterHandler, TimerHandler, Sendable {
        let label: String
        let dimensions: [String]
        private let storage = Mutex<[Double]>([])
        var values: [Double] { self.storage.withLock { $0 } }

        init(label: String, dimensions: [(String, String)]) {
            self.label = label
            self.dimensions = dimensions.map { "\($0.0)=\($0.1)" }
        }

        func record(_ value: Int64) { self.storage.withLock { $0.append(Double(value)) } }
        func record(_ value: Double) { self.storage.withLock { $0.append(value) } }
        func increment(by amount: Int64) { self.record(amount) }
        func reset() {}
        func recordNanoseconds(_ duration: Int64) { self.record(duration) }
    }

    private let made = Mutex<[Values]>([])

    func recorder(_ label: String) -> [Values] { self.made.withLock { $0.filter { $0.label == label } } }

    private func make(_ label: String, _ dimensions: [(String, String)]) -> Values {
        let values = Values(label: label, dimensions: dimensions)
        self.made.withLock { $0.append(values) }
        return values
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        self.make(label, dimensions)
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        self.make(label, dimensions)
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { self.make(label, dimensions) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}

/// Records the state changes passed to the callback.
private final class ChangeRecorder: Sendable {
    private let storage = Mutex<[String]>([])
    var changes: [String] { self.storage.withLock { $0 } }
    func append(_ from: CircuitState, _ to: CircuitState) { self.storage.withLock { $0.append("\(from)->\(to)") } }
}

private func makeBreaker(
    _ configuration: CircuitBreakerConfiguration,
    clock: StepClock,
    logs: LogRecorder = LogRecorder(),
    metrics: MetricsRecorder? = nil,
    changes: ChangeRecorder? = nil
) -> CircuitBreaker {
    var onStateChange: (@Sendable (CircuitState, CircuitState) -> Void)?
    if let changes {
        onStateChange = { from, to in changes.append(from, to) }
    }
    return CircuitBreaker(
        source: "orders",
        configuration: configuration,
        clock: clock,
        logger: logs.logger,
        metricsFactory: metrics,
        onStateChange: onStateChange
    )
}

/// Only the consecutive-failure rule, 3 failures, open for 30 s.
private let consecutiveOnly = CircuitBreakerConfiguration(
    consecutiveFailures: 3,
    failureRateThreshold: nil,
    openDuration: .seconds(30)
)

@Suite("Circuit breaker")
struct CircuitBreakerTests {
    @Test func opensAfterNConsecutiveFailuresAndASuccessResetsTheCount() {
        let clock = StepClock()
        let breaker = makeBreaker(consecutiveOnly, clock: clock)
        #expect(breaker.state == .closed)
        breaker.recordFailure()
        breaker.recordFailure()
        breaker.recordSuccess()
        breaker.recordFailure()
        breaker.recordFailure()
        #expect(breaker.state == .closed)
        #expect(breaker.tryAcquire())
        breaker.recordFailure()
        #expect(breaker.state == .open)
    }

    @Test func openRejectsUntilTheOpenDurationHasPassed() {
        let clock = StepClock()
        let breaker = makeBreaker(consecutiveOnly, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        #expect(!breaker.tryAcquire())
        #expect(!breaker.allowsClaims)
        clock.advance(by: .seconds(30) - .milliseconds(1))
        #expect(!breaker.tryAcquire())
        #expect(breaker.state == .open)
        clock.advance(by: .milliseconds(1))
        #expect(breaker.state == .halfOpen)
    }

    @Test func outcomesRecordedWhileOpenAreIgnored() {
        let clock = StepClock()
        let breaker = makeBreaker(consecutiveOnly, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        for _ in 0..<10 { breaker.recordSuccess() }
        #expect(breaker.state == .open)
        breaker.recordFailure()
        clock.advance(by: .seconds(30))
        #expect(breaker.state == .halfOpen)
    }

    @Test(arguments: [1, 2, 5])
    func halfOpenLetsExactlyMProbesThrough(probes: Int) {
        let clock = StepClock()
        var configuration = consecutiveOnly
        configuration.halfOpenProbes = probes
        configuration.closeAfterSuccesses = probes + 1
        let breaker = makeBreaker(configuration, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        clock.advance(by: .seconds(30))
        #expect(breaker.allowsClaims)
        for _ in 0..<probes { #expect(breaker.tryAcquire()) }
        #expect(!breaker.tryAcquire())
        #expect(!breaker.allowsClaims)
        #expect(breaker.state == .halfOpen)
        // A successful probe frees its slot (the circuit needs one more success than there are slots).
        breaker.recordSuccess()
        #expect(breaker.state == .halfOpen)
        #expect(breaker.tryAcquire())
        #expect(!breaker.tryAcquire())
    }

    @Test func closesAfterKSuccessfulProbes() {
        let clock = StepClock()
        var configuration = consecutiveOnly
        configuration.closeAfterSuccesses = 3
        let breaker = makeBreaker(configuration, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        clock.advance(by: .seconds(30))
        for round in 1...3 {
            #expect(breaker.tryAcquire())
            #expect(!breaker.tryAcquire())
            breaker.recordSuccess()
            #expect(breaker.state == (round < 3 ? .halfOpen : .closed))
        }
        // Closed again: calls go through, and the failure count starts from zero.
        #expect(breaker.tryAcquire())
        #expect(breaker.tryAcquire())
        breaker.recordFailure()
        breaker.recordFailure()
        #expect(breaker.state == .closed)
        breaker.recordFailure()
        #expect(breaker.state == .open)
    }

    @Test func aFailedProbeReopensForAnotherFullDuration() {
        let clock = StepClock()
        var configuration = consecutiveOnly
        configuration.halfOpenProbes = 2
        configuration.closeAfterSuccesses = 2
        let breaker = makeBreaker(configuration, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        clock.advance(by: .seconds(30))
        #expect(breaker.tryAcquire())
        #expect(breaker.tryAcquire())
        breaker.recordSuccess()
        breaker.recordFailure()
        #expect(breaker.state == .open)
        #expect(!breaker.tryAcquire())
        clock.advance(by: .seconds(30) - .milliseconds(1))
        #expect(!breaker.tryAcquire())
        clock.advance(by: .milliseconds(1))
        #expect(breaker.tryAcquire())
        #expect(breaker.tryAcquire())
        #expect(!breaker.tryAcquire())
    }

    @Test func failureRateOpensOnlyOnceTheWindowHoldsTheMinimumCalls() {
        let clock = StepClock()
        let configuration = CircuitBreakerConfiguration(
            consecutiveFailures: 0,
            failureRateThreshold: 0.5,
            window: .seconds(60),
            minimumCalls: 10
        )
        let breaker = makeBreaker(configuration, clock: clock)
        // 9 calls, 6 failures (67%): too few calls to judge.
        for failed in [true, true, false, true, true, false, true, false, true] {
            if failed { breaker.recordFailure() } else { breaker.recordSuccess() }
            clock.advance(by: .seconds(1))
        }
        #expect(breaker.state == .closed)
        // The tenth call, a failure: 7 of 10.
        breaker.recordFailure()
        #expect(breaker.state == .open)
    }

    @Test func aRateBelowTheThresholdKeepsTheCircuitClosed() {
        let clock = StepClock()
        let configuration = CircuitBreakerConfiguration(
            consecutiveFailures: 0,
            failureRateThreshold: 0.5,
            minimumCalls: 10
        )
        let breaker = makeBreaker(configuration, clock: clock)
        // 4 failures in 10 (40%), then 5 in 11 (45%); then 6 in 12 (50%) opens it.
        for failed in [true, false, true, false, false, true, false, true, false, false, true] {
            if failed { breaker.recordFailure() } else { breaker.recordSuccess() }
        }
        #expect(breaker.state == .closed)
        breaker.recordFailure()
        #expect(breaker.state == .open)
    }

    @Test func callsLeaveTheWindowWhenItHasPassed() {
        let clock = StepClock()
        let configuration = CircuitBreakerConfiguration(
            consecutiveFailures: 0,
            failureRateThreshold: 0.5,
            window: .seconds(60),
            minimumCalls: 4
        )
        let breaker = makeBreaker(configuration, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        // A whole window later the three failures are gone: 1 failure in 4 calls (25%) keeps it closed.
        clock.advance(by: .seconds(60))
        for _ in 0..<3 { breaker.recordSuccess() }
        breaker.recordFailure()
        #expect(breaker.state == .closed)
    }

    @Test func callsStillInTheWindowCount() {
        let clock = StepClock()
        let configuration = CircuitBreakerConfiguration(
            consecutiveFailures: 0,
            failureRateThreshold: 0.5,
            window: .seconds(60),
            minimumCalls: 4
        )
        let breaker = makeBreaker(configuration, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        // 54 s later (the last tenth of the window) they still count: 4 failures in 7 calls (57%).
        clock.advance(by: .seconds(54))
        for _ in 0..<3 { breaker.recordSuccess() }
        breaker.recordFailure()
        #expect(breaker.state == .open)
    }

    @Test func theWallClockGoingBackDoesNotKeepTheCircuitOpenLonger() {
        let clock = StepClock()
        let breaker = makeBreaker(consecutiveOnly, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        clock.goBack(by: .seconds(3600))
        #expect(breaker.state == .open)
        clock.advance(by: .seconds(30))
        #expect(breaker.state == .halfOpen)
    }

    @Test func stateChangesAreLoggedExportedAndReported() throws {
        let clock = StepClock()
        let logs = LogRecorder()
        let metrics = MetricsRecorder()
        let changes = ChangeRecorder()
        let breaker = makeBreaker(consecutiveOnly, clock: clock, logs: logs, metrics: metrics, changes: changes)
        let gauges = metrics.recorder("dlq_circuit_state")
        try #require(gauges.count == 1)
        #expect(gauges[0].dimensions == ["source=orders"])
        #expect(gauges[0].values == [0])

        for _ in 0..<3 { breaker.recordFailure() }
        clock.advance(by: .seconds(30))
        #expect(breaker.tryAcquire())
        breaker.recordFailure()
        clock.advance(by: .seconds(30))
        #expect(breaker.tryAcquire())
        breaker.recordSuccess()

        #expect(gauges[0].values == [0, 2, 1, 2, 1, 0])
        #expect(
            changes.changes == [
                "closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed",
            ]
        )
        let entries = logs.entries
        #expect(entries.count == 5)
        #expect(entries.allSatisfy { $0.level == .info && $0.metadata["dlq.source"] == "orders" })
        #expect(
            entries.map { $0.metadata["dlq.circuit.to"]?.description } == [
                "open", "half-open", "open", "half-open", "closed",
            ]
        )
        #expect(entries[0].metadata["dlq.circuit.cause"] == "consecutive-failures")
        #expect(entries[0].metadata["dlq.circuit.failures"] == "3")
        #expect(entries[2].metadata["dlq.circuit.cause"] == "probe-failed")
    }

    @Test func theRateRuleLogsItsCounts() {
        let clock = StepClock()
        let logs = LogRecorder()
        let configuration = CircuitBreakerConfiguration(
            consecutiveFailures: 0,
            failureRateThreshold: 1,
            minimumCalls: 2
        )
        let breaker = makeBreaker(configuration, clock: clock, logs: logs)
        breaker.recordFailure()
        breaker.recordFailure()
        #expect(breaker.state == .open)
        #expect(logs.entries.count == 1)
        #expect(logs.entries.first?.metadata["dlq.circuit.cause"] == "failure-rate")
        #expect(logs.entries.first?.metadata["dlq.circuit.calls"] == "2")
        #expect(logs.entries.first?.metadata["dlq.circuit.failures"] == "2")
    }

    @Test func concurrentCallersGetExactlyMProbes() async {
        let clock = StepClock()
        var configuration = consecutiveOnly
        configuration.halfOpenProbes = 3
        let breaker = makeBreaker(configuration, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        clock.advance(by: .seconds(30))
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<200 { group.addTask { breaker.tryAcquire() } }
            var count = 0
            for await allowed in group where allowed { count += 1 }
            return count
        }
        #expect(admitted == 3)
    }

    @Test func stateValuesForTheGauge() {
        #expect(CircuitState.allCases.map(\.metricValue) == [0, 1, 2])
        #expect(CircuitState.allCases.map(\.rawValue) == ["closed", "half-open", "open"])
    }

    // MARK: Configuration

    @Test func defaultConfiguration() throws {
        let configuration = CircuitBreakerConfiguration.default
        #expect(configuration.consecutiveFailures == 5)
        #expect(configuration.failureRateThreshold == 0.5)
        #expect(configuration.window == .seconds(60))
        #expect(configuration.minimumCalls == 20)
        #expect(configuration.openDuration == .seconds(30))
        #expect(configuration.halfOpenProbes == 1)
        #expect(configuration.closeAfterSuccesses == 1)
        try configuration.validate()
        try CircuitBreakerConfiguration(consecutiveFailures: 0, failureRateThreshold: nil, window: .zero).validate()
        try CircuitBreakerConfiguration(failureRateThreshold: 1, openDuration: .zero).validate()
    }

    @Test(arguments: [
        (CircuitBreakerConfiguration(consecutiveFailures: -1), "consecutiveFailures"),
        (CircuitBreakerConfiguration(failureRateThreshold: 0), "failureRateThreshold"),
        (CircuitBreakerConfiguration(failureRateThreshold: 1.5), "failureRateThreshold"),
        (CircuitBreakerConfiguration(failureRateThreshold: .nan), "failureRateThreshold"),
        (CircuitBreakerConfiguration(window: .zero), "window"),
        (CircuitBreakerConfiguration(window: .seconds(-1)), "window"),
        (CircuitBreakerConfiguration(minimumCalls: 0), "minimumCalls"),
        (CircuitBreakerConfiguration(openDuration: .seconds(-1)), "openDuration"),
        (CircuitBreakerConfiguration(halfOpenProbes: 0), "halfOpenProbes"),
        (CircuitBreakerConfiguration(closeAfterSuccesses: 0), "closeAfterSuccesses"),
    ])
    func invalidConfigurationsAreRejectedNamingTheField(configuration: CircuitBreakerConfiguration, field: String) {
        let error = #expect(throws: DeadLetterError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("CircuitBreakerConfiguration.\(field)") == true)
    }
}
