import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite("MemoryStore")
struct MemoryStoreTests {
    @Test(arguments: DeadLetterStoreConformance.checks)
    func conformance(_ check: String) async throws {
        try await DeadLetterStoreConformance.run(check) { MemoryDeadLetterStore() }
    }

    @Test("a count by status alone (kept per status) agrees with a count that reads every letter")
    func countsByStatusStayInStep() async throws {
        let store = MemoryDeadLetterStore()
        let statuses: [DeadLetterStatus] = [.dead, .retrying, .parked]
        let letters = DeadLetterFixtures.letters(count: 30) { index, letter in
            letter.status = statuses[index % 3]
            if letter.status == .retrying { letter.nextAttemptAt = letter.lastFailedAt }
        }
        try await store.append(letters)
        func expectInStep(_ comment: Comment) async throws {
            for selected in [[DeadLetterStatus.dead], [.dead, .retrying], [.parked], statuses, [.dead, .dead]] {
                let kept = try await store.count(DeadLetterFilter(statuses: selected))
                let read = try await store.count(DeadLetterFilter(statuses: selected, minAttempts: 0))
                #expect(kept == read, comment)
            }
        }
        try await expectInStep("after the appends")
        let now = DeadLetterFixtures.epoch
        let claimed = try await store.claim(
            ids: letters.prefix(9).map(\.id),
            now: now,
            owner: "test",
            leaseUntil: now.addingTimeInterval(60)
        )
        var parked = claimed[0]
        parked.status = .parked
        var dead = claimed[1]
        dead.status = .dead
        let written = try await store.write(
            [.release(parked), .release(dead), .complete(id: claimed[2].id), .complete(id: claimed[3].id)],
            owner: "test"
        )
        #expect(written == [true, true, true, true])
        try await expectInStep("after releases with new statuses and completions")
        #expect(try await store.delete(ids: letters.suffix(5).map(\.id)) == 5)
        try await expectInStep("after deletes")
        #expect(try await store.count(DeadLetterFilter(statuses: statuses)) == 23)
    }

