import DeadLetters
import DeadLettersTesting
import Foundation
import GRDB
import Testing

@testable import DeadLettersSQLite

@Suite("SQLite full sync after claims")
struct SQLiteSyncRestoreTests {
    @Test("if a claim could not restore full sync, the next add restores it before committing")
    func nextAddRestoresFullSync() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try SQLiteDeadLetterStore(path: folder.file(), durability: .durable)
        defer { try? store.close() }
        // What a claim whose restore failed leaves behind: the writer at NORMAL, and the flag set.
        try await store.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        store.syncRelaxed.withLock { $0 = true }

        try await store.append([DeadLetterFixtures.letter()])
        #expect(store.syncRelaxed.withLock { $0 } == false, "the add's commit put full sync back first")
        #expect(try await store.synchronousLevel() == 2)
        #expect(try await store.count(DeadLetterFilter()) == 1)
    }
}
