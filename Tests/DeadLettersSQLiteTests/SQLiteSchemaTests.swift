import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import GRDB
import Testing

/// Schema migrations on open, and the writes that share commits (concurrent completions).
@Suite("SQLite schema and shared commits")
struct SQLiteSchemaTests {
    /// The names of the indexes on `dlq_letters` that the schema created (not SQLite's own).
    func indexes(_ path: String) throws -> Set<String> {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            Set(
                try String.fetchAll(
                    db,
                    sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'dlq_letters' "
                        + "AND sql IS NOT NULL"
                )
            )
        }
    }

    @Test func aVersion1StoreIsMigratedOnOpenAndKeepsItsLetters() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let letters = (0..<30).map { index in
            DeadLetterFixtures.letter(
                source: index % 2 == 0 ? "orders" : "emails",
                reason: index % 3 == 0 ? .timeout : .validation
            )
        }
        var store = try SQLiteDeadLetterStore(path: path)
        try await store.append(letters)
        try store.close()
        #expect(try !self.indexes(path).contains("dlq_letters_reason"))
        #expect(try !self.indexes(path).contains("dlq_letters_error_type"))

        // Make the file what version 1 wrote: the two indexes version 2 dropped, and user_version 1.
        let queue = try DatabaseQueue(path: path)
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: "CREATE INDEX dlq_letters_reason ON dlq_letters (reason, id)")
            try db.execute(sql: "CREATE INDEX dlq_letters_error_type ON dlq_letters (error_type, id)")
            try db.execute(sql: "ALTER TABLE dlq_letters DROP COLUMN abandoned_claims")
            try db.execute(sql: "PRAGMA user_version = 1")
        }
        try queue.close()
        #expect(try self.indexes(path).isSuperset(of: ["dlq_letters_reason", "dlq_letters_error_type"]))

        store = try SQLiteDeadLetterStore(path: path)
        defer { try? store.close() }
        let indexes = try self.indexes(path)
        #expect(!indexes.contains("dlq_letters_reason"))
        #expect(!indexes.contains("dlq_letters_error_type"))
        #expect(indexes.contains("dlq_letters_source"))
        let reader = try DatabaseQueue(path: path)
        let version = try await reader.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") }
        try reader.close()
        #expect(version == SQLiteDeadLetterStore.schemaVersion)
        #expect(try await store.usage().count == 30)
        let timeouts = letters.filter { $0.reason == .timeout }.sorted { $0.id < $1.id }
        let page = try await store.page(
            DeadLetterFilter(reasons: [FailureReason.timeout.rawValue]),
            after: nil,
            limit: 100
        )
        #expect(page.letters == timeouts)
        #expect(try await store.integrityCheck() == ["ok"])
    }

    @Test func concurrentCompletionsShareCommitsAndEachGetsItsOwnAnswer() async throws {
        let store = try makeFreshStore()
        let now = Date()
        let letters = (0..<300).map { _ in DeadLetterFixtures.letter() }
        try await store.append(letters)
        let ids = letters.map(\.id)
        let claimed = try await store.claim(ids: ids, now: now, owner: "w1", leaseUntil: now.addingTimeInterval(60))
        #expect(claimed.count == 300)
        // Every third completion names another owner: it removes nothing and answers false.
        let answers = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask { (index, try await store.complete(id: id, owner: index % 3 == 0 ? "w2" : "w1")) }
            }
            var answers: [Int: Bool] = [:]
            for try await (index, answer) in group { answers[index] = answer }
            return answers
        }
        #expect(answers.count == 300)
        #expect(answers.allSatisfy { index, answer in answer == (index % 3 != 0) })
        #expect(try await store.usage().count == 100)
        for (index, id) in ids.enumerated() {
            #expect((try await store.letter(id: id) != nil) == (index % 3 == 0))
        }
        #expect(try await store.summary(DeadLetterFilter(), now: now).total == 100)
    }

    @Test func claimsLeaveTheWriterAtItsDurability() async throws {
        for durability in [SQLiteDeadLetterStore.Durability.durable, .fast] {
            let store = try makeFreshStore(durability: durability)
            let level = durability == .durable ? 2 : 1
            let letters = (0..<5).map { _ in
                DeadLetterFixtures.letter(status: .retrying, nextAttemptAt: DeadLetterFixtures.epoch)
            }
            try await store.append(letters)
            let now = Date()
            let ids = letters.map(\.id)
            let claimed = try await store.claim(ids: ids, now: now, owner: "w1", leaseUntil: now.addingTimeInterval(60))
            #expect(claimed.count == 5)
            #expect(try await store.synchronousLevel() == level)
            let due = try await store.claimDue(
                now: now.addingTimeInterval(120),
                limit: 10,
                owner: "w2",
                leaseUntil: now.addingTimeInterval(180),
                sources: ["orders"]
            )
            #expect(due.count == 5)
            #expect(try await store.synchronousLevel() == level)
            #expect(try await store.complete(id: ids[0], owner: "w2"))
            #expect(try await store.complete(id: ids[1], owner: "w1") == false)
            try store.close()
        }
    }

    @Test func anImportWithManyDistinctKeysKeepsExactTotals() async throws {
        let store = try makeFreshStore()
        // More distinct (fingerprint, source) keys than the import keeps in memory before writing them.
        let letters = (0..<9000).map { index in
            DeadLetterFixtures.letter(source: "s\(index % 3)", fingerprint: "fp-\(index)")
        }
        let stream = AsyncStream<DeadLetter> { continuation in
            for letter in letters { continuation.yield(letter) }
            continuation.finish()
        }
        let result = try await store.importLetters(stream, onConflict: .skip)
        #expect(result.inserted == 9000)
        #expect(try await store.usage().count == 9000)
        #expect(try await store.usage().bytes == letters.reduce(0) { $0 + $1.storageSize })
        let groups = try await store.groups(DeadLetterFilter(), limit: 20_000)
        #expect(groups.count == 9000)
        #expect(groups.allSatisfy { $0.count == 1 })
    }
}
