import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite("Operations")
struct OperationTests {
    /// Letters dead-lettered in `source` that failed `attempts` times: dead, never due.
    func deadLetters(_ h: QueueHarness, count: Int, source: String = "orders") async throws -> [DeadLetter] {
        let letters = DeadLetterFixtures.letters(count: count, start: h.clock.now().adding(.seconds(-3600))) {
            index,
            letter in
            letter.source = source
        }
        try await h.store.append(letters)
        return letters
    }

    @Test("a redrive's operation is pending until a running queue takes its letters, then finished with its counts")
    func redriveFinishesWhenTheServiceDrainsIt() async throws {
        let h = try QueueHarness(immediateAttempts: 1, delayedAttempts: 0)
        let letters = try await self.deadLetters(h, count: 5)
        let failing = letters[1].id
        h.queue.register(source: "orders") { letter in
            if letter.id == failing { throw TestFailure("still broken") }
        }
        let redrive = try await h.queue.startRedrive(DeadLetterFilter(sources: ["orders"]), actor: "alice")
        let id = try #require(redrive.operation?.id)
        #expect(try await h.queue.operation(id: id)?.counts.pending == 5)
        #expect(try await h.queue.unhandledSources(redrive.sources) == ["orders"], "no queue runs yet")
        var events = h.queue.events().makeAsyncIterator()
        try await h.running { () async throws in
            // Four recoveries and one death, in any order.
            var outcomes: [DeadLetterEvent.Kind] = []
            while outcomes.count < 5, let event = await events.next() {
                if event.kind == .recovered || event.kind == .dead { outcomes.append(event.kind) }
            }
            #expect(outcomes.filter { $0 == .dead }.count == 1)
            await h.clock.waitForSleepers(3)
            #expect(try await h.queue.instances().map(\.id) == ["test-instance"])
            #expect(try await h.queue.unhandledSources(["orders", "emails"]) == ["emails"])
        }
        let operation = try #require(try await h.queue.operation(id: id))
        #expect(operation.state == .finished)
        #expect(operation.finishedAt != nil)
        #expect(operation.counts == DeadLetterOperation.Counts(selected: 5, succeeded: 4, failed: 1))
        let failed = try await h.queue.operationLetters(id: id, outcomes: [.failed])
        #expect(failed.map(\.letterID) == [failing])
        #expect(failed.first?.errorMessage == "still broken")
        #expect(try await h.queue.instances().isEmpty, "removed at graceful shutdown")
        #expect(
            h.metrics.counterValue(
                label: "dlq_operation_letters_total",
                dimensions: [("kind", "redrive"), ("outcome", "succeeded")]
            ) == 4
        )
    }

    @Test("letters added after a redrive are not swept into it; a dry run creates no operation")
    func frozenSetAndDryRun() async throws {
        let h = try QueueHarness()
        _ = try await self.deadLetters(h, count: 3)
        #expect(try await h.queue.redrive(DeadLetterFilter(sources: ["orders"]), dryRun: true) == 3)
        #expect(try await h.queue.operations().isEmpty)
        let first = try #require(try await h.queue.startRedrive(DeadLetterFilter(sources: ["orders"])).operation)
        h.clock.advance(by: .seconds(1))
        let later = DeadLetterFixtures.letters(count: 2, start: h.clock.now(), seed: 5)
        try await h.store.append(later)
        #expect(try await h.queue.operation(id: first.id)?.counts.selected == 3)
        let set = try await h.queue.operationLetters(id: first.id)
        #expect(set.allSatisfy { letter in !later.contains { $0.id == letter.letterID } })
    }

    @Test("park, purge, delete and edit are operations with their letters; deletes and purges keep the ids")
    func everyPeopleActionIsRecorded() async throws {
        let h = try QueueHarness()
        let letters = try await self.deadLetters(h, count: 6)
        #expect(try await h.queue.park(DeadLetterFilter(ids: [letters[0].id]), actor: "alice") == 1)
        _ = try await h.queue.edit(id: letters[1].id, payload: Data("{}".utf8), actor: "bob")
        #expect(try await h.queue.delete(ids: [letters[2].id, "no-such-letter"], actor: "carol") == 1)
        #expect(try await h.queue.purge(DeadLetterFilter(ids: [letters[3].id, letters[4].id]), actor: "dave") == 2)
        let operations = try await h.queue.operations()
        #expect(operations.map(\.kind) == [.purge, .delete, .edit, .park])
        #expect(operations.map(\.actor) == ["dave", "carol", "bob", "alice"])
        #expect(operations.allSatisfy { $0.state == .finished })
        let purged = try await h.queue.operationLetters(id: operations[0].id)
        #expect(Set(purged.map(\.letterID)) == [letters[3].id, letters[4].id])
        let deleted = try await h.queue.operationLetters(id: operations[1].id)
        #expect(deleted.map(\.letterID) == [letters[2].id])
        #expect(operations[3].counts == DeadLetterOperation.Counts(selected: 1, succeeded: 1))

        // The caller may name the operation, to read its record afterwards whoever else acts meanwhile.
        let id = h.queue.newOperationID()
        #expect(try await h.queue.park(DeadLetterFilter(ids: [letters[5].id]), actor: "erin", operation: id) == 1)
        let named = try #require(try await h.queue.operation(id: id))
        #expect(named.kind == .park)
        #expect(named.actor == "erin")
        #expect(named.counts == DeadLetterOperation.Counts(selected: 1, succeeded: 1))
    }

    @Test("operations older than the retention are pruned when the next one is recorded")
    func operationsArePruned() async throws {
        let h = try QueueHarness { $0.operationRetention = .seconds(3600) }
        let letters = try await self.deadLetters(h, count: 3)
        #expect(try await h.queue.park(DeadLetterFilter(ids: [letters[0].id])) == 1)
        let first = try #require(try await h.queue.operations().first)
        h.clock.advance(by: .seconds(1800))
        #expect(try await h.queue.park(DeadLetterFilter(ids: [letters[1].id])) == 1)
        #expect(try await h.queue.operations().count == 2, "within the retention")
        h.clock.advance(by: .seconds(2400))
        #expect(try await h.queue.redrive(DeadLetterFilter(ids: [letters[2].id]), actor: "x") == 1)
        let kept = try await h.queue.operations()
        #expect(kept.count == 2)
        #expect(!kept.contains { $0.id == first.id })
        #expect(try await h.queue.operationLetters(id: first.id).isEmpty)
    }

    @Test("a replay is an operation: its frozen set, each letter's outcome, finished with counts that add up")
    func replayRecordsItsOperation() async throws {
        let h = try QueueHarness()
        let letters = try await self.deadLetters(h, count: 4)
        var options = ReplayOptions(maxConsecutiveFailures: nil)
        options.actor = "alice"
        options.command = "./fix.sh"
        let report = try await h.queue.replay(DeadLetterFilter(sources: ["orders"]), options: options) { letter in
            if letter.id == letters[2].id { throw TestFailure("still broken") }
        }
        let operation = try #require(try await h.queue.operation(id: report.operation))
        #expect(operation.kind == .replay)
        #expect(operation.state == .finished)
        #expect(operation.actor == "alice")
        #expect(operation.parameters.command == "./fix.sh")
        #expect(operation.counts == DeadLetterOperation.Counts(selected: 4, succeeded: 3, failed: 1))
        let failed = try await h.queue.operationLetters(id: operation.id, outcomes: [.failed])
        #expect(failed.map(\.letterID) == [letters[2].id])
        #expect(failed.first?.errorType == "TestFailure")
    }

    @Test("a canary that fails pauses the replay; resuming runs the rest under the same operation")
    func canaryPausesThenResumes() async throws {
        let h = try QueueHarness()
        let letters = try await self.deadLetters(h, count: 6)
        let fixed = Shared(false)
        let ran = Shared<[String]>([])
        var options = ReplayOptions(maxConsecutiveFailures: nil)
        options.canary = 2
        let first = try await h.queue.replay(options: options) { letter in
            ran.withLock { $0.append(letter.id) }
            if !fixed.withLock({ $0 }) { throw TestFailure("not fixed yet") }
        }
        #expect(first.paused)
        #expect(ran.withLock { $0 } == Array(letters.prefix(2).map(\.id)), "only the canary ran")
        var operation = try #require(try await h.queue.operation(id: first.operation))
        #expect(operation.state == .paused)
        #expect(operation.counts == DeadLetterOperation.Counts(selected: 6, failed: 2, pending: 4))
        fixed.withLock { $0 = true }
        let second = try await h.queue.resumeReplay(id: first.operation, actor: "bob") { letter in
            ran.withLock { $0.append(letter.id) }
        }
        #expect(second.operation == first.operation)
        #expect(second.succeeded == 4)
        operation = try #require(try await h.queue.operation(id: first.operation))
        #expect(operation.state == .finished)
        #expect(operation.counts == DeadLetterOperation.Counts(selected: 6, succeeded: 4, failed: 2))
        #expect(ran.withLock { $0 }.count == 6, "no letter ran twice")
        await #expect(throws: DeadLetterError.self) {
            try await h.queue.resumeReplay(id: first.operation) { _ in }
        }
    }

    @Test("a replay stopped from outside is interrupted and resumes over what it had not run")
    func interruptedReplayResumes() async throws {
        let h = try QueueHarness()
        let letters = try await self.deadLetters(h, count: 5)
        let ran = Shared<[String]>([])
        let started = AsyncStream<Void>.makeStream()
        let replay = Task {
            try await h.queue.replay(options: ReplayOptions(concurrency: 1)) { letter in
                ran.withLock { $0.append(letter.id) }
                if letter.id == letters[1].id {
                    started.continuation.yield()
                    // Runs until the replay is stopped from outside.
                    while !Task.isCancelled { await Task.yield() }
                    throw CancellationError()
                }
            }
        }
        var iterator = started.stream.makeAsyncIterator()
        _ = await iterator.next()
        replay.cancel()
        let report = try await replay.value
        let stopped = try #require(try await h.queue.operation(id: report.operation))
        #expect(stopped.state == .interrupted)
        #expect(stopped.counts.succeeded == 1)
        let resumed = try await h.queue.resumeReplay(id: report.operation) { letter in
            ran.withLock { $0.append(letter.id) }
        }
        #expect(resumed.operation == report.operation)
        let finished = try #require(try await h.queue.operation(id: report.operation))
        #expect(finished.state == .finished)
        #expect(finished.counts.selected == 5)
        #expect(finished.counts.succeeded + finished.counts.failed + finished.counts.skipped == 5)
        #expect(finished.counts.pending == 0)
        #expect(Set(ran.withLock { $0 }) == Set(letters.map(\.id)))
        #expect(try await h.queue.count() == 0 || finished.counts.failed > 0)
    }

    @Test("cancelling a running replay stops it at its next letter, recorded with who cancelled it")
    func cancelRunningReplay() async throws {
        let h = try QueueHarness()
        _ = try await self.deadLetters(h, count: 5)
        let ran = Shared(0)
        let report = try await h.queue.replay(options: ReplayOptions(concurrency: 1)) { letter in
            let count = ran.withLock { count in
                count += 1
                return count
            }
            if count == 2, let running = try await h.queue.operations(states: [.running]).first {
                try await h.queue.cancelOperation(id: running.id, actor: "carol")
            }
        }
        #expect(report.cancelled)
        #expect(ran.withLock { $0 } == 2)
        let operation = try #require(try await h.queue.operation(id: report.operation))
        #expect(operation.state == .cancelled)
        #expect(operation.message == "cancelled by carol")
        #expect(operation.counts.succeeded == 2)
        #expect(operation.counts.skipped == 3)
        #expect(operation.counts.pending == 0)
        #expect(try await h.queue.count() == 3)
    }
}
