import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

/// A replay at concurrency 1 on the memory store runs its letters in the pass's own task and writes each
/// page's outcomes in one store call: what it must keep of the concurrent pass.
@Suite("DeadLetterQueue.replay, one letter at a time on the memory store")
struct QueueReplayInlineTests {
    /// A harness holding `count` dead letters of source "orders", with pages of `batchSize`.
    func seeded(_ count: Int, batchSize: Int = 100) async throws -> (QueueHarness, [String]) {
        let h = try QueueHarness { $0.batchSize = batchSize }
        var ids: [String] = []
        for index in 0..<count {
            ids.append(
                try await h.queue.add(payload: Data("\(index)".utf8), source: "orders", error: TestFailure("old"))
            )
            h.clock.advance(by: .milliseconds(1))
        }
        return (h, ids)
    }

    @Test("progress gets the report after each letter, over several pages; outcomes and metrics add up")
    func progressAndCounts() async throws {
        let (h, ids) = try await seeded(25, batchSize: 10)
        let failing = Set([ids[3], ids[17]])
        let seen = Shared<[Int]>([])
        let report = try await h.queue.replay(
            options: ReplayOptions(maxConsecutiveFailures: nil),
            progress: { report in seen.withLock { $0.append(report.succeeded + report.failed) } },
            handler: { letter in if failing.contains(letter.id) { throw TestFailure("still down") } }
        )
        #expect(seen.withLock { $0 } == Array(1...25))
        #expect(report.succeeded == 23 && report.failed == 2 && report.skipped == 0)
        #expect(try await h.queue.count() == 2)
        let operation = try #require(try await h.queue.operation(id: report.operation))
        #expect(operation.state == .finished)
        #expect(operation.counts == DeadLetterOperation.Counts(selected: 25, succeeded: 23, failed: 2))
        let failed = try await h.queue.operationLetters(id: report.operation, outcomes: [.failed])
        #expect(failed.map(\.letterID) == ids.filter(failing.contains))
        #expect(failed.allSatisfy { $0.errorMessage == "still down" && $0.at != nil })
        let success = [("source", "orders"), ("outcome", "success")]
        #expect(h.metrics.counterValue(label: "dlq_replays_total", dimensions: success) == 23)
        let failure = [("source", "orders"), ("outcome", "failure")]
        #expect(h.metrics.counterValue(label: "dlq_replays_total", dimensions: failure) == 2)
        let recorded = [("kind", "replay"), ("outcome", "succeeded")]
        #expect(h.metrics.counterValue(label: "dlq_operation_letters_total", dimensions: recorded) == 23)
    }

    @Test("a ReplayStoppedError hands its letter back unchanged; the letters before it are written")
    func stoppedByHandler() async throws {
        let (h, ids) = try await seeded(5)
        let ran = Shared(0)
        var report: ReplayReport?
        do {
            _ = try await h.queue.replay { letter in
                ran.withLock { $0 += 1 }
                if letter.id == ids[2] { throw ReplayStoppedError("no command") }
            }
            Issue.record("the replay did not stop")
        } catch let stopped as ReplayStoppedError {
            report = stopped.report
        }
        #expect(ran.withLock { $0 } == 3)
        #expect(report?.succeeded == 2)
        #expect(report?.skipped == 3)
        #expect(try await h.queue.count() == 3)
        let handedBack = try #require(try await h.store.letter(id: ids[2]))
        #expect(handedBack.errorMessage == "old" && handedBack.replayCount == 0)
        let now = h.clock.now()
        let lease = now.addingTimeInterval(9)
        let claimable = try await h.store.claim(ids: ids, now: now, owner: "other", leaseUntil: lease)
        #expect(claimable.map(\.id) == Array(ids.suffix(3)), "handed back, not left leased")
        let operation = try #require(try await h.queue.operation(id: report?.operation ?? ""))
        #expect(operation.state == .paused)
        #expect(operation.counts.succeeded == 2 && operation.counts.pending == 3)
    }

    @Test("keepOnSuccess keeps each letter with its history entry")
    func keepOnSuccess() async throws {
        let (h, ids) = try await seeded(3)
        let report = try await h.queue.replay(options: ReplayOptions(keepOnSuccess: true)) { _ in }
        #expect(report.succeeded == 3)
        for id in ids {
            let kept = try #require(try await h.store.letter(id: id))
            #expect(kept.history.last?.event == .replayed)
        }
    }

    @Test("a poison letter is parked, not run, and its outcome recorded")
    func poisonParked() async throws {
        let (h, ids) = try await seeded(3)
        var poison = try #require(try await h.store.letter(id: ids[1]))
        poison.abandonedClaims = 5
        let now = h.clock.now()
        _ = try await h.store.claim(ids: [poison.id], now: now, owner: "fixer", leaseUntil: now.addingTimeInterval(9))
        #expect(try await h.store.release(poison, owner: "fixer"))
        let ran = Shared<[String]>([])
        let report = try await h.queue.replay { letter in ran.withLock { $0.append(letter.id) } }
        #expect(ran.withLock { $0 } == [ids[0], ids[2]])
        #expect(report.succeeded == 2 && report.parked == 1)
        #expect(try await h.store.letter(id: ids[1])?.status == .parked)
        let operation = try #require(try await h.queue.operation(id: report.operation))
        #expect(operation.counts.parked == 1 && operation.counts.succeeded == 2)
    }

    @Test("concurrent replays, one letter at a time each, never run the same letter twice")
    func concurrentReplaysExactlyOnce() async throws {
        let (h, ids) = try await seeded(300, batchSize: 7)
        let runs = Shared<[String: Int]>([:])
        let reports = try await withThrowingTaskGroup(of: ReplayReport.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await h.queue.replay { letter in
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
        #expect(runs.withLock { $0.values.allSatisfy { $0 == 1 } })
        #expect(Set(runs.withLock { Array($0.keys) }) == Set(ids))
        #expect(try await h.queue.count() == 0)
    }

    @Test("a letter's outcome waits for its page at most the flush interval")
    func slowHandlerFlushes() async throws {
        let (h, ids) = try await seeded(3)
        let stored = Shared<[Bool]>([])
        let report = try await h.queue.replay { [store = h.store] letter in
            if letter.id == ids[2] {
                // The first two outcomes waited 1 s: written before this letter's handler returns.
                stored.withLock { $0 = [] }
                for id in ids.prefix(2) {
                    let present = try await store.letter(id: id) != nil
                    stored.withLock { $0.append(present) }
                }
            }
            h.clock.advance(by: .seconds(1))
        }
        #expect(report.succeeded == 3)
        #expect(stored.withLock { $0 } == [false, false])
        #expect(try await h.queue.count() == 0)
    }
}
