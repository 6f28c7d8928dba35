import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    /// `redrive` makes every selected letter `retrying` with `nextAttemptAt` = `now` and changes nothing
    /// else; it returns how many it changed.
    ///
    /// Decision: the store follows the filter literally, so the empty filter redrives `parked` letters too;
    /// leaving parked letters alone unless asked is the caller's job (the queue, `dlq redrive`).
    static func redriveMakesLettersDue(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let statuses: [DeadLetterStatus] = [.dead, .parked, .retrying, .dead]
        let letters = make(4) { index, letter in
            letter.status = statuses[index]
            letter.nextAttemptAt = statuses[index] == .retrying ? now.adding(.seconds(3600)) : nil
            letter.attempts = 4
        }
        try await store.append(letters)
        let at = now.adding(.milliseconds(250))
        #expect(try await store.redrive(DeadLetterFilter(statuses: [.dead]), now: at, limit: nil) == 2)
        for index in [0, 3] {
            var want = letters[index]
            want.status = .retrying
            want.nextAttemptAt = at.roundedToMilliseconds
            let read = try #require(try await store.letter(id: want.id))
            #expect(read.history.last?.event == .redriven, "the redrive is recorded")
            want.history = read.history
            #expect(read == want)
        }
        #expect(try await store.letter(id: letters[1].id) == letters[1])
        #expect(try await store.redrive(DeadLetterFilter(), now: at, limit: nil) == 4)
        let all = try await everything(store)
        #expect(all.allSatisfy { $0.status == .retrying && $0.nextAttemptAt == at.roundedToMilliseconds })
        #expect(all.allSatisfy { $0.attempts == 4 })
        let claimed = try await store.claimDue(
            now: at,
            limit: 10,
            owner: "w1",
            leaseUntil: at.adding(.seconds(30)),
            sources: ["orders"]
        )
        #expect(claimed.count == 4, "redriven letters are due at once")
    }

    /// `redrive` leaves letters with a live lease alone, even when the filter names them; an expired lease
    /// does not protect a letter.
    static func redriveSkipsLiveLeases(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(3)
        try await store.append(letters)
        let lease = now.adding(.seconds(30))
        _ = try await store.claim(ids: [letters[0].id], now: now, owner: "w1", leaseUntil: lease)
        let byID = DeadLetterFilter(ids: [letters[0].id, letters[1].id])
        #expect(try await store.redrive(byID, now: now, limit: nil) == 1)
        #expect(try await store.letter(id: letters[0].id) == letters[0])
        #expect(try await store.letter(id: letters[1].id)?.status == .retrying)
        #expect(try await store.redrive(DeadLetterFilter(ids: [letters[0].id]), now: lease, limit: nil) == 1)
        #expect(try await store.letter(id: letters[0].id)?.nextAttemptAt == lease.roundedToMilliseconds)
    }

    /// `redrive` with a limit changes that many letters, oldest (by id) first, among those it may change.
    static func redriveLimitOldestFirst(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(6)
        var random = SeededRandom(seed: 5)
        try await store.append(letters.shuffled(using: &random))
        _ = try await store.claim(ids: [letters[0].id], now: now, owner: "w1", leaseUntil: now.adding(.seconds(30)))
        #expect(try await store.redrive(DeadLetterFilter(), now: now, limit: 2) == 2)
        let retrying = try await everything(store, DeadLetterFilter(statuses: [.retrying]))
        #expect(retrying.map(\.id) == [letters[1].id, letters[2].id])
        #expect(try await store.redrive(DeadLetterFilter(statuses: [.dead]), now: now, limit: 10) == 3)
        #expect(try await store.redrive(DeadLetterFilter(statuses: [.dead]), now: now, limit: 10) == 0)
        #expect(try await store.redrive(DeadLetterFilter(), now: now, limit: 0) == 0)
    }

    /// `delete` removes the listed letters, leased or not, and returns how many it removed; unknown and
    /// repeated ids are not counted twice.
    static func deleteRemovesLeasedOrNot(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(5)
        try await store.append(letters)
        _ = try await store.claim(ids: [letters[1].id], now: now, owner: "w1", leaseUntil: now.adding(.seconds(30)))
        let removed = try await store.delete(ids: [
            letters[1].id, letters[3].id, letters[3].id, DeadLetterFixtures.nextID(),
        ])
        #expect(removed == 2)
        #expect(try await store.letter(id: letters[1].id) == nil)
        #expect(try await everything(store) == [letters[0], letters[2], letters[4]])
        #expect(try await store.complete(id: letters[1].id, owner: "w1") == false)
        #expect(try await store.delete(ids: []) == 0)
        #expect(try await store.usage() == usageOf([letters[0], letters[2], letters[4]]))
    }

    /// `usage` counts the letters and sums their `storageSize`, through appends, releases and deletes.
    static func usageCountsBytes(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        #expect(try await store.usage() == DeadLetterUsage(count: 0, bytes: 0))
        let letters = make(20) { index, letter in
            letter.payload = Data(repeating: 7, count: index * 13)
            letter.metadata = ["k\(index)": String(repeating: "v", count: index)]
            letter.causes = index % 2 == 0 ? ["Cause: \(index)"] : []
        }
        try await store.append(letters)
        #expect(try await store.usage() == usageOf(letters))
        #expect(try await store.delete(ids: letters.prefix(5).map(\.id)) == 5)
        #expect(try await store.usage() == usageOf(Array(letters.dropFirst(5))))
    }

    /// `importLetters` is all or nothing: when the sequence throws midway, its error comes out and none of
    /// the letters read before it are stored.
    static func importIsAllOrNothing(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let existing = make(2, seed: 41)
        try await store.append(existing)
        let letters = make(500, seed: 42, start: now)
        await #expect(throws: ImportFailure.self) {
            _ = try await store.importLetters(ThrowingLetters(letters: letters, failAfter: 300), onConflict: .skip)
        }
        #expect(try await everything(store) == existing)
        #expect(try await store.usage() == usageOf(existing))
        let result = try await store.importLetters(ThrowingLetters(letters: letters, failAfter: nil), onConflict: .fail)
        #expect(result == DeadLetterAppendResult(inserted: 500))
        #expect(try await everything(store) == existing + letters)
    }

    /// Importing the same letters again under `.skip` stores nothing new and counts them as skipped.
    static func importSkipIsIdempotent(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(50, seed: 43)
        let first = try await store.importLetters(
            ThrowingLetters(letters: Array(letters[0..<30]), failAfter: nil),
            onConflict: .skip
        )
        #expect(first == DeadLetterAppendResult(inserted: 30))
        let second = try await store.importLetters(ThrowingLetters(letters: letters, failAfter: nil), onConflict: .skip)
        #expect(second == DeadLetterAppendResult(inserted: 20, skipped: 30))
        let third = try await store.importLetters(ThrowingLetters(letters: letters, failAfter: nil), onConflict: .skip)
        #expect(third == DeadLetterAppendResult(inserted: 0, skipped: 50))
        #expect(try await everything(store) == letters)
    }

    /// Importing under `.fail` with one stored id throws `duplicateID` and stores none of the import.
    static func importFailOnDuplicateStoresNothing(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(40, seed: 44)
        try await store.append([letters[25]])
        let error = await #expect(throws: DeadLetterError.self) {
            _ = try await store.importLetters(ThrowingLetters(letters: letters, failAfter: nil), onConflict: .fail)
        }
        #expect(error?.code == .duplicateID)
        #expect(try await everything(store) == [letters[25]])
    }

    /// `letters(matching:)` streams every selected letter in id order, across many batches.
    static func lettersSequenceStreamsEverything(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(2_345, seed: 45, interval: .milliseconds(10)) { index, letter in
            letter.source = index % 5 == 0 ? "payments" : "orders"
        }
        for start in stride(from: 0, to: letters.count, by: 500) {
            try await store.append(Array(letters[start..<min(start + 500, letters.count)]))
        }
        #expect(try await collect(store, DeadLetterFilter(), batchSize: 100) == letters)
        let payments = try await collect(store, DeadLetterFilter(sources: ["payments"]), batchSize: 7)
        #expect(payments == letters.filter { $0.source == "payments" })
        #expect(try await collect(store, DeadLetterFilter(sources: ["nowhere"]), batchSize: 10).isEmpty)
    }

    static func collect<Store: DeadLetterStore>(
        _ store: Store,
        _ filter: DeadLetterFilter,
        batchSize: Int
    )
        async throws -> [DeadLetter]
    {
        var all: [DeadLetter] = []
        for try await letter in store.letters(matching: filter, batchSize: batchSize) { all.append(letter) }
        return all
    }

    /// 100 tasks appending at once, one letter per call, store exactly every letter.
    static func concurrentAppendsGiveExactCount(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(500, seed: 46, interval: .milliseconds(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<100 {
                group.addTask {
                    for index in stride(from: task, to: letters.count, by: 100) {
                        try await store.append([letters[index]])
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.count(DeadLetterFilter()) == 500)
        #expect(try await store.usage() == usageOf(letters))
        #expect(try await everything(store) == letters)
    }

    /// Workers claiming at once never get the same letter, and together they get every due letter.
    static func concurrentClaimsNeverOverlap(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(300, seed: 47, interval: .milliseconds(1)) { _, letter in
            letter.status = .retrying
            letter.nextAttemptAt = letter.lastFailedAt
        }
        try await store.append(letters)
        let at = now
        let claims = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let batch = try await store.claimDue(
                            now: at,
                            limit: 7,
                            owner: "worker-\(worker)",
                            leaseUntil: at.adding(.seconds(60)),
                            sources: ["orders"]
                        )
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.id)
                    }
                }
            }
            var all: [[String]] = []
            for try await ids in group { all.append(ids) }
            return all
        }
        let flat = claims.flatMap { $0 }
        #expect(flat.count == 300, "no letter is claimed twice")
        #expect(Set(flat) == Set(letters.map(\.id)))
    }
}
