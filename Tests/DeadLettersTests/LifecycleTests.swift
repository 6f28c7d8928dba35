import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite("DeadLetterLifecycle: a letter's life as a value")
struct LifecycleTests {
    let now = DeadLetterFixtures.epoch.adding(.seconds(3600))
    let failure = CapturedError(type: "DownstreamError", message: "503 from inventory")

    func apply(
        _ lifecycle: DeadLetterLifecycle,
        _ event: DeadLetterLifecycle.Event,
        _ letter: DeadLetter,
        actor: String? = "worker-1",
        operation: String? = nil
    ) -> DeadLetterLifecycle.Transition {
        var rng = SeededRandom(seed: 1)
        let context = DeadLetterLifecycle.Context(now: self.now, actor: actor, operation: operation)
        return lifecycle.apply(event, to: letter, context: context, using: &rng)
    }

    @Test("delayed attempts are counted from the history, not guessed from attempts under today's policy")
    func delayedAttemptsCountedFromHistory() {
        let lifecycle = DeadLetterLifecycle(retryPolicy: RetryPolicy(immediateAttempts: 1, delayedAttempts: 3))
        // 10 attempts in process under an earlier policy: the old guess took such a letter for a redriven one.
        var letter = DeadLetterFixtures.letter(reason: .dependency, attempts: 10, status: .retrying)
        for round in 1...3 {
            let step = self.apply(lifecycle, .attemptFailed(self.failure, reason: .dependency), letter)
            letter = step.letter
            #expect(step.entries.map(\.event) == [.retried])
            #expect(letter.status == (round < 3 ? .retrying : .dead), "round \(round)")
            #expect(letter.replayCount == 0, "not a failed redrive")
        }
        #expect(letter.history.first?.errorMessage == "processing failed", "the first failure is kept")
        #expect(letter.errorMessage == "503 from inventory")
        #expect(letter.attempts == 13)
    }

    @Test("an attempt after a redrive is the redrive's: it counts a failed redrive and may park the letter")
    func attemptAfterRedrive() {
        let lifecycle = DeadLetterLifecycle(parkAfterFailedReplays: 2)
        var letter = DeadLetterFixtures.letter()
        for round in 1...2 {
            letter =
                self.apply(lifecycle, .redriven(dueAt: self.now), letter, actor: "alice", operation: "op-\(round)")
                .letter
            #expect(letter.status == .retrying)
            let step = self.apply(lifecycle, .attemptFailed(self.failure, reason: .dependency), letter)
            letter = step.letter
            #expect(step.entries.first?.operation == "op-\(round)")
            #expect(letter.replayCount == round)
            #expect(step.parked == (round == 2))
        }
        #expect(letter.status == .parked)
        #expect(letter.history.map(\.event) == [.failed, .redriven, .retried, .redriven, .retried, .parked])
        // Redriving a parked letter unparks it and starts its abandoned claims over.
        letter.abandonedClaims = 3
        let unparked = self.apply(lifecycle, .redriven(dueAt: self.now), letter, actor: "bob").letter
        #expect(unparked.status == .retrying)
        #expect(unparked.abandonedClaims == 0)
        #expect(unparked.history.last?.event == .unparked)
        #expect(unparked.history.last?.actor == "bob")
    }

    @Test("a claim under the abandoned limit changes nothing; at the limit the letter is parked")
    func claimAbandoned() {
        let lifecycle = DeadLetterLifecycle()
        var letter = DeadLetterFixtures.letter()
        letter.abandonedClaims = 2
        let under = self.apply(lifecycle, .claimAbandoned, letter)
        #expect(under.entries.isEmpty)
        #expect(under.letter == letter)
        letter.abandonedClaims = 3
        let parked = self.apply(lifecycle, .claimAbandoned, letter)
        #expect(parked.letter.status == .parked)
        #expect(parked.entries.map(\.event) == [.abandoned, .parked])
    }

    @Test("counters stop at the bound instead of overflowing")
    func countersSaturate() {
        let lifecycle = DeadLetterLifecycle()
        let letter = DeadLetterFixtures.letter(attempts: Int.max, replayCount: Int.max - 1)
        let failed = self.apply(lifecycle, .replayFailed(self.failure, reason: .processing), letter).letter
        #expect(failed.attempts == Int.max)
        #expect(failed.replayCount == Int.max - 1)
        #expect(DeadLetterLifecycle.increment(DeadLetterLifecycle.maxCount) == DeadLetterLifecycle.maxCount)
    }

