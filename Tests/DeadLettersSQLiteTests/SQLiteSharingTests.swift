import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import Testing

/// Several stores opened on one file, as several processes would: claims never overlap, and appends from
/// many tasks are all committed (group commit).
@Suite("SQLite store sharing")
struct SQLiteSharingTests {
    @Test func twoStoresOnOneFileNeverClaimTheSameLetter() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let first = try SQLiteDeadLetterStore(path: path)
        let second = try SQLiteDeadLetterStore(path: path)
        let now = DeadLetterFixtures.epoch.addingTimeInterval(3600)
        let letters = (0..<300).map { _ in
            DeadLetterFixtures.letter(source: "orders", status: .retrying, nextAttemptAt: DeadLetterFixtures.epoch)
        }
        try await first.append(letters)
        let counts = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<6 {
                let store = worker % 2 == 0 ? first : second
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let batch = try await store.claimDue(
                            now: now,
                            limit: 7,
                            owner: "worker-\(worker)",
                            leaseUntil: now.addingTimeInterval(60),
                            sources: ["orders"]
                        )
                        if batch.isEmpty { return mine }
                        mine.append(contentsOf: batch.map(\.id))
                    }
                }
            }
            var counts: [String: Int] = [:]
            for try await ids in group {
                for id in ids { counts[id, default: 0] += 1 }
            }
            return counts
        }
        #expect(counts.count == 300, "every due letter was claimed")
        #expect(counts.values.allSatisfy { $0 == 1 }, "no letter was claimed twice")
        // Once the leases expired, the letters are claimable again, from either store.
        let later = now.addingTimeInterval(61)
        let again = try await second.claimDue(
            now: later,
            limit: 1000,
            owner: "late",
            leaseUntil: later.addingTimeInterval(60),
            sources: ["orders"]
        )
        #expect(again.count == 300)
        #expect(try await first.claim(ids: [letters[0].id], now: later, owner: "x", leaseUntil: later).isEmpty)
    }

    @Test func concurrentAppendsFromTwoStoresAreAllCommitted() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let stores = [try SQLiteDeadLetterStore(path: path), try SQLiteDeadLetterStore(path: path)]
        let letters = (0..<640).map { index in DeadLetterFixtures.letter(source: "s\(index % 64)") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<64 {
                let store = stores[task % 2]
                let mine = letters.enumerated().filter { $0.offset % 64 == task }.map(\.element)
                group.addTask {
                    for letter in mine { try await store.append([letter]) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await stores[0].usage().count == 640)
        #expect(try await stores[1].count(DeadLetterFilter(sources: ["s7"])) == 10)
        let all = try await stores[1].page(DeadLetterFilter(), after: nil, limit: 1000).letters
        #expect(all == letters.sorted { $0.id < $1.id })
    }

    @Test func aFailingCallerDoesNotFailTheOthersInItsGroup() async throws {
        let store = try makeFreshStore()
        let existing = DeadLetterFixtures.letter()
        try await store.append([existing])
        let fresh = (0..<200).map { _ in DeadLetterFixtures.letter() }
        // Many concurrent callers share transactions; the duplicates fail alone.
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for (index, letter) in fresh.enumerated() {
                group.addTask {
                    if index % 10 == 0 {
                        do {
                            try await store.append([letter, existing])
                            return false
                        } catch let error as DeadLetterError {
                            return error.code == .duplicateID && error.id == existing.id
                        }
                    }
                    try await store.append([letter])
                    return true
                }
            }
            var all: [Bool] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.count == 200)
        #expect(outcomes.allSatisfy { $0 })
        // The 20 failing callers stored nothing, not even their own new letter; the 180 others are there.
        #expect(try await store.usage().count == 181)
        for (index, letter) in fresh.enumerated() {
            #expect(try await store.letter(id: letter.id) == (index % 10 == 0 ? nil : letter))
        }
    }
}
