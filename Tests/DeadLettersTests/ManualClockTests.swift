import CoreMetrics
import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import Testing

@Suite("ManualClock")
struct ManualClockTests {
    @Test func startsAtTheGivenTimeAndAdvances() {
        let clock = ManualClock()
        #expect(clock.now() == Date(timeIntervalSince1970: 1_767_225_600))
        clock.advance(by: .milliseconds(1500))
        #expect(clock.now() == Date(timeIntervalSince1970: 1_767_225_601.5))
        clock.advance(by: .seconds(-10))
        #expect(clock.now() == Date(timeIntervalSince1970: 1_767_225_601.5), "the clock never goes back")
        let other = ManualClock(now: Date(timeIntervalSince1970: 10))
        other.advance(to: Date(timeIntervalSince1970: 25))
        #expect(other.now() == Date(timeIntervalSince1970: 25))
    }

    @Test func sleepEndsOnlyOnceTheDeadlinePasses() async throws {
        let clock = ManualClock()
        let sleeper = Task {
            try await clock.sleep(for: .seconds(5))
            return clock.now()
        }
        await clock.waitForSleepers(1)
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .milliseconds(4999))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .milliseconds(1))
        #expect(clock.sleeperCount == 0)
        let wokeAt = try await sleeper.value
        #expect(wokeAt == ManualClock.defaultStart.addingTimeInterval(5))
    }

    @Test func advanceWakesEverySleeperWhoseDeadlinePassed() async throws {
        let clock = ManualClock()
        try await withThrowingTaskGroup(of: Int.self) { group in
            for seconds in [3, 1, 2, 10] {
                group.addTask {
                    try await clock.sleep(for: .seconds(Int64(seconds)))
                    return seconds
                }
            }
            await clock.waitForSleepers(4)
            clock.advance(by: .seconds(1))
            #expect(try await group.next() == 1)
            #expect(clock.sleeperCount == 3)
            clock.advance(by: .seconds(2))
            let two = try await group.next()
            let three = try await group.next()
            #expect(Set([two, three]) == [2, 3])
            #expect(clock.sleeperCount == 1)
            clock.advance(by: .seconds(7))
            #expect(try await group.next() == 10)
        }
    }

    @Test func sleepFromTheNewTimeAfterAnAdvance() async throws {
        let clock = ManualClock()
        clock.advance(by: .seconds(100))
        let sleeper = Task { try await clock.sleep(for: .seconds(1)) }
        await clock.waitForSleepers(1)
        clock.advance(by: .milliseconds(999))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .milliseconds(1))
        try await sleeper.value
    }

    @Test func cancellationEndsASleepPromptly() async throws {
        let clock = ManualClock()
        let sleeper = Task { try await clock.sleep(for: .seconds(3600)) }
        await clock.waitForSleepers(1)
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleeperCount == 0)
        clock.advance(by: .seconds(7200))
        #expect(clock.sleeperCount == 0)
    }

    @Test func aCancelledTaskDoesNotSleep() async throws {
        let clock = ManualClock()
        let sleeper = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await clock.sleep(for: .seconds(1))
        }
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleeperCount == 0)
    }

    @Test func zeroDurationReturnsAtOnce() async throws {
        let clock = ManualClock()
        try await clock.sleep(for: .zero)
        try await clock.sleep(for: .seconds(-1))
        #expect(clock.sleeperCount == 0)
    }

    @Test func waitForSleepersReturnsAtOnceWhenEnoughSleep() async throws {
        let clock = ManualClock()
        await clock.waitForSleepers(0)
        let sleepers = (0..<3).map { _ in Task { try await clock.sleep(for: .seconds(1)) } }
        await clock.waitForSleepers(3)
        await clock.waitForSleepers(2)
        #expect(clock.sleeperCount == 3)
        clock.advance(by: .seconds(1))
        for sleeper in sleepers { try await sleeper.value }
    }

    @Test func aCancelledWaitForSleepersReturns() async {
        let clock = ManualClock()
        let waiter = Task { await clock.waitForSleepers(5) }
        waiter.cancel()
        await waiter.value
        #expect(clock.sleeperCount == 0)
    }
}

@Suite("ManualClock helpers")
struct ManualClockHelpersTests {
    @Test func seededRandomIsSplitMix64() {
        var random = SeededRandom(seed: 0)
        #expect(random.next() == 0xE220_A839_7B1D_CDAF)
        #expect(random.next() == 0x6E78_9E6A_A1B9_65F4)
        var a = SeededRandom(seed: 99)
        var b = SeededRandom(seed: 99)
        #expect((0..<10).map { _ in a.next() } == (0..<10).map { _ in b.next() })
    }

    @Test func fixtureLettersHaveIncreasingIdsAndDates() {
        let letters = DeadLetterFixtures.letters(count: 50, seed: 9)
        #expect(letters.map(\.id) == letters.map(\.id).sorted())
        #expect(Set(letters.map(\.id)).count == 50)
        #expect(letters[1].firstFailedAt.timeIntervalSince(letters[0].firstFailedAt) == 1)
        #expect(DeadLetterFixtures.letters(count: 50, seed: 9) == letters, "the same seed gives the same letters")
        let retrying = DeadLetterFixtures.letter(status: .retrying)
        #expect(retrying.nextAttemptAt == retrying.lastFailedAt)
        #expect(DeadLetterFixtures.letter().id != DeadLetterFixtures.letter().id)
    }

    @Test func testMetricsFactoryReadsValuesByLabelAndDimensions() {
        let metrics = TestMetricsFactory()
        let counter = Counter(
            label: "dlq_dead_letters_total",
            dimensions: [("source", "orders"), ("reason", "timeout")],
            factory: metrics
        )
        counter.increment(by: 3)
        counter.increment()
        Gauge(label: "dlq_depth", dimensions: [("source", "orders")], factory: metrics).record(42)
        #expect(
            metrics.counterValue(
                label: "dlq_dead_letters_total",
                dimensions: [("reason", "timeout"), ("source", "orders")]
            ) == 4
        )
        #expect(metrics.counterValue(label: "dlq_dead_letters_total", dimensions: [("source", "orders")]) == nil)
        #expect(metrics.gaugeValue(label: "dlq_depth", dimensions: [("source", "orders")]) == 42)
        #expect(metrics.gaugeValue(label: "dlq_depth") == nil)
    }

    @Test func inMemoryLoggerKeepsEntries() {
        let (logger, logs) = Logger.inMemory(level: .debug)
        logger.trace("not kept")
        logger.debug("kept", metadata: ["dlq.message.id": "abc"])
        #expect(logs.entries.count == 1)
        #expect(logs.entries.first?.message.description == "kept")
        #expect(logs.entries.first?.metadata["dlq.message.id"] == "abc")
    }
}
