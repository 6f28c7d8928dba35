import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The lifecycle's checks: a store keeps a letter's whole history (the first failure, every later event, the
/// count of entries left out) and counts claims that ended without an outcome, so that a queue on it keeps
/// every event of a letter's life and parks poison letters.
extension DeadLetterStoreConformance {
    static let lifecycleChecks: [(name: String, check: Check)] = [
        ("lifecycleFirstFailureKeptAcrossEvents", lifecycleFirstFailureKeptAcrossEvents),
        ("lifecycleHistoryBoundedRoundTrip", lifecycleHistoryBoundedRoundTrip),
        ("lifecycleAbandonedClaimsCounted", lifecycleAbandonedClaimsCounted),
        ("lifecyclePoisonLetterParked", lifecyclePoisonLetterParked),
        ("lifecycleParkAndUnpark", lifecycleParkAndUnpark),
        ("lifecycleEditKeepsTrace", lifecycleEditKeepsTrace),
        ("lifecycleCountersSurviveAppendAndImport", lifecycleCountersSurviveAppendAndImport),
    ]

    /// A letter that arrives with abandoned claims and left-out history entries (an exported letter) keeps
    /// them through `append` and `importLetters`, on every path (bounded or not).
    static func lifecycleCountersSurviveAppendAndImport(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = Self.make(4) { index, letter in
            letter.abandonedClaims = index + 1
            letter.historyOmitted = 10 * index
            letter.record(DeadLetter.HistoryEntry(event: .redriven, at: Self.now, actor: "someone"))
        }
        try await store.append([letters[0]])
        _ = try await store.append([letters[1]], onConflict: .skip, limits: DeadLetterLimits(maxEntries: 100))
        let imported = try await store.importLetters(
            ThrowingLetters(letters: Array(letters[2...]), failAfter: nil),
            onConflict: .skip
        )
        #expect(imported.inserted == 2)
        for letter in letters {
            let read = try #require(try await store.letter(id: letter.id))
            #expect(read.abandonedClaims == letter.abandonedClaims)
            #expect(read.historyOmitted == letter.historyOmitted)
            #expect(read == letter)
        }
    }

    /// A queue on `store` with a manual clock; letters never expire.
    static func queue(on store: any DeadLetterStore, clock: ManualClock) throws -> DeadLetterQueue {
        var configuration = DeadLetterQueue.Configuration()
        configuration.timeToLive = nil
        configuration.instanceID = "conformance"
        configuration.leaseDuration = .seconds(60)
        return try DeadLetterQueue(
            store: store,
            configuration: configuration,
            clock: clock,
            random: SeededRandom(seed: 3)
        )
    }

    struct ReplayFailure: Error, CustomStringConvertible {
        var description: String { "the fix is not deployed yet" }
    }

    /// A redrive, a failed replay and a second failed replay: the first entry is still the failure that
    /// dead-lettered the letter, with its whole error, and every later event is an entry with its actor and
    /// operation; the letter's own error fields show the latest failure.
    static func lifecycleFirstFailureKeptAcrossEvents(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let clock = ManualClock(now: Self.now)
        let queue = try Self.queue(on: store, clock: clock)
        let original = DeadLetterFixtures.letter(
            reason: .decoding,
            errorType: "DecodingError",
            errorMessage: "typeMismatch: expected Double at total",
            causes: ["JSONError: unexpected string"],
            firstFailedAt: Self.now.adding(.seconds(-60))
        )
        try await store.append([original])
        #expect(try await queue.redrive(DeadLetterFilter(ids: [original.id]), actor: "alice") == 1)
        clock.advance(by: .seconds(1))
        var options = ReplayOptions(maxConsecutiveFailures: nil)
        options.actor = "bob"
        let report = try await queue.replay(DeadLetterFilter(ids: [original.id]), options: options) { _ in
            throw ReplayFailure()
        }
        #expect(report.failed == 1)
        let letter = try #require(try await store.letter(id: original.id))
        let history = letter.history
        try #require(history.count == 3, "failed, redriven, replayed: \(history.map(\.event))")
        #expect(history[0].event == .failed)
        #expect(history[0].errorType == "DecodingError")
        #expect(history[0].errorMessage == "typeMismatch: expected Double at total")
        #expect(history[0].causes == ["JSONError: unexpected string"])
        #expect(history[0].reason == .decoding)
        #expect(history[0].fingerprint == original.fingerprint)
        #expect(history[0].at == original.firstFailedAt)
        #expect(history[1].event == .redriven)
        #expect(history[1].actor == "alice")
        #expect(history[1].operation != nil)
        #expect(history[2].event == .replayed)
        #expect(history[2].outcome == .failed)
        #expect(history[2].errorType == "ReplayFailure")
        #expect(history[2].errorMessage == "the fix is not deployed yet")
        #expect(history[2].actor == "bob")
        #expect(history[2].operation == report.operation)
        #expect(history[2].operation != history[1].operation)
        #expect(letter.errorType == "ReplayFailure", "the top-level error is the latest failure")
        #expect(letter.fingerprint != original.fingerprint)
        #expect(letter.replayCount == 1)
        #expect(letter.attempts == original.attempts + 1)
    }

    /// A history longer than a letter keeps: the first entry and the newest 100 are written and read back
    /// exactly, with the count of the ones left out.
    static func lifecycleHistoryBoundedRoundTrip(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        var letter = DeadLetterFixtures.letter(errorMessage: "first")
        let lifecycle = DeadLetterLifecycle(parkAfterFailedReplays: .max, timeToLive: nil)
        for index in 0..<150 {
            let context = DeadLetterLifecycle.Context(now: Self.now.adding(.seconds(index)), actor: "actor-\(index)")
            let failure = CapturedError(type: "RetryError", message: "attempt \(index) failed")
            letter = lifecycle.apply(.replayFailed(failure, reason: .processing), to: letter, context: context).letter
        }
        #expect(letter.history.count == 1 + DeadLetter.maxRecentHistory)
        #expect(letter.historyOmitted == 50)
        #expect(letter.history[0].errorMessage == "first")
        #expect(letter.history.last?.errorMessage == "attempt 149 failed")
        try await store.append([letter])
        let read = try #require(try await store.letter(id: letter.id))
        #expect(read.history == letter.history)
        #expect(read.historyOmitted == 50)
        #expect(read == letter)
    }

    /// A claim of a letter whose earlier lease ran out without an outcome (no complete, no release) counts an
    /// abandoned claim; a claim after a release does not.
    static func lifecycleAbandonedClaimsCounted(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letter = DeadLetterFixtures.letter()
        try await store.append([letter])
        var now = Self.now
        for expected in 0..<3 {
            let claimed = try await store.claim(
                ids: [letter.id],
                now: now,
                owner: "w\(expected)",
                leaseUntil: now.adding(.seconds(10))
            )
            #expect(claimed.first?.abandonedClaims == expected, "claim \(expected + 1)")
            now = now.adding(.seconds(11))
        }
        let claimed = try #require(
            try await store.claim(ids: [letter.id], now: now, owner: "w3", leaseUntil: now.adding(.seconds(10))).first
        )
        #expect(claimed.abandonedClaims == 3)
        #expect(try await store.release(claimed, owner: "w3"))
        now = now.adding(.seconds(11))
        let again = try await store.claim(ids: [letter.id], now: now, owner: "w4", leaseUntil: now.adding(.seconds(10)))
        #expect(again.first?.abandonedClaims == 3, "a released claim is not abandoned")
        #expect(try await store.letter(id: letter.id)?.abandonedClaims == 3)
    }

    /// A letter whose claims ended without an outcome 3 times is parked by the next replay instead of run,
    /// with an `abandoned` entry; a later replay leaves it alone.
    static func lifecyclePoisonLetterParked(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let clock = ManualClock(now: Self.now)
        let queue = try Self.queue(on: store, clock: clock)
        let letter = DeadLetterFixtures.letter()
        try await store.append([letter])
        let runs = PoisonRuns()
        for _ in 0..<3 {
            // A replay that dies while running the letter: claimed, never completed nor released.
            let now = clock.now()
            _ = try await store.claim(ids: [letter.id], now: now, owner: "killed", leaseUntil: now.adding(.seconds(1)))
            clock.advance(by: .seconds(2))
        }
        let report = try await queue.replay(DeadLetterFilter(ids: [letter.id])) { _ in runs.ran() }
        #expect(runs.count == 0, "a poison letter is not run again")
        #expect(report.parked == 1)
        let parked = try #require(try await store.letter(id: letter.id))
        #expect(parked.status == .parked)
        #expect(parked.abandonedClaims == 3)
        let events = parked.history.map(\.event)
        #expect(events == [.failed, .abandoned, .parked])
        #expect(parked.history[1].message?.contains("3 claims") == true)
        let later = try await queue.replay(DeadLetterFilter(ids: [letter.id])) { _ in runs.ran() }
        #expect(later.matched == 0)
        #expect(runs.count == 0)
    }

    /// Parking and unparking by hand are entries with their actor; unparking starts the abandoned claims over.
    static func lifecycleParkAndUnpark(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let clock = ManualClock(now: Self.now)
        let queue = try Self.queue(on: store, clock: clock)
        let letters = Self.make(3)
        try await store.append(letters)
        #expect(try await queue.park(DeadLetterFilter(ids: [letters[0].id, letters[1].id]), actor: "carol") == 2)
        #expect(try await queue.park(DeadLetterFilter(ids: [letters[0].id]), actor: "carol") == 0, "already parked")
        let parked = try #require(try await store.letter(id: letters[0].id))
        #expect(parked.status == .parked)
        #expect(parked.history.last?.event == .parked)
        #expect(parked.history.last?.actor == "carol")
        #expect(try await queue.redrive(DeadLetterFilter(ids: [letters[0].id])) == 0, "redrive leaves parked alone")
        let unparked = try await queue.redrive(DeadLetterFilter(statuses: [.parked]), actor: "dave")
        #expect(unparked == 2)
        let letter = try #require(try await store.letter(id: letters[0].id))
        #expect(letter.status == .retrying)
        #expect(letter.history.last?.event == .unparked)
        #expect(letter.history.last?.actor == "dave")
    }

    /// An edit replaces the payload and keeps the previous payload's size and SHA-256 in the history; the
    /// error and first failure stay.
    static func lifecycleEditKeepsTrace(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let clock = ManualClock(now: Self.now)
        let queue = try Self.queue(on: store, clock: clock)
        let letter = DeadLetterFixtures.letter(payload: Data("abc".utf8))
        try await store.append([letter])
        let fixed = Data(#"{"total":42.0}"#.utf8)
        try await queue.edit(id: letter.id, payload: fixed, redrive: true, actor: "erin")
        let edited = try #require(try await store.letter(id: letter.id))
        #expect(edited.payload == fixed)
        #expect(edited.status == .retrying)
        #expect(edited.errorMessage == letter.errorMessage)
        let events = edited.history.map(\.event)
        #expect(events == [.failed, .edited, .redriven])
        // SHA-256("abc")
        let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        #expect(edited.history[1].message == "replaced a payload of 3 bytes, SHA-256 \(digest)")
        #expect(edited.history[1].actor == "erin")
        await #expect(throws: DeadLetterError.self) {
            try await queue.edit(id: "no-such-letter", payload: fixed)
        }
    }
}

/// Counts handler runs across tasks.
final class PoisonRuns: Sendable {
    private let state = PThreadLock(0)
    func ran() { self.state.withLock { $0 += 1 } }
    var count: Int { self.state.withLock { $0 } }
}
