import DeadLetters
import Logging
import Testing

private func makeBreaker(
    _ configuration: CircuitBreakerConfiguration,
    clock: BreakerTestClock,
    logs: BreakerLogRecorder = BreakerLogRecorder(),
    metrics: BreakerMetricsRecorder? = nil,
    changes: BreakerChangeRecorder? = nil
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
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
        let clock = BreakerTestClock()
        let breaker = makeBreaker(consecutiveOnly, clock: clock)
        for _ in 0..<3 { breaker.recordFailure() }
        clock.goBack(by: .seconds(3600))
        #expect(breaker.state == .open)
        clock.advance(by: .seconds(30))
        #expect(breaker.state == .halfOpen)
    }

    @Test func stateChangesAreLoggedExportedAndReported() throws {
        let clock = BreakerTestClock()
        let logs = BreakerLogRecorder()
        let metrics = BreakerMetricsRecorder()
        let changes = BreakerChangeRecorder()
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
        let clock = BreakerTestClock()
        let logs = BreakerLogRecorder()
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
        let clock = BreakerTestClock()
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
