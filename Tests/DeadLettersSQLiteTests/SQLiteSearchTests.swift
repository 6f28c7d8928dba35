import DeadLetters
import DeadLettersTesting
import Foundation
import GRDB
import Testing

@testable import DeadLettersSQLite

/// Schema version 5: the trigram search index and the metadata table, their backfill on migration, and the
/// indexes each sort and search is served by.
@Suite("SQLite search and sorting")
struct SQLiteSearchTests {
    func letters() -> [DeadLetter] {
        (0..<40).map { index in
            DeadLetterFixtures.letter(
                errorMessage: "failed \(index)",
                metadata: ["tenant": index % 2 == 0 ? "acme" : "globex", "sku": "SKU-\(1000 + index)"],
                payload: Data(#"{"order":"ord-\#(10_000 + index)"}"#.utf8)
            )
        }
    }

    @Test func aVersion4StoreIsMigratedAndItsLettersAreSearchable() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        var store = try SQLiteDeadLetterStore(path: path)
        let letters = self.letters()
        try await store.append(letters)
        try store.close()
        // Make the file what version 4 wrote: no search table, metadata table, triggers or sort indexes.
        let queue = try DatabaseQueue(path: path)
        try await queue.writeWithoutTransaction { db in
            for trigger in ["inserted", "deleted", "updated"] {
                try db.execute(sql: "DROP TRIGGER dlq_letters_search_\(trigger)")
            }
            try db.execute(sql: "DROP TABLE dlq_search")
            try db.execute(sql: "DROP TABLE dlq_letter_meta")
            try db.execute(sql: "DROP INDEX dlq_letters_attempts")
            try db.execute(sql: "DROP INDEX dlq_letters_last_failed")
            try db.execute(sql: "CREATE INDEX dlq_letters_last_failed ON dlq_letters (last_failed_at)")
            try db.execute(sql: "PRAGMA user_version = 4")
        }
        try queue.close()

        store = try SQLiteDeadLetterStore(path: path)
        defer { try? store.close() }
        #expect(store.previousSchemaVersion == 4)
        let found = try await store.page(DeadLetterFilter(search: "ORD-10017"), after: nil, limit: 10)
        #expect(found.letters.map(\.id) == [letters[17].id])
        #expect(try await store.count(DeadLetterFilter(metadata: ["tenant": "acme"])) == 20)
        #expect(try await store.count(DeadLetterFilter(search: "sku-100")) == 10)
        let sorted = try await store.page(DeadLetterFilter(), sortedBy: .lastFailed, after: nil, limit: 3)
        #expect(sorted.letters.count == 3)
        #expect(try await store.integrityCheck() == ["ok"])
        let rows = try await store.read { db in
            (
                try Int.fetchOne(db, sql: #"SELECT count(*) FROM dlq_search WHERE dlq_search MATCH '"ord"'"#) ?? -1,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM dlq_letter_meta") ?? -1
            )
        }
        #expect(rows.0 == 40 && rows.1 == 80)
    }

    @Test func lettersWaitingForTheIndexAreFoundAndIndexedOnceAThousandWait() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        defer { try? store.close() }
        let letters = self.letters()
        func pending() async throws -> (Int, Int) {
            try await store.read { db in
                (
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM dlq_search_pending") ?? -1,
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM dlq_search_deleted") ?? -1
                )
            }
        }
        try await store.append(letters)
        #expect(try await pending() == (40, 0), "a small append leaves its letters waiting for the index")
        #expect(try await store.count(DeadLetterFilter(search: "ord-1000")) == 10, "found while waiting")
        // An import indexes everything waiting.
        _ = try await store.importLetters(AsyncLetters(letters: letters), onConflict: .skip)
        #expect(try await pending() == (0, 0))
        // Another SQLite connection (no store, no dlq_payload_text) changes a payload and a message.
        let other = try DatabaseQueue(path: path)
        try await other.write { db in
            try db.execute(
                sql: "UPDATE dlq_letters SET payload = CAST(? AS BLOB), error_message = ? WHERE id = ?",
                arguments: [#"{"order":"ord-77777"}"#, "edited elsewhere", letters[5].id]
            )
        }
        try other.close()
        #expect(try await pending() == (1, 1), "waiting for the index")
        #expect(try await store.count(DeadLetterFilter(search: "ORD-77777")) == 1, "found while pending")
        #expect(try await store.count(DeadLetterFilter(search: "ord-10005")) == 0)
        #expect(try await store.count(DeadLetterFilter(search: "elsewhere")) == 1)
        #expect(try await store.delete(ids: [letters[0].id, letters[1].id]) == 2)
        #expect(try await pending() == (1, 3), "removed letters wait to leave the index")
        #expect(try await store.count(DeadLetterFilter(search: "ord-1000")) == 7, "gone at once from answers")
        // Once a thousand wait, the next write indexes them.
        let more = DeadLetterFixtures.letters(count: SQLiteSearch.flushThreshold, interval: .milliseconds(1))
        try await store.append(more)
        #expect(try await pending() == (0, 0))
        #expect(try await store.count(DeadLetterFilter(search: "ORD-77777")) == 1, "found through the index")
        #expect(try await store.count(DeadLetterFilter(search: "ord-1000")) == 7)
        try await store.write { db in
            try db.execute(sql: "INSERT INTO dlq_search (dlq_search) VALUES ('integrity-check')")
        }
    }

    @Test func aCommonTextIsSearchedInThePagesOrderWithTheSameAnswers() async throws {
        let store = try makeFreshStore()
        let letters = DeadLetterFixtures.letters(count: 2500, interval: .milliseconds(5)) { index, letter in
            letter.errorMessage = index % 25 == 0 ? "rejected" : "request timed out after \(index) ms"
            letter.attempts = 1 + index % 7
            letter.payload = Data(#"{"n":\#(index)}"#.utf8)
        }
        try await store.append(letters)
        let filter = DeadLetterFilter(search: "TIMED OUT")
        let common = try await store.read { db in try SQLiteDeadLetterStore.isCommonSearch(filter, db) }
        #expect(common, "more candidates than commonSearchCandidates")
        for sort in [DeadLetterSort.id, .attempts, .lastFailed] {
            let want = letters.filter(filter.matches).sorted { sort.orders($0, before: $1) }.map(\.id)
            let first = try await store.page(filter, sortedBy: sort, after: nil, limit: 100)
            #expect(first.letters.map(\.id) == Array(want.prefix(100)), "\(sort)")
            let second = try await store.page(filter, sortedBy: sort, after: first.nextCursor, limit: 100)
            #expect(second.letters.map(\.id) == Array(want[100..<200]), "\(sort)")
        }
        #expect(try await store.count(filter) == 2400)
        // A metadata pair every letter holds, with a narrower one: the same pages either way.
        try await store.append(
            DeadLetterFixtures.letters(count: 2100, start: DeadLetterFixtures.epoch.addingTimeInterval(60)) {
                index,
                letter in
                letter.metadata = ["tenant": "acme", "shop": "s\(index % 3)"]
                letter.source = index % 2 == 0 ? "orders" : "emails"
            }
        )
        let everyone = DeadLetterFilter(sources: ["orders"], metadata: ["tenant": "acme"])
        #expect(try await store.read { db in try SQLiteDeadLetterStore.isCommonMetadata(everyone, db) })
        let all = try await store.page(DeadLetterFilter(), after: nil, limit: 10_000).letters
        for pairs in [everyone, DeadLetterFilter(metadata: ["tenant": "acme", "shop": "s1"])] {
            let want = all.filter(pairs.matches).map(\.id)
            let page = try await store.page(pairs, after: nil, limit: 100)
            #expect(page.letters.map(\.id) == Array(want.prefix(100)))
            #expect(try await store.count(pairs) == want.count)
        }
    }

    /// What SQLite's planner says it does for `sql`.
    func plan(_ store: SQLiteDeadLetterStore, _ sql: String, _ arguments: StatementArguments) async throws -> String {
        try await store.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments)
                .map { row in row["detail"] as String? ?? "" }.joined(separator: "\n")
        }
    }