    @Test("removals record how the letter left in the archived copy")
    func removals() {
        let lifecycle = DeadLetterLifecycle()
        let letter = DeadLetterFixtures.letter()
        for (event, name) in [
            (DeadLetterLifecycle.Event.purged, "purged"), (.expired, "expired"), (.deleted, "deleted"),
        ] {
            let step = self.apply(lifecycle, event, letter, actor: "carol")
            #expect(step.removes)
            #expect(step.letter.history.last?.event.rawValue == name)
        }
        #expect(!self.apply(lifecycle, .replaySucceeded(keep: true), letter).removes)
        #expect(self.apply(lifecycle, .replaySucceeded(keep: false), letter).removes)
    }

    @Test("a stored letter is retrying when its reason has delayed attempts, else dead")
    func stored() {
        let lifecycle = DeadLetterLifecycle()
        var rng = SeededRandom(seed: 2)
        let retrying = lifecycle.stored(DeadLetterFixtures.letter(reason: .timeout), now: self.now, using: &rng)
        #expect(retrying.status == .retrying)
        #expect((retrying.nextAttemptAt ?? .distantPast) > self.now)
        let dead = lifecycle.stored(DeadLetterFixtures.letter(reason: .validation), now: self.now, using: &rng)
        #expect(dead.status == .dead)
        #expect(dead.nextAttemptAt == nil)
    }

    @Test("an error that changes and changes back reads back from a store equal to itself")
    func errorChangedBack() async throws {
        let store = MemoryDeadLetterStore()
        var letter = DeadLetterFixtures.letter(errorMessage: "first")
        letter.errorMessage = "second"
        #expect(letter.storedHistory.first?.errorMessage == "first", "written out when it changed")
        letter.errorMessage = "first"
        #expect(letter.storedHistory.isEmpty, "implicit again")
        try await store.append([letter])
        #expect(try await store.letter(id: letter.id) == letter)
    }

    @Test("without a key, redrive and park change sealed letters without opening them; their payloads stay sealed")
    func sealedLettersWithoutKey() async throws {
        let base = MemoryDeadLetterStore()
        let encryption = PayloadEncryption(
            key: try PayloadEncryption.Key(base64: String(repeating: "A", count: 43) + "=")
        )
        let sealing = EncryptedDeadLetterStore(base: base, encryption: encryption)
        let letters = DeadLetterFixtures.letters(count: 2, seed: 5)
        try await sealing.append(letters)
        let queue = try DeadLetterQueue(store: EncryptedDeadLetterStore.withoutKey(base: base), clock: ManualClock())
        #expect(try await queue.redrive(DeadLetterFilter(ids: [letters[0].id]), actor: "alice") == 1)
        #expect(try await queue.park(DeadLetterFilter(ids: [letters[1].id]), actor: "alice") == 1)
        let redriven = try #require(try await base.letter(id: letters[0].id))
        #expect(redriven.status == .retrying)
        #expect(PayloadEncryption.isSealed(redriven.payload))
        #expect(try await sealing.letter(id: letters[0].id)?.payload == letters[0].payload, "still opens")
        let parked = try #require(try await sealing.letter(id: letters[1].id))
        #expect(parked.status == .parked)
        #expect(parked.history.last?.message == "parked by hand")
        #expect(parked.payload == letters[1].payload)
    }

    @Test("a parked poison letter replayed on purpose runs, instead of being left leased")
    func parkedPoisonReplayedOnPurpose() async throws {
        let store = MemoryDeadLetterStore()
        var letter = DeadLetterFixtures.letter(status: .parked)
        letter.abandonedClaims = 5
        try await store.append([letter])
        let queue = try DeadLetterQueue(store: store, clock: ManualClock())
        let report = try await queue.replay(DeadLetterFilter(statuses: [.parked])) { _ in }
        #expect(report.succeeded == 1)
        #expect(try await store.count(DeadLetterFilter()) == 0)
    }
}
