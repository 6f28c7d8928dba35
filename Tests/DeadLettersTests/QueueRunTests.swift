import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite("DeadLetterQueue.run")
struct QueueRunTests {
    @Test("delayed retries follow the backoff exactly, then the letter is marked dead")
    func delayedRetriesThenDead() async throws {
        let h = try QueueHarness(immediateAttempts: 1, delayedAttempts: 3)
        let calls = Shared<[Date]>([])
        let clock = h.clock
        h.queue.register(source: "orders") { _ in
            calls.withLock { $0.append(clock.now()) }
            throw TestFailure("still down")
        }
        var events = h.queue.events().makeAsyncIterator()
        let result = try await h.queue.process(payload: Data("p".utf8), source: "orders") { _ -> Void in
            throw TestFailure("down")
        }
        let id = try #require(result.deadLetterID)
        let start = ManualClock.defaultStart
        try await h.running {
            // Delayed attempt 1 is due 10 s after the failure; 2 at +20 s after that; 3 at +40 s.
            await h.clock.waitForSleepers(2)
            h.clock.advance(by: .seconds(10))
            let first = await events.next(.retried)
            #expect(first?.id == id)
            var letter = try #require(try await h.store.letter(id: id))
            #expect(letter.attempts == 2)
            #expect(letter.status == .retrying)
            #expect(letter.nextAttemptAt == start.addingTimeInterval(10 + 20))
            await h.clock.waitForSleepers(2)
            h.clock.advance(by: .seconds(20))
            _ = await events.next(.retried)
            letter = try #require(try await h.store.letter(id: id))
            #expect(letter.nextAttemptAt == start.addingTimeInterval(10 + 20 + 40))
            await h.clock.waitForSleepers(2)
            h.clock.advance(by: .seconds(40))
            let dead = await events.next(.dead)
            #expect(dead?.id == id)
            letter = try #require(try await h.store.letter(id: id))
            #expect(letter.status == .dead)
            #expect(letter.attempts == 4)
            #expect(letter.nextAttemptAt == nil)
            #expect(letter.errorMessage == "still down")
            #expect(letter.lastFailedAt == start.addingTimeInterval(70))
        }
        #expect(calls.withLock { $0 } == [10, 30, 70].map { start.addingTimeInterval($0) })
        #expect(
            h.metrics.counterValue(
                label: "dlq_retries_total",
                dimensions: [("source", "orders"), ("outcome", "rescheduled")]
            ) == 2
        )
        #expect(
            h.metrics.counterValue(
                label: "dlq_retries_total",
                dimensions: [("source", "orders"), ("outcome", "exhausted")]
            ) == 1
        )
    }

    @Test("a delayed retry that succeeds removes the letter")
    func delayedRetrySucceeds() async throws {
        let h = try QueueHarness(immediateAttempts: 1)
        let seen = Shared<[Data]>([])
        h.queue.register(source: "orders") { letter in seen.withLock { $0.append(letter.payload) } }
        var events = h.queue.events().makeAsyncIterator()
        _ = try await h.queue.process(payload: Data("p".utf8), source: "orders") { _ -> Void in
            throw TestFailure("down")
        }
        try await h.running {
            await h.clock.waitForSleepers(2)
            h.clock.advance(by: .seconds(10))
            _ = await events.next(.recovered)
        }
        #expect(seen.withLock { $0 } == [Data("p".utf8)])
        #expect(try await h.store.count(DeadLetterFilter()) == 0)
    }

    @Test("redrive hands dead letters to the handler now; failing again counts as a failed replay and parks")
    func redriveAndPark() async throws {
        let h = try QueueHarness(immediateAttempts: 1, delayedAttempts: 0) { $0.parkAfterFailedReplays = 2 }
        h.queue.register(source: "orders") { _ in throw TestFailure("nope") }
        let id = try await h.queue.add(payload: Data(), source: "orders", error: TestFailure("first"))
        var events = h.queue.events().makeAsyncIterator()
        try await h.running {
            #expect(try await h.queue.redrive(DeadLetterFilter(sources: ["orders"]), dryRun: true) == 1)
            #expect(try await h.queue.redrive(DeadLetterFilter(sources: ["orders"])) == 1)
            _ = await events.next(.dead)
            var letter = try #require(try await h.store.letter(id: id))
            #expect(letter.replayCount == 1)
            #expect(letter.status == .dead)
            #expect(letter.history.map(\.event) == [.failed, .redriven, .retried])
            #expect(letter.history.map(\.outcome) == [nil, nil, "failed"])
            #expect(letter.history[2].operation == letter.history[1].operation, "the attempt belongs to the redrive")
            #expect(try await h.queue.redrive() == 1)
            _ = await events.next(.parked)
            letter = try #require(try await h.store.letter(id: id))
            #expect(letter.status == .parked)
            #expect(letter.replayCount == 2)
            // Parked letters are left alone unless selected.
            #expect(try await h.queue.redrive() == 0)
            #expect(try await h.queue.redrive(DeadLetterFilter(statuses: [.parked]), dryRun: true) == 1)
        }
    }

    @Test("sources without a handler and open circuits are not claimed")
    func noHandlerNoClaim() async throws {
        let h = try QueueHarness(immediateAttempts: 1)
        _ = try await h.queue.process(payload: Data(), source: "unhandled") { _ -> Void in throw TestFailure("x") }
        try await h.running {
            await h.clock.waitForSleepers(2)
            h.clock.advance(by: .seconds(60))
            await h.clock.waitForSleepers(2)
        }
        let letter = try #require(try await h.store.letters().first { _ in true })
        #expect(letter.attempts == 1)
        #expect(letter.status == .retrying)
    }

    @Test("expired letters go to the archive on the cleanup loop")
    func expiry() async throws {
        let h = try QueueHarness { $0.timeToLive = .seconds(3600) }
        var events = h.queue.events().makeAsyncIterator()
        let old = try await h.queue.add(payload: Data(), source: "a", error: TestFailure("old"))
        h.clock.advance(by: .seconds(1800))
        let young = try await h.queue.add(payload: Data(), source: "a", error: TestFailure("young"))
        try await h.running {
            await h.clock.waitForSleepers(2)
            h.clock.advance(by: .seconds(1801))
            let expired = await events.next(.expired)
            #expect(expired?.count == 1)
        }
        #expect(h.archive.letters.map(\.id) == [old])
        #expect(h.archive.reasons == ["expired"])
        #expect(try await h.store.letters().map(\.id).reduce(into: []) { $0.append($1) } == [young])
        #expect(h.metrics.counterValue(label: "dlq_expired_total") == 1)
    }

    @Test("adds racing a graceful shutdown are all stored or refused, none lost")
    func shutdownWithRacingAdds() async throws {
        let h = try QueueHarness()
        let accepted = Shared<[String]>([])
        let refused = Shared(0)
        try await h.running {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<500 {
                    group.addTask {
                        do {
                            let id = try await h.queue.add(
                                payload: Data("\(index)".utf8),
                                source: "s",
                                error: TestFailure("e")
                            )
                            accepted.withLock { $0.append(id) }
                        } catch {
                            refused.withLock { $0 += 1 }
                        }
                    }
                }
            }
        }
        // Adds after run() returned are still stored.
        let late = try await h.queue.add(payload: Data(), source: "s", error: TestFailure("late"))
        let ids = accepted.withLock { $0 } + [late]
        let stored = try await h.store.letters().reduce(into: Set<String>()) { $0.insert($1.id) }
        #expect(refused.withLock { $0 } == 0)
        #expect(stored == Set(ids))
        #expect(stored.count == 501)
    }

    @Test("in-flight work past the grace period is cancelled and its letter stays in the store")
    func gracePeriod() async throws {
        let h = try QueueHarness(immediateAttempts: 1) { $0.shutdownGracePeriod = .seconds(5) }
        let started = Shared(false)
        h.queue.register(source: "slow") { _ in
            started.withLock { $0 = true }
            try await Task.sleep(for: .seconds(3600))
        }
        let result = try await h.queue.process(payload: Data(), source: "slow") { _ -> Void in throw TestFailure("x") }
        let id = try #require(result.deadLetterID)
        let group = ServiceGroupHandle(h)
        try await group.start()
        await h.clock.waitForSleepers(2)
        h.clock.advance(by: .seconds(10))
        while !started.withLock({ $0 }) { await Task.yield() }
        await group.shutdown()
        // Step the clock until the grace period is over and the queue has stopped; the grace timer may start
        // a moment after the shutdown, so one big step could come before it.
        var steps = 0
        while !group.finished, steps < 10_000 {
            h.clock.advance(by: .milliseconds(100))
            await Task.yield()
            steps += 1
        }
        try await group.wait()
        #expect(h.clock.now() >= ManualClock.defaultStart.addingTimeInterval(15))
        let letter = try #require(try await h.store.letter(id: id))
        #expect(letter.attempts == 1)
        // The lease was handed back: another claim can take it at once.
        let claimed = try await h.store.claim(
            ids: [id],
            now: h.clock.now(),
            owner: "other",
            leaseUntil: h.clock.now().addingTimeInterval(60)
        )
        #expect(claimed.map(\.id) == [id])
    }
}

/// Runs a queue's ServiceGroup in the background so a test can step through shutdown.
final class ServiceGroupHandle: Sendable {
    let group: ServiceGroup
    let task = Shared<Task<Void, any Error>?>(nil)

    init(_ harness: QueueHarness) {
        self.group = ServiceGroup(services: [harness.queue], logger: Logger(label: "test"))
    }

    let done = Shared(false)

    var finished: Bool { self.done.withLock { $0 } }

    func start() async throws {
        let group = self.group
        let done = self.done
        self.task.withLock {
            $0 = Task {
                defer { done.withLock { $0 = true } }
                try await group.run()
            }
        }
    }

    func shutdown() async { await self.group.triggerGracefulShutdown() }

    func wait() async throws { try await self.task.withLock { $0 }?.value }
}