    @Test func eachSortReadsAnIndexInOrderAndASearchReadsTheTrigramIndex() async throws {
        let store = try makeFreshStore()
        try await store.append(self.letters())
        let indexes: [(DeadLetterSort, String)] = [
            (.lastFailed, "dlq_letters_last_failed"), (.firstFailed, "dlq_letters_first_failed"),
            (.attempts, "dlq_letters_attempts"), (.source, "dlq_letters_source"),
        ]
        for (sort, index) in indexes {
            let first = try await store.page(DeadLetterFilter(), sortedBy: sort, after: nil, limit: 5)
            let cursor = try #require(first.nextCursor)
            let (sql, arguments) = try SQLiteDeadLetterStore.pageQuery(
                DeadLetterFilter(),
                sortedBy: sort,
                after: cursor,
                limit: 5
            )
            let plan = try await self.plan(store, sql, arguments)
            #expect(plan.contains(index), "\(sort): \(plan)")
            #expect(!plan.contains("TEMP B-TREE"), "\(sort) sorts nothing: \(plan)")
        }
        let (search, searchArguments) = try SQLiteDeadLetterStore.pageQuery(
            DeadLetterFilter(search: "ord-10017"),
            sortedBy: .lastFailed,
            after: nil,
            limit: 100
        )
        let searchPlan = try await self.plan(store, search, searchArguments)
        #expect(searchPlan.contains("VIRTUAL TABLE INDEX"), "\(searchPlan)")
        let (meta, metaArguments) = try SQLiteDeadLetterStore.pageQuery(
            DeadLetterFilter(metadata: ["tenant": "acme"]),
            sortedBy: .id,
            after: nil,
            limit: 100
        )
        let metaPlan = try await self.plan(store, meta, metaArguments)
        #expect(
            metaPlan.contains("dlq_letter_meta USING PRIMARY KEY") || metaPlan.contains("USING COVERING INDEX"),
            "\(metaPlan)"
        )
    }
}
