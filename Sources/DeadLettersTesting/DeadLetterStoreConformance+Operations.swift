import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The operation log's checks: a store keeps operations with their frozen sets and outcomes (each recorded
/// once), lists them newest first, prunes them, and keeps the instances that run a queue; a queue on it
/// records redrives with their frozen set and pace, and cancels them.
extension DeadLetterStoreConformance {
    static let operationChecks: [(name: String, check: Check)] = [
        ("operationsKeptWithFrozenSet", operationsKeptWithFrozenSet),
        ("operationsListedNewestFirstAndPruned", operationsListedNewestFirstAndPruned),
        ("operationsRedriveFrozenAndPaced", operationsRedriveFrozenAndPaced),
        ("operationsRedriveCancelled", operationsRedriveCancelled),
        ("operationsInstancesKept", operationsInstancesKept),
        ("operationsOutcomesWrittenWithRecords", operationsOutcomesWrittenWithRecords),
    ]

    static func operation(
        _ id: String,
        kind: DeadLetterOperation.Kind = .redrive,
        createdAt: Date = Self.now
    ) -> DeadLetterOperation {
        DeadLetterOperation(
            id: id,
            kind: kind,
            actor: "alice",
            createdAt: createdAt,
            startedAt: createdAt,
            filter: DeadLetterFilter(
                sources: ["orders", "billing"],
                statuses: [.dead],
                since: DeadLetterFixtures.epoch,
                minAttempts: 2,
                search: "timeout 'quoted' \"x\""
            ),
            parameters: DeadLetterOperation.Parameters(
                limit: 10,
                rate: 2.5,
                concurrency: 4,
                maxFailures: 3,
                command: "./fix.sh --all",
                lease: .seconds(30),
                canary: 2
            )
        )
    }

    /// An operation's record and frozen set round-trip; an outcome changes a pending letter once, whatever
    /// reports it again; letters added twice or to an unknown operation are ignored; counts add up.
    static func operationsKeptWithFrozenSet(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        var op = Self.operation("op-1")
        let pending = (0..<5).map {
            DeadLetterOperationLetter(operation: op.id, letterID: "letter-\($0)", outcome: .pending)
        }
        let skipped = DeadLetterOperationLetter(operation: op.id, letterID: "letter-9", outcome: .skipped, at: Self.now)
        try await store.createOperation(op, letters: pending + [skipped])
        await #expect(throws: DeadLetterError.self) { try await store.createOperation(op, letters: []) }
        try await store.addOperationLetters([
            DeadLetterOperationLetter(operation: op.id, letterID: "letter-0", outcome: .succeeded, at: Self.now),
            DeadLetterOperationLetter(operation: op.id, letterID: "letter-5", outcome: .pending),
            DeadLetterOperationLetter(operation: "no-such-op", letterID: "letter-0", outcome: .pending),
        ])
        let read = try #require(try await store.operation(id: op.id))
        #expect(read.filter == op.filter)
        #expect(read.parameters == op.parameters)
        #expect(read.actor == "alice")
        #expect(read.createdAt == op.createdAt)
        #expect(read.counts == DeadLetterOperation.Counts(selected: 7, pending: 6, skipped: 1))
        #expect(try await store.operation(id: "no-such-op") == nil)

        let failed = DeadLetterOperationLetter(
            operation: op.id,
            letterID: "letter-1",
            outcome: .failed,
            at: Self.now,
            errorType: "TimeoutError",
            errorMessage: "upstream timed out"
        )
        let done = [
            DeadLetterOperationLetter(operation: op.id, letterID: "letter-0", outcome: .succeeded, at: Self.now),
            failed,
            DeadLetterOperationLetter(operation: op.id, letterID: "letter-2", outcome: .parked, at: Self.now),
            DeadLetterOperationLetter(operation: op.id, letterID: "letter-9", outcome: .succeeded, at: Self.now),
        ]
        #expect(try await store.recordOperationLetters(done) == 3, "letter-9 was not pending")
        #expect(try await store.recordOperationLetters(done) == 0, "each outcome is recorded once")
        let counted = try #require(try await store.operation(id: op.id))
        #expect(
            counted.counts
                == DeadLetterOperation.Counts(selected: 7, succeeded: 1, failed: 1, parked: 1, pending: 3, skipped: 1)
        )
        let failures = try await store.operationLetters(id: op.id, outcomes: [.failed, .parked], after: nil, limit: 10)
        #expect(failures.map(\.letterID) == ["letter-1", "letter-2"])
        #expect(failures.first == failed)
        let firstPage = try await store.operationLetters(id: op.id, outcomes: [], after: nil, limit: 4)
        #expect(firstPage.map(\.letterID) == ["letter-0", "letter-1", "letter-2", "letter-3"])
        let secondPage = try await store.operationLetters(id: op.id, outcomes: [], after: "letter-3", limit: 4)
        #expect(secondPage.map(\.letterID) == ["letter-4", "letter-5", "letter-9"])

