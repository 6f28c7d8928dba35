import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite("DeadLetterQueue.replay")
struct QueueReplayTests {
    /// A harness holding `count` dead letters of source "orders".
    func seeded(
        _ count: Int,
        configure: (inout DeadLetterQueue.Configuration) -> Void = { _ in }
    ) async throws -> (
        QueueHarness, [String]
    ) {
        let h = try QueueHarness(configure: configure)
        var ids: [String] = []
        for index in 0..<count {
            ids.append(
                try await h.queue.add(payload: Data("\(index)".utf8), source: "orders", error: TestFailure("old"))
            )
            h.clock.advance(by: .milliseconds(1))
        }
        return (h, ids)
    }

    @Test("a dry run counts and samples without running anything")
    func dryRun() async throws {
        let (h, ids) = try await seeded(8)
        let calls = Shared(0)
        let report = try await h.queue.replay(options: ReplayOptions(dryRun: true, sampleSize: 3)) { _ in
            calls.withLock { $0 += 1 }
        }
        #expect(report.dryRun)
        #expect(report.matched == 8)
        #expect(report.sample.map(\.id) == Array(ids.prefix(3)))
        #expect(calls.withLock { $0 } == 0)
        #expect(try await h.queue.count() == 8)
    }

    @Test("a success removes the letter; keepOnSuccess keeps it with a history entry")
    func successRemovesOrKeeps() async throws {
        let (h, ids) = try await seeded(4)
        let first = try await h.queue.replay(DeadLetterFilter(ids: Array(ids.prefix(2)))) { _ in }
        #expect(first.matched == 2)
        #expect(first.succeeded == 2)
        #expect(try await h.queue.letters().letters.map(\.id) == Array(ids.suffix(2)))
        let kept = try await h.queue.replay(
            DeadLetterFilter(ids: [ids[2]]),
            options: ReplayOptions(keepOnSuccess: true)
        ) {
            _ in
        }
        #expect(kept.succeeded == 1)
        let letter = try #require(try await h.queue.letter(id: ids[2]))
        #expect(letter.history.map(\.outcome) == [nil, "succeeded"])
        #expect(letter.history.map(\.event) == [.failed, .replayed])
        #expect(
            h.metrics.counterValue(
                label: "dlq_replays_total",
                dimensions: [("source", "orders"), ("outcome", "success")]
            ) == 3
        )
    }

    @Test("a failure records the new error and counts the replay; the third failure parks the letter")
    func failureRecordsAndParks() async throws {
        let (h, ids) = try await seeded(1)
        for round in 1...3 {
            h.clock.advance(by: .seconds(60))
            let report = try await h.queue.replay { _ in throw TestFailure("still broken \(round)") }
            #expect(report.failed == 1)
            let letter = try #require(try await h.queue.letter(id: ids[0]))
            #expect(letter.replayCount == round)
            #expect(letter.errorMessage == "still broken \(round)")
            #expect(letter.attempts == 1 + round)
            #expect(letter.lastFailedAt.millisecondsSince1970 == h.clock.now().millisecondsSince1970)
            // The first failure, a replayed entry per round, and a parked entry at the third.
            #expect(letter.history.count == 1 + round + (round == 3 ? 1 : 0))
            #expect(letter.history[0].errorMessage != letter.errorMessage, "the first failure is kept")
            #expect(letter.status == (round == 3 ? .parked : .dead))
            #expect(report.parked == (round == 3 ? 1 : 0))
        }
        // A parked letter is left alone unless the filter selects parked letters.
        let skipped = try await h.queue.replay { _ in }
        #expect(skipped.matched == 0)
        let selected = try await h.queue.replay(DeadLetterFilter(statuses: [.parked])) { _ in }
        #expect(selected.succeeded == 1)
    }

    @Test("the replay's circuit stops it after too many failures in a row")
    func circuitStopsFailingReplay() async throws {
        let (h, _) = try await seeded(20)
        let calls = Shared(0)
        let report = try await h.queue.replay(options: ReplayOptions(maxConsecutiveFailures: 4)) { _ in
            calls.withLock { $0 += 1 }
            throw TestFailure("downstream still down")
        }
        #expect(report.stoppedByCircuit)
        #expect(report.failed == 4)
        #expect(report.skipped == 16)
        #expect(report.matched == 20)
        #expect(calls.withLock { $0 } == 4)
        // The skipped letters were handed back, untouched and claimable.
        #expect(try await h.queue.count(DeadLetterFilter(minAttempts: 2)) == 4)
    }

    @Test("the rate limit spaces the starts exactly on the clock")
    func rateLimit() async throws {
        let (h, _) = try await seeded(5)
        let starts = Shared<[Date]>([])
        let clock = h.clock
        let replay = Task {
            try await h.queue.replay(options: ReplayOptions(rate: 10)) { _ in
                starts.withLock { $0.append(clock.now()) }
            }
        }
        for _ in 0..<4 {
            await h.clock.waitForSleepers(2)  // the rate limiter and the operation's heartbeat
            h.clock.advance(by: .milliseconds(100))
        }
        let report = try await replay.value
        #expect(report.succeeded == 5)
        let t0 = try #require(starts.withLock { $0.first })
        let offsets = starts.withLock { $0 }.map { ($0.timeIntervalSince(t0) * 1000).rounded() }
        #expect(offsets == [0, 100, 200, 300, 400])
    }

    @Test("a limit of 0 runs nothing")
    func limitZero() async throws {
        let (h, _) = try await seeded(3)
        let calls = Shared(0)
        let report = try await h.queue.replay(options: ReplayOptions(limit: 0)) { _ in calls.withLock { $0 += 1 } }
        #expect(report.matched == 0)
        #expect(report.succeeded == 0)
        #expect(calls.withLock { $0 } == 0)
        #expect(try await h.queue.count() == 3)
    }

    @Test("with a slow rate, a replay leases no more than half a lease's worth of letters ahead")
    func slowRateClaimsLittleAhead() async throws {
        let (h, ids) = try await seeded(6) { $0.leaseDuration = .seconds(4) }
        let started = Shared<[String]>([])
        let replay = Task {
            try await h.queue.replay(options: ReplayOptions(rate: 1)) { letter in
                started.withLock { $0.append(letter.id) }
            }
        }
        // The first letter started; the replay waits a second for the second one, which it has claimed.
        await h.clock.waitForSleepers(2)  // the rate limiter and the operation's heartbeat
        let now = h.clock.now()
        let taken = try await h.store.claim(ids: ids, now: now, owner: "other", leaseUntil: now.addingTimeInterval(600))
        #expect(taken.map(\.id) == Array(ids.suffix(4)), "1 letter per second × 4 s lease / 2 = pages of 2")
        h.clock.advance(by: .seconds(1))
        let report = try await replay.value
        #expect(started.withLock { $0 } == Array(ids.prefix(2)))
        #expect(report.succeeded == 2)
        #expect(report.skipped == 4)
    }

    @Test("a letter whose lease was taken over before its outcome was written counts as skipped, not succeeded")
    func lostLeaseCountsAsSkipped() async throws {
        let (h, ids) = try await seeded(2) { $0.leaseDuration = .seconds(10) }
        let first = ids[0]
        let report = try await h.queue.replay(options: ReplayOptions(concurrency: 1)) { letter in
            guard letter.id == first else { return }
            // The handler outlives its lease, and another worker takes the letter meanwhile.
            h.clock.advance(by: .seconds(11))
            let now = h.clock.now()
            _ = try await h.store.claim(ids: [first], now: now, owner: "other", leaseUntil: now.addingTimeInterval(60))
        }
        #expect(report.succeeded == 1)
        #expect(report.skipped == 1)
        #expect(try await h.store.letter(id: first) != nil, "the other worker's letter is still there")
        #expect(try await h.store.letter(id: ids[1]) == nil)
    }

    @Test("concurrent replays never run the same letter twice")
    func concurrentReplaysExactlyOnce() async throws {
        let (h, ids) = try await seeded(300)
        let runs = Shared<[String: Int]>([:])
        let reports = try await withThrowingTaskGroup(of: ReplayReport.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await h.queue.replay(options: ReplayOptions(concurrency: 4)) { letter in
                        runs.withLock { $0[letter.id, default: 0] += 1 }
                        await Task.yield()
                    }
                }
            }
            var reports: [ReplayReport] = []
            for try await report in group { reports.append(report) }
            return reports
        }
        #expect(reports.map(\.succeeded).reduce(0, +) == 300)
        #expect(runs.withLock { $0.count } == 300)
        #expect(runs.withLock { $0.values.allSatisfy { $0 == 1 } })
        #expect(Set(runs.withLock { Array($0.keys) }) == Set(ids))
        #expect(try await h.queue.count() == 0)
    }

    @Test("purge archives what it removes; expireNow removes only expired letters")
    func purgeAndExpire() async throws {
        let (h, ids) = try await seeded(10) { $0.timeToLive = .seconds(3600) }
        #expect(try await h.queue.purge(DeadLetterFilter(ids: Array(ids.prefix(3))), dryRun: true) == 3)
        #expect(try await h.queue.count() == 10)
        #expect(try await h.queue.purge(DeadLetterFilter(ids: Array(ids.prefix(3)))) == 3)
        #expect(h.archive.letters.map(\.id) == Array(ids.prefix(3)))
        #expect(h.archive.reasons == ["purged"])
        #expect(try await h.queue.expireNow() == 0)
        h.clock.advance(by: .seconds(3600))
        #expect(try await h.queue.expireNow() == 7)
        #expect(try await h.queue.count() == 0)
        #expect(h.metrics.counterValue(label: "dlq_purged_total") == 3)
        #expect(h.metrics.counterValue(label: "dlq_expired_total") == 7)
    }

    @Test("invalid options are refused with the field named")
    func invalidOptions() async throws {
        let (h, _) = try await seeded(1)
        await #expect {
            _ = try await h.queue.replay(options: ReplayOptions(rate: 0)) { _ in }
        } throws: { error in
            (error as? DeadLetterError)?.field == "rate"
        }
    }
}
