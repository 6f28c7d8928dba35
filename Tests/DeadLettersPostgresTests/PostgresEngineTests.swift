import DeadLetters
import DeadLettersPostgres
import DeadLettersTesting
import Synchronization
import Testing

/// A one-way gate: waiters resume when it opens.
private final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = self.state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = self.state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

private struct EngineKilled: Error {}

/// How many times each letter's handler succeeded, and how many calls engine 3 got.
private final class Tally: Sendable {
    let successes = Mutex<[String: Int]>([:])
    let calls = Atomic<Int>(0)
}

@Suite(
    "PostgreSQL store: engines on many instances",
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresEngineTests {
    @Test(
        "four engines on separate connections replay the same 10,000 letters: each succeeds exactly once, and a killed engine's leased letters are finished by the others after the lease expires"
    )
    func fourEnginesReplayOnce() async throws {
        try await PostgresTestServer.withHarnesses(4) { harnesses in
            let schema = PostgresTestServer.freshSchema()
            let stores = try harnesses.map { try $0.makeStore(schema: schema) }
            let letters = DeadLetterFixtures.letters(count: 10_000, interval: .milliseconds(1), seed: 21)
            try await stores[0].append(letters)
            let clock = ManualClock()
            let queues = try (0..<4).map { index in
                var configuration = DeadLetterQueue.Configuration()
                configuration.instanceID = "engine-\(index)"
                configuration.leaseDuration = .seconds(30)
                return try DeadLetterQueue(store: stores[index], configuration: configuration, clock: clock)
            }
            let tally = Tally()
            let succeed: DeadLetterQueue.Handler = { letter in
                tally.successes.withLock { $0[letter.id, default: 0] += 1 }
            }

            // Engine 3 runs 50 letters, then "dies": its handlers hang while it holds the leases of the rest
            // of its batch, and fail only once the others have finished its letters.
            let died = Gate()
            let buried = Gate()
            let killedOptions = ReplayOptions(concurrency: 4, maxConsecutiveFailures: nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await queues[3].replay(options: killedOptions) { letter in
                        if tally.calls.add(1, ordering: .relaxed).newValue > 50 {
                            died.open()
                            await buried.wait()
                            throw EngineKilled()
                        }
                        try await succeed(letter)
                    }
                }
                await died.wait()

                let reports = try await withThrowingTaskGroup(of: ReplayReport.self) { engines in
                    for index in 0..<3 {
                        engines.addTask {
                            try await queues[index].replay(options: ReplayOptions(concurrency: 8), handler: succeed)
                        }
                    }
                    var reports: [ReplayReport] = []
                    for try await report in engines { reports.append(report) }
                    return reports
                }
                let stranded = try await stores[0].count(DeadLetterFilter())
                #expect(stranded > 0, "the killed engine still leases part of its batch")
                #expect(reports.reduce(0) { $0 + $1.succeeded } == 10_000 - 50 - stranded)

                // Before the lease expires, nobody else may take the stranded letters.
                let early = try await queues[1].replay(options: ReplayOptions(concurrency: 8), handler: succeed)
                #expect(early.succeeded == 0)
                #expect(try await stores[1].count(DeadLetterFilter()) == stranded)

                clock.advance(by: .seconds(31))
                let late = try await queues[2].replay(options: ReplayOptions(concurrency: 8), handler: succeed)
                #expect(late.succeeded == stranded)
                buried.open()
                try await group.waitForAll()
            }
            let counts = tally.successes.withLock { $0 }
            #expect(counts.count == 10_000, "every letter's handler succeeded")
            #expect(counts.values.allSatisfy { $0 == 1 }, "no letter's handler succeeded twice")
            #expect(Set(counts.keys) == Set(letters.map(\.id)))
            #expect(try await stores[0].count(DeadLetterFilter()) == 0)
            #expect(try await stores[0].usage() == DeadLetterUsage(count: 0, bytes: 0))
        }
    }

    @Test("two instances running on one store each see the other; a redrive of a source nobody handles is recorded")
    func instancesSeeEachOther() async throws {
        try await PostgresTestServer.withHarnesses(2) { harnesses in
            let schema = PostgresTestServer.freshSchema()
            let stores = try harnesses.map { try $0.makeStore(schema: schema) }
            let queues = try (0..<2).map { index in
                var configuration = DeadLetterQueue.Configuration()
                configuration.instanceID = "instance-\(index)"
                configuration.instanceHeartbeat = .seconds(2)
                let queue = try DeadLetterQueue(store: stores[index], configuration: configuration)
                queue.register(source: index == 0 ? "orders" : "emails") { _ in }
                return queue
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for queue in queues { group.addTask { try await queue.run() } }
                for queue in queues {
                    var seen: [String] = []
                    for _ in 0..<100 where seen.count < 2 {
                        seen = try await queue.instances().map(\.id)
                        if seen.count < 2 { try await Task.sleep(for: .milliseconds(50)) }
                    }
                    #expect(seen == ["instance-0", "instance-1"])
                }
                let instances = try await queues[1].instances()
                #expect(instances.map(\.sources) == [["orders"], ["emails"]])
                #expect(try await queues[0].unhandledSources(["orders", "emails", "refunds"]) == ["refunds"])
                group.cancelAll()
            }
        }
    }
}