    /// Records name their lease's slot, and ended leases leave their slots to later ones: a slot passed on
    /// must never carry its last owner's lease to another letter, whichever way the lease ended.
    @Test("leases reuse slots without passing one letter's lease to another")
    func leaseSlotsAreReused() async throws {
        let store = MemoryDeadLetterStore()
        let letters = DeadLetterFixtures.letters(count: 40)
        try await store.append(letters)
        let now = DeadLetterFixtures.epoch
        let ids = letters.map(\.id)
        for round in 0..<4 {
            let owner = "owner-\(round)"
            let part = Array(ids[(round * 10)..<(round * 10 + 10)])
            let claimed = try await store.claim(
                ids: part,
                now: now,
                owner: owner,
                leaseUntil: now.addingTimeInterval(60)
            )
            #expect(claimed.map(\.id) == part)
            // Another owner takes none of them while the leases live.
            #expect(
                try await store.claim(ids: part, now: now, owner: "thief", leaseUntil: now.addingTimeInterval(60))
                    .isEmpty
            )
            // The leases end four ways: completed, released, deleted, and one left to expire.
            #expect(try await store.complete(id: part[0], owner: owner))
            #expect(try await store.release(claimed[1], owner: owner))
            #expect(try await store.delete(ids: [part[2]]) == 1)
            #expect(
                try await store.write([.complete(id: part[3]), .release(claimed[4])], owner: owner) == [true, true]
            )
            // Freed slots go to the next round's letters; the last round's owner holds nothing of them.
            if round > 0 {
                let previous = Array(ids[((round - 1) * 10)..<(round * 10)])
                for id in previous.suffix(5) {
                    #expect(try await store.complete(id: id, owner: owner) == false, "\(id) in round \(round)")
                }
            }
            // The released letter is free again; the letters still leased stay with their owner.
            #expect(
                try await store.claim(ids: [part[1]], now: now, owner: "next", leaseUntil: now).map(\.id) == [part[1]]
            )
            #expect(try await store.claim(ids: [part[5]], now: now, owner: "thief", leaseUntil: now).isEmpty)
            // An expired lease is taken over, and counts as an abandoned claim.
            let later = now.addingTimeInterval(120)
            let taken = try await store.claim(
                ids: [part[6]],
                now: later,
                owner: "late",
                leaseUntil: later.addingTimeInterval(60)
            )
            #expect(taken.first?.abandonedClaims == 1)
            #expect(try await store.complete(id: part[6], owner: owner) == false)
            #expect(try await store.complete(id: part[6], owner: "late"))
        }
    }

    @Test func staticFactoryMakesAnEmptyStore() async throws {
        let store: MemoryDeadLetterStore = .memory
        #expect(try await store.count(DeadLetterFilter()) == 0)
        try await store.append([DeadLetterFixtures.letter()])
        #expect(try await store.count(DeadLetterFilter()) == 1)
        let other: MemoryDeadLetterStore = .memory
        #expect(try await other.count(DeadLetterFilter()) == 0, "each use makes a new store")
    }

    @Test func idsOfAnyFormatOrderAsStrings() async throws {
        let store = MemoryDeadLetterStore()
        let uuid = DeadLetterFixtures.nextID()
        let ids = [
            uuid, uuid.uppercased(), "01ARZ3NDEKTSV4RRFFQ69G5FAV", "zzz", "", "0",
            "ffffffff-ffff-7fff-bfff-ffffffffffff",
            "00000000-0000-7000-8000-000000000000", "g0000000-0000-7000-8000-000000000000", "Ünïcode",
        ]
        let letters = ids.map { id in
            DeadLetterFixtures.letter(id: id, fingerprint: id.isEmpty ? "0123456789abcdef" : "FP-\(id)")
        }
        try await store.append(letters)
        let page = try await store.page(DeadLetterFilter(), after: nil, limit: 100)
        #expect(page.letters.map(\.id) == ids.sorted())
        #expect(page.letters == letters.sorted { $0.id < $1.id })
        for letter in letters {
            #expect(try await store.letter(id: letter.id) == letter)
            let byFingerprint = try await store.page(
                DeadLetterFilter(fingerprints: [letter.fingerprint]),
                after: nil,
                limit: 10
            )
            #expect(byFingerprint.letters.map(\.id) == [letter.id])
        }
        let after = try await store.page(DeadLetterFilter(), after: "1", limit: 100)
        #expect(after.letters.map(\.id) == ids.sorted().filter { $0 > "1" })
        let claimed = try await store.claim(
            ids: ids,
            now: DeadLetterFixtures.epoch,
            owner: "w",
            leaseUntil: .distantFuture
        )
        #expect(claimed.map(\.id) == ids.sorted())
        for id in ids { #expect(try await store.complete(id: id, owner: "w")) }
        #expect(try await store.usage() == DeadLetterUsage(count: 0, bytes: 0))
    }

    @Test func tombstonesAreCompactedAndIdsCanComeBack() async throws {
        let store = MemoryDeadLetterStore()
        let letters = DeadLetterFixtures.letters(count: 5000, seed: 77)
        try await store.append(letters)
        let removed = letters.enumerated().filter { $0.offset % 5 != 0 }.map(\.element)
        #expect(try await store.delete(ids: removed.map(\.id)) == 4000)
        let kept = letters.enumerated().filter { $0.offset % 5 == 0 }.map(\.element)
        #expect(try await store.page(DeadLetterFilter(), after: nil, limit: 10_000).letters == kept)
        try await store.append(Array(removed.prefix(10)))
        #expect(try await store.count(DeadLetterFilter()) == 1010)
        let evicted = try await store.append(
            [],
            onConflict: .fail,
            limits: DeadLetterLimits(maxEntries: 1000, overflow: .dropOldest)
        )
        #expect(evicted.evicted.map(\.id) == (kept + removed.prefix(10)).map(\.id).sorted().prefix(10).map { $0 })
        #expect(try await store.usage().count == 1000)
    }

    /// The records live in one block grown and shrunk with `realloc`: letters must stay in id order and whole
    /// through growth past several sizes, inserts between others, a compaction from the front (as a replay
    /// leaves it) that gives the room back, and growth again afterwards.
    @Test("letters stay whole and in order as the store grows, compacts from the front and shrinks")
    func recordsGrowCompactAndShrink() async throws {
        let store = MemoryDeadLetterStore()
        let letters = DeadLetterFixtures.letters(count: 3000, seed: 5)
        let sorted = letters.sorted { $0.id < $1.id }
        // Added one at a time in a scattered order: most land between letters already stored.
        for step in 0..<2000 { try await store.append([sorted[(step * 7919) % 2000]]) }
        #expect(try await store.page(DeadLetterFilter(), after: nil, limit: 5000).letters == Array(sorted.prefix(2000)))
        // The oldest go first, as a replay removes them: their tombstones lie before every letter.
        #expect(try await store.delete(ids: sorted.prefix(1900).map(\.id)) == 1900)
        #expect(try await store.page(DeadLetterFilter(), after: nil, limit: 5000).letters == Array(sorted[1900..<2000]))
        // Growing again after the compaction, at both ends and between.
        try await store.append(Array(sorted[2000..<3000]))
        try await store.append(Array(sorted[0..<50]))
        let expected = Array(sorted[0..<50]) + Array(sorted[1900..<3000])
        let page = try await store.page(DeadLetterFilter(), after: nil, limit: 5000).letters
        #expect(page == expected)
        let bytes = expected.map(\.storageSize).reduce(0, +)
        #expect(try await store.usage() == DeadLetterUsage(count: 1150, bytes: bytes))
    }

    @Test func unknownCheckThrows() async throws {
        let error = await #expect(throws: DeadLetterError.self) {
            try await DeadLetterStoreConformance.run("noSuchCheck") { MemoryDeadLetterStore() }
        }
        #expect(error?.code == .invalidConfiguration)
    }
}
