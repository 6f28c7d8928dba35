import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import GRDB
import Testing

/// A replayed letter's outcome and its operation record commit together.
@Suite("SQLite outcome records")
struct SQLiteOutcomeRecordTests {
    @Test("an outcome whose operation record cannot be written is not written either")
    func outcomeAndRecordCommitTogether() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        let letters = (0..<2).map { _ in DeadLetterFixtures.letter(source: "orders") }
        try await store.append(letters)
        let now = Date()
        let operation = DeadLetterOperation(id: "op-1", kind: .replay, actor: "test", createdAt: now)
        try await store.createOperation(
            operation,
            letters: letters.map { DeadLetterOperationLetter(operation: "op-1", letterID: $0.id, outcome: .pending) }
        )
        _ = try await store.claim(ids: letters.map(\.id), now: now, owner: "o", leaseUntil: now.addingTimeInterval(60))
        // Another connection makes every change to an operation's set fail, as a crash between the two writes
        // would leave it.
        let other = try DatabaseQueue(path: path)
        try await other.write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER refuse_records BEFORE UPDATE ON dlq_operation_letters
                    BEGIN SELECT RAISE(ABORT, 'records refused'); END
                    """
            )
        }
        let record = DeadLetterOperationLetter(operation: "op-1", letterID: letters[0].id, outcome: .succeeded, at: now)
        await #expect(throws: DeadLetterError.self) {
            _ = try await store.write([.complete(id: letters[0].id)], owner: "o", recording: [record])
        }
        #expect(try await store.letter(id: letters[0].id) != nil, "the removal was rolled back with its record")
        try await other.write { db in try db.execute(sql: "DROP TRIGGER refuse_records") }
        try other.close()
        #expect(try await store.write([.complete(id: letters[0].id)], owner: "o", recording: [record]) == [true])
        #expect(try await store.letter(id: letters[0].id) == nil)
        #expect(try await store.operation(id: "op-1")?.counts.succeeded == 1)
        try store.close()
    }
}