        op.state = .cancelled
        op.finishedAt = Self.now.adding(.seconds(5))
        op.message = "cancelled by bob"
        #expect(try await store.updateOperation(op))
        let updated = try #require(try await store.operation(id: op.id))
        #expect(updated.state == .cancelled)
        #expect(updated.finishedAt == op.finishedAt)
        #expect(updated.message == "cancelled by bob")
        #expect(try await store.updateOperation(Self.operation("never-created")) == false)
    }

    /// Outcomes written with their operation records: a record is written with its outcome only, never for an
    /// outcome whose lease was lost; an outcome without a record leaves the set as it was.
    static func operationsOutcomesWrittenWithRecords(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(4, seed: 43, start: now.adding(.seconds(-3_600)))
        try await store.append(letters)
        let ids = letters.map(\.id)
        let op = Self.operation("op-outcomes", kind: .replay)
        try await store.createOperation(
            op,
            letters: ids.map { DeadLetterOperationLetter(operation: op.id, letterID: $0, outcome: .pending) }
        )
        let leaseUntil = now.adding(.seconds(30))
        #expect(
            try await store.claim(
                ids: Array(ids[0...1]) + [ids[3]],
                now: now,
                owner: "replay/op",
                leaseUntil: leaseUntil
            ).count == 3
        )
        #expect(
            try await store.claim(ids: [ids[2]], now: now, owner: "someone-else", leaseUntil: leaseUntil).count == 1
        )
        var failed = letters[1]
        failed.errorMessage = "failed again"
        failed.attempts += 1
        func record(_ index: Int, _ outcome: DeadLetterOperationLetter.Outcome) -> DeadLetterOperationLetter {
            DeadLetterOperationLetter(
                operation: op.id,
                letterID: ids[index],
                outcome: outcome,
                at: now,
                errorType: outcome == .failed ? failed.errorType : nil,
                errorMessage: outcome == .failed ? failed.errorMessage : nil
            )
        }
        let written = try await store.write(
            [.complete(id: ids[0]), .release(failed), .complete(id: ids[2]), .release(letters[3])],
            owner: "replay/op",
            recording: [record(0, .succeeded), record(1, .failed), record(2, .succeeded), nil]
        )
        #expect(written == [true, true, false, true])
        #expect(try await store.letter(id: ids[0]) == nil)
        #expect(try await store.letter(id: ids[1])?.errorMessage == "failed again")
        #expect(try await store.letter(id: ids[2]) != nil, "its lease is someone else's")
        let counted = try #require(try await store.operation(id: op.id))
        #expect(counted.counts == DeadLetterOperation.Counts(selected: 4, succeeded: 1, failed: 1, pending: 2))
        let failures = try await store.operationLetters(id: op.id, outcomes: [.failed], after: nil, limit: 10)
        #expect(failures == [record(1, .failed)])
        // One outcome with its record, alone.
        #expect(try await store.claim(ids: [ids[3]], now: now, owner: "replay/op", leaseUntil: leaseUntil).count == 1)
        #expect(
            try await store.write([.complete(id: ids[3])], owner: "replay/op", recording: [record(3, .succeeded)])
                == [true]
        )
        let after = try #require(try await store.operation(id: op.id))
        #expect(after.counts == DeadLetterOperation.Counts(selected: 4, succeeded: 2, failed: 1, pending: 1))
        // A record past the outcomes (one per outcome is the contract) has no outcome written: not recorded.
        #expect(try await store.write([], owner: "replay/op", recording: [record(2, .succeeded)]).isEmpty)
        #expect(try await store.operation(id: op.id)?.counts == after.counts)
    }

    /// Operations are listed newest first, by stored state, a page at a time; pruning removes the old ones
    /// with their letters.
    static func operationsListedNewestFirstAndPruned(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        for index in 0..<5 {
            var op = Self.operation("op-\(index)", createdAt: Self.now.adding(.seconds(index * 60)))
            if index % 2 == 1 { op.state = .finished }
            try await store.createOperation(
                op,
                letters: [DeadLetterOperationLetter(operation: op.id, letterID: "l-\(index)", outcome: .pending)]
            )
        }
        #expect(
            try await store.operations(states: [], before: nil, limit: 10).map(\.id) == [
                "op-4", "op-3", "op-2", "op-1", "op-0",
            ]
        )
        #expect(try await store.operations(states: [], before: "op-3", limit: 2).map(\.id) == ["op-2", "op-1"])
        #expect(try await store.operations(states: [.finished], before: nil, limit: 10).map(\.id) == ["op-3", "op-1"])
        #expect(try await store.operations(states: [], before: nil, limit: 1).first?.counts.pending == 1)
        #expect(try await store.pruneOperations(createdBefore: Self.now.adding(.seconds(120))) == 2)
        #expect(try await store.operations(states: [], before: nil, limit: 10).map(\.id) == ["op-4", "op-3", "op-2"])
        #expect(try await store.operationLetters(id: "op-0", outcomes: [], after: nil, limit: 10).isEmpty)
    }

    /// A redrive at 10 letters per second sets next attempts 0.1 s apart, records its frozen set (letters
    /// added after it are not part of it) and stays running with every letter pending.
    static func operationsRedriveFrozenAndPaced(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let clock = ManualClock(now: Self.now)
        let queue = try Self.queue(on: store, clock: clock)
        let letters = Self.make(20)
        try await store.append(letters)
        let redrive = try await queue.startRedrive(
            DeadLetterFilter(sources: ["orders"]),
            rate: 10,
            actor: "alice"
        )
        #expect(redrive.redriven == 20)
        let operation = try #require(redrive.operation)
        #expect(operation.kind == .redrive)
        #expect(operation.state == .running)
        #expect(operation.actor == "alice")
        #expect(operation.counts == DeadLetterOperation.Counts(selected: 20, pending: 20))
        #expect(operation.parameters.rate == 10)
        let due = try await Self.everything(store).compactMap(\.nextAttemptAt).sorted()
        #expect(due.count == 20)
        for (index, date) in due.enumerated() {
            #expect(date == Self.now.adding(.milliseconds(100 * index)).roundedToMilliseconds, "letter \(index)")
        }
        #expect(redrive.lastDueAt == Self.now.adding(.milliseconds(1900)).roundedToMilliseconds)
        for letter in try await Self.everything(store) {
            #expect(letter.history.last?.event == .redriven)
            #expect(letter.history.last?.operation == operation.id)
        }
        try await store.append(Self.make(3, seed: 99, start: Self.now))
        let set = try await queue.operationLetters(id: operation.id, limit: 100)
        #expect(Set(set.map(\.letterID)) == Set(letters.map(\.id)))
        #expect(try await queue.operations().first?.id == operation.id)
    }

    /// Cancelling a redrive returns its letters that have not run yet to `dead` with a `cancelled` entry
    /// naming who cancelled it; the operation ends `cancelled`, its letters `skipped`.
    static func operationsRedriveCancelled(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let clock = ManualClock(now: Self.now)
        let queue = try Self.queue(on: store, clock: clock)
        try await store.append(Self.make(3))
        let operation = try #require(try await queue.startRedrive(actor: "alice").operation)
        clock.advance(by: .seconds(1))
        let cancelled = try await queue.cancelOperation(id: operation.id, actor: "bob")
        #expect(cancelled.state == .cancelled)
        #expect(cancelled.counts == DeadLetterOperation.Counts(selected: 3, skipped: 3))
        for letter in try await Self.everything(store) {
            #expect(letter.status == .dead)
            #expect(letter.nextAttemptAt == nil)
            #expect(letter.history.last?.event == .cancelled)
            #expect(letter.history.last?.actor == "bob")
            #expect(letter.history.last?.operation == operation.id)
        }
        await #expect(throws: DeadLetterError.self) { try await queue.cancelOperation(id: operation.id) }
        await #expect(throws: DeadLetterError.self) { try await queue.cancelOperation(id: "no-such-operation") }
    }

    /// Instances are stored, refreshed and removed; the queue shows only those seen within 3 heartbeats.
    static func operationsInstancesKept(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let clock = ManualClock(now: Self.now)
        let queue = try Self.queue(on: store, clock: clock)
        let a = DeadLetterInstance(
            id: "a",
            host: "web-1",
            pid: 42,
            version: "0.1.0",
            sources: ["orders", "billing"],
            startedAt: Self.now,
            lastSeenAt: Self.now
        )
        var b = a
        b.id = "b"
        b.sources = ["emails"]
        b.lastSeenAt = Self.now.adding(.seconds(-60))
        try await store.saveInstance(a)
        try await store.saveInstance(b)
        #expect(try await store.instances() == [a, b])
        #expect(try await queue.instances().map(\.id) == ["a"], "b missed 3 heartbeats")
        #expect(try await queue.unhandledSources(["orders", "emails", "refunds"]) == ["emails", "refunds"])
        b.lastSeenAt = Self.now
        try await store.saveInstance(b)
        #expect(try await queue.instances().map(\.id) == ["a", "b"])
        try await store.removeInstance(id: "a")
        #expect(try await store.instances().map(\.id) == ["b"])
    }
}
