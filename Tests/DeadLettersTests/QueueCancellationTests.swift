import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import Testing

/// A memory store whose writes refuse a cancelled task, as GRDB's async writes and PostgresNIO's waits for a
/// connection do.
///
/// It also records the size of each ``write(_:owner:)`` call, and can hold the writes back until `handled`
/// reaches `holdWritesUntil`, so that the outcomes behind them pile up. `onPage`, when set, runs before each
/// page is read, with the page's cursor.
struct CancellationRefusingStore: DeadLetterStore {
    let base = MemoryDeadLetterStore()
    let writes = PThreadLock<[Int]>([])
    let handled = PThreadLock(0)
    var holdWritesUntil: Int?
    var onPage: (@Sendable (_ cursor: String?) async throws -> Void)?

    private func writable() throws {
        if Task.isCancelled { throw CancellationError() }
    }

    func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult {
        try self.writable()
        return try await self.base.append(letters, onConflict: onConflict, limits: limits)
    }

    func letter(id: String) async throws -> DeadLetter? { try await self.base.letter(id: id) }

    func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        try await self.onPage?(cursor)
        return try await self.base.page(filter, after: cursor, limit: limit)
    }

    func count(_ filter: DeadLetterFilter) async throws -> Int { try await self.base.count(filter) }

    func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        try await self.base.summary(filter, now: now)
    }

    func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        try await self.base.groups(filter, limit: limit)
    }

    func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] {
        try self.writable()
        return try await self.base.claimDue(
            now: now,
            limit: limit,
            owner: owner,
            leaseUntil: leaseUntil,
            sources: sources
        )
    }

    func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        try self.writable()
        return try await self.base.claim(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil)
    }

    func complete(id: String, owner: String) async throws -> Bool {
        try self.writable()
        return try await self.base.complete(id: id, owner: owner)
    }

    func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        try self.writable()
        return try await self.base.release(letter, owner: owner)
    }

    func write(_ outcomes: [DeadLetterOutcome], owner: String) async throws -> [Bool] {
        try self.writable()
        self.writes.withLock { $0.append(outcomes.count) }
        if let until = self.holdWritesUntil, self.handled.withLock({ $0 }) < until {
            while self.handled.withLock({ $0 }) < until { await Task.yield() }
            // Give the tasks that finished their handler time to hand their outcome over.
            for _ in 0..<1000 { await Task.yield() }
        }
        return try await self.base.write(outcomes, owner: owner)
    }

    func delete(ids: [String]) async throws -> Int {
        try self.writable()
        return try await self.base.delete(ids: ids)
    }

    func usage() async throws -> DeadLetterUsage { try await self.base.usage() }
}

@Suite("DeadLetterQueue protects its writes from cancellation")
struct QueueCancellationTests {
    let clock = ManualClock()

    private func queue(on store: CancellationRefusingStore) throws -> DeadLetterQueue {
        var configuration = DeadLetterQueue.Configuration()
        configuration.circuitBreaker = nil
        configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        return try DeadLetterQueue(store: store, configuration: configuration, clock: self.clock)
    }

    @Test("a cancelled task still stores its dead letter")
    func cancelledAdd() async throws {
        let store = CancellationRefusingStore()
        let queue = try self.queue(on: store)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await queue.add(payload: Data("x".utf8), source: "orders", error: TestFailure("down"))
        }
        let id = try await task.value
        #expect(try await store.letter(id: id)?.errorMessage == "down")
    }

    @Test("a replay cancelled while a letter runs still writes that letter's outcome")
    func cancelledReplay() async throws {
        let store = CancellationRefusingStore()
        let queue = try self.queue(on: store)
        let succeeded = try await queue.add(payload: Data("a".utf8), source: "orders", error: TestFailure("down"))
        let failed = try await queue.add(payload: Data("b".utf8), source: "orders", error: TestFailure("down"))
        // Each handler cancels the task it runs in (Ctrl-C reaches the letters in flight) and then finishes.
        let report = try await queue.replay(options: ReplayOptions(concurrency: 2)) { letter in
            withUnsafeCurrentTask { $0?.cancel() }
            if letter.id == failed { throw TestFailure("still down") }
        }
        #expect(report.succeeded == 1 && report.failed == 1)
        #expect(try await store.letter(id: succeeded) == nil)
        let stored = try #require(try await store.letter(id: failed))
        #expect(stored.errorMessage == "still down")
        // Released, not left leased: claimable again at once.
        #expect(
            try await store.claim(ids: [failed], now: self.clock.now(), owner: "other", leaseUntil: self.clock.now())
                .count == 1
        )
    }

    @Test("a replay's outcomes that wait while writes are in flight go to the store together")
    func sharedWrites() async throws {
        var store = CancellationRefusingStore()
        store.holdWritesUntil = 10
        let queue = try self.queue(on: store)
        for index in 0..<10 {
            try await queue.add(payload: Data("\(index)".utf8), source: "orders", error: TestFailure("down"))
        }
        let report = try await queue.replay(options: ReplayOptions(concurrency: 10)) { [store] _ in
            store.handled.withLock { $0 += 1 }
        }
        #expect(report.succeeded == 10)
        #expect(try await store.count(DeadLetterFilter()) == 0)
        let writes = store.writes.withLock { $0 }
        #expect(writes.reduce(0, +) == 10 && writes.count < 10, "outcomes per write: \(writes)")
    }
}
