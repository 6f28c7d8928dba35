import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    /// Letters for the claim checks at ``now``: `due` are retrying and due in `orders` and `payments`
    /// (earliest `nextAttemptAt` first, one exactly at `now`); the rest are not due, not retrying, or from
    /// another source.
    static func claimFixture() -> (all: [DeadLetter], due: [DeadLetter]) {
        let at = now
        let specs: [(String, DeadLetterStatus, Int64?)] = [
            ("orders", .retrying, -5_000),  // due
            ("payments", .retrying, -60_000),  // due, earliest
            ("orders", .retrying, 1),  // not due: one millisecond later
            ("orders", .dead, nil),
            ("emails", .retrying, -90_000),  // another source
            ("orders", .retrying, 0),  // due exactly now
            ("orders", .parked, nil),
            ("payments", .retrying, -30_000),  // due
            ("payments", .retrying, 3_600_000),  // not due
        ]
        let all = make(specs.count, seed: 31, start: at.adding(.seconds(-86_400))) { index, letter in
            let (source, status, offset) = specs[index]
            letter.source = source
            letter.status = status
            letter.nextAttemptAt = offset.map { Date(millisecondsSince1970: at.millisecondsSince1970 + $0) }
        }
        let due = [all[1], all[7], all[0], all[5]]
        return (all, due)
    }

    /// `claimDue` takes exactly the retrying letters of the given sources whose `nextAttemptAt` is at or
    /// before `now`, earliest first, and returns them as stored; claiming does not change them.
    static func claimDueSelectsDueLetters(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let (all, due) = claimFixture()
        try await store.append(all)
        let claimed = try await store.claimDue(
            now: now,
            limit: 100,
            owner: "w1",
            leaseUntil: now.adding(.seconds(30)),
            sources: ["orders", "payments"]
        )
        #expect(claimed == due)
        for letter in all {
            #expect(try await store.letter(id: letter.id) == letter, "claiming leaves the letter as stored")
        }
        let emails = try await store.claimDue(
            now: now,
            limit: 100,
            owner: "w2",
            leaseUntil: now.adding(.seconds(30)),
            sources: ["emails"]
        )
        #expect(emails == [all[4]])
    }

    /// `claimDue` takes at most `limit` letters, the earliest due first; the next call takes the next ones.
    static func claimDueLimitEarliestFirst(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let (all, due) = claimFixture()
        try await store.append(all)
        let lease = now.adding(.seconds(30))
        let first = try await store.claimDue(
            now: now,
            limit: 2,
            owner: "w1",
            leaseUntil: lease,
            sources: ["orders", "payments"]
        )
        #expect(first == Array(due[0..<2]))
        let second = try await store.claimDue(
            now: now,
            limit: 2,
            owner: "w1",
            leaseUntil: lease,
            sources: ["orders", "payments"]
        )
        #expect(second == Array(due[2..<4]))
        let third = try await store.claimDue(
            now: now,
            limit: 2,
            owner: "w1",
            leaseUntil: lease,
            sources: ["orders", "payments"]
        )
        #expect(third.isEmpty)
    }

    /// A live lease keeps a letter from every claim, the owner's own included; at its expiry (a lease
    /// whose expiry is at or before `now` is no lease) the letter can be claimed again.
    static func claimDueLeaseExcludesUntilExpiry(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let (all, due) = claimFixture()
        try await store.append(all)
        let sources = ["orders", "payments"]
        let lease = now.adding(.seconds(30))
        let first = try await store.claimDue(now: now, limit: 1, owner: "w1", leaseUntil: lease, sources: sources)
        #expect(first == [due[0]])
        let justBefore = lease.adding(.milliseconds(-1))
        let others = try await store.claimDue(
            now: now,
            limit: 100,
            owner: "w2",
            leaseUntil: justBefore,
            sources: sources
        )
        #expect(others == Array(due[1...]), "a live lease excludes the letter")
        let own = try await store.claimDue(
            now: now,
            limit: 100,
            owner: "w1",
            leaseUntil: lease.adding(.seconds(30)),
            sources: sources
        )
        #expect(own.isEmpty, "the owner cannot claim its own live lease again")
        let late = try await store.claimDue(
            now: justBefore,
            limit: 100,
            owner: "w1",
            leaseUntil: lease.adding(.seconds(30)),
            sources: sources
        )
        #expect(
            late.map(\.id) == [all[7].id, all[0].id, all[5].id, all[2].id],
            "w2's leases ended at justBefore; w1's is live"
        )
        #expect(
            try await store.claim(
                ids: [due[0].id],
                now: justBefore,
                owner: "w3",
                leaseUntil: lease.adding(.seconds(60))
            ).isEmpty
        )
        let again = try await store.claimDue(
            now: lease,
            limit: 1,
            owner: "w3",
            leaseUntil: lease.adding(.seconds(30)),
            sources: sources
        )
        #expect(again == [Self.abandonedOnce(due[0])], "an expired lease is no lease (and counts as abandoned)")
    }

    /// Decision: `claimDue` with no sources claims nothing (it takes letters "of a source among `sources`").
    static func claimDueWithNoSources(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let (all, due) = claimFixture()
        try await store.append(all)
        let none = try await store.claimDue(
            now: now,
            limit: 100,
            owner: "w1",
            leaseUntil: now.adding(.seconds(30)),
            sources: []
        )
        #expect(none.isEmpty)
        let unknown = try await store.claimDue(
            now: now,
            limit: 100,
            owner: "w1",
            leaseUntil: now.adding(.seconds(30)),
            sources: ["nowhere"]
        )
        #expect(unknown.isEmpty)
        let later = try await store.claimDue(
            now: now,
            limit: 100,
            owner: "w1",
            leaseUntil: now.adding(.seconds(30)),
            sources: ["orders", "payments"]
        )
        #expect(later == due)
    }

    /// `claim(ids:)` leases the listed letters that have no live lease, whatever their status; missing ids
    /// and letters leased by another are left out. Decision: the claimed letters come back in id order.
    static func claimByIDs(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(5) { index, letter in letter.status = index == 2 ? .parked : .dead }
        try await store.append(letters)
        let lease = now.adding(.seconds(30))
        let first = try await store.claim(ids: [letters[1].id], now: now, owner: "w1", leaseUntil: lease)
        #expect(first == [letters[1]])
        let ids = [letters[3].id, DeadLetterFixtures.nextID(), letters[1].id, letters[2].id, letters[0].id]
        let second = try await store.claim(ids: ids, now: now, owner: "w2", leaseUntil: lease)
        #expect(second == [letters[0], letters[2], letters[3]])
        #expect(try await store.claim(ids: [], now: now, owner: "w2", leaseUntil: lease).isEmpty)
        let expired = try await store.claim(
            ids: [letters[1].id],
            now: lease,
            owner: "w3",
            leaseUntil: lease.adding(.seconds(30))
        )
        #expect(expired == [Self.abandonedOnce(letters[1])])
        #expect(try await store.complete(id: letters[1].id, owner: "w3"))
        #expect(try await store.complete(id: letters[0].id, owner: "w2"))
        #expect(try await everything(store) == [letters[2], letters[3], letters[4]])
    }

    /// `complete` removes a letter only for the owner of its lease, once; not for another owner, not for
    /// a letter without a lease.
    static func completeOnlyByOwner(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(2) { _, letter in
            letter.status = .retrying
            letter.nextAttemptAt = letter.lastFailedAt
        }
        try await store.append(letters)
        let claimed = try await store.claimDue(
            now: now,
            limit: 1,
            owner: "w1",
            leaseUntil: now.adding(.seconds(30)),
            sources: ["orders"]
        )
        #expect(claimed == [letters[0]])
        #expect(try await store.complete(id: letters[0].id, owner: "w2") == false)
        #expect(try await store.letter(id: letters[0].id) == letters[0])
        #expect(try await store.complete(id: letters[1].id, owner: "w1") == false, "no lease, nothing to complete")
        #expect(try await store.complete(id: letters[0].id, owner: "w1"))
        #expect(try await store.letter(id: letters[0].id) == nil)
        #expect(try await store.complete(id: letters[0].id, owner: "w1") == false)
        #expect(try await store.usage() == usageOf([letters[1]]))
    }

    /// Decision: `complete` and `release` take no `now`, so the owner keeps its lease after the expiry until
    /// another owner claims the letter; from then on the first owner's calls return `false`.
    static func completeAfterLeaseTakenOver(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(2) { _, letter in
            letter.status = .retrying
            letter.nextAttemptAt = letter.lastFailedAt
        }
        try await store.append(letters)
        let lease = now.adding(.seconds(30))
        _ = try await store.claim(ids: [letters[0].id, letters[1].id], now: now, owner: "w1", leaseUntil: lease)
        let taken = try await store.claimDue(
            now: lease,
            limit: 1,
            owner: "w2",
            leaseUntil: lease.adding(.seconds(30)),
            sources: ["orders"]
        )
        #expect(taken == [Self.abandonedOnce(letters[0])])
        #expect(try await store.complete(id: letters[0].id, owner: "w1") == false)
        #expect(try await store.release(letters[0], owner: "w1") == false)
        #expect(try await store.complete(id: letters[1].id, owner: "w1"), "an expired lease nobody took is still held")
        #expect(try await store.complete(id: letters[0].id, owner: "w2"))
        #expect(try await store.count(DeadLetterFilter()) == 0)
    }

    /// `release` writes nothing unless `owner` holds the lease.
    static func releaseOnlyByOwner(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(2) { _, letter in
            letter.status = .retrying
            letter.nextAttemptAt = letter.lastFailedAt
        }
        try await store.append(letters)
        _ = try await store.claim(ids: [letters[0].id], now: now, owner: "w1", leaseUntil: now.adding(.seconds(30)))
        var changed = letters[0]
        changed.status = .dead
        changed.nextAttemptAt = nil
        changed.errorMessage = "changed by the wrong owner"
        #expect(try await store.release(changed, owner: "w2") == false)
        #expect(try await store.letter(id: letters[0].id) == letters[0])
        var unleased = letters[1]
        unleased.attempts = 9
        #expect(try await store.release(unleased, owner: "w1") == false, "no lease, nothing to release")
        #expect(try await store.letter(id: letters[1].id) == letters[1])
        #expect(try await store.release(DeadLetterFixtures.letter(), owner: "w1") == false, "an unknown id")
        #expect(try await store.count(DeadLetterFilter()) == 2)
    }

    /// `release` by the owner writes the letter's new state (status, attempts, times, reason, error, causes,
    /// fingerprint, replay count, history, expiry) and ends the lease, so anyone can claim it at once.
    static func releaseWritesStateAndEndsLease(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(2) { _, letter in
            letter.status = .retrying
            letter.nextAttemptAt = letter.lastFailedAt
        }
        try await store.append(letters)
        let lease = now.adding(.seconds(30))
        let claimed = try await store.claimDue(now: now, limit: 1, owner: "w1", leaseUntil: lease, sources: ["orders"])
        var next = try #require(claimed.first)
        next.attempts += 1
        next.lastFailedAt = now
        next.nextAttemptAt = now.adding(.seconds(120)).roundedToMilliseconds
        next.reason = .timeout
        next.errorType = "TimeoutError"
        next.errorMessage = "a much longer error message than the one before"
        next.causes = ["NIO: connection reset"]
        next.fingerprint = "fp-new"
        next.replayCount = 1
        next.expiresAt = now.adding(.seconds(86_400)).roundedToMilliseconds
        next.history = [DeadLetter.HistoryEntry(event: .retried, at: now, outcome: .failed, errorMessage: "again")]
        #expect(try await store.release(next, owner: "w1"))
        #expect(try await store.letter(id: next.id) == next)
        #expect(try await store.usage() == usageOf([next, letters[1]]))
        #expect(try await store.release(next, owner: "w1") == false, "the lease ended")
        let other = try await store.claim(ids: [next.id], now: now, owner: "w2", leaseUntil: lease)
        #expect(other == [next], "a released letter can be claimed before the old lease's expiry")
        var dead = next
        dead.status = .dead
        dead.nextAttemptAt = nil
        #expect(try await store.release(dead, owner: "w2"))
        #expect(try await store.letter(id: next.id) == dead)
        #expect(
            try await store.claimDue(
                now: now.adding(.seconds(999)),
                limit: 10,
                owner: "w3",
                leaseUntil: now.adding(.seconds(1029)),
                sources: ["orders"]
            ) == [letters[1]]
        )
    }

    /// `write` applies each outcome only where `owner` holds the letter's lease, and answers for each in order:
    /// removals and new states (which end the lease) in one call, letters leased to another left as they are.
    static func writeOutcomesEachByOwner(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(4)
        try await store.append(letters)
        let lease = now.adding(.seconds(30))
        let ids = letters.map(\.id)
        let mine = try await store.claim(ids: Array(ids[0..<3]), now: now, owner: "w1", leaseUntil: lease)
        #expect(mine.map(\.id) == Array(ids[0..<3]))
        #expect(try await store.claim(ids: [ids[3]], now: now, owner: "w2", leaseUntil: lease).count == 1)
        var parked = mine[1]
        parked.status = .parked
        parked.history = [DeadLetter.HistoryEntry(event: .parked, at: now, outcome: .failed, errorMessage: "held")]
        var theirs = letters[3]
        theirs.status = .parked
        let written = try await store.write(
            [.complete(id: ids[0]), .release(parked), .complete(id: ids[3]), .release(theirs), .complete(id: ids[2])],
            owner: "w1"
        )
        #expect(written == [true, true, false, false, true])
        #expect(try await everything(store) == [parked, letters[3]])
        #expect(try await store.usage() == usageOf([parked, letters[3]]))
        let again = try await store.claim(ids: [ids[1], ids[3]], now: now, owner: "w3", leaseUntil: lease)
        #expect(again == [parked], "the release ended w1's lease; w2's is live")
    }
}

extension DeadLetterStoreConformance {
    /// `letter` as a claim returns it after one claim of it ended without an outcome.
    static func abandonedOnce(_ letter: DeadLetter) -> DeadLetter {
        var letter = letter
        letter.abandonedClaims += 1
        return letter
    }
}
