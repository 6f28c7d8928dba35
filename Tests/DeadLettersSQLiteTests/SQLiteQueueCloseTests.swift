import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import Testing

@Suite("DeadLetterQueue.close() on SQLite")
struct SQLiteQueueCloseTests {
    @Test("closes the SQLite store without a cast, also through the encrypted wrapper")
    func closesTheStore() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try SQLiteDeadLetterStore(path: folder.file())
        let queue = try DeadLetterQueue(store: store)
        try await queue.add(
            payload: Data("{}".utf8),
            source: "orders",
            reason: .processing,
            errorType: "E",
            errorMessage: "m"
        )
        try await queue.close()
        await #expect(throws: DeadLetterError.self) { try await store.count(DeadLetterFilter()) }
        let reopened = try SQLiteDeadLetterStore(path: store.configuration.path)
        #expect(try await reopened.count(DeadLetterFilter()) == 1)
        let encrypted = try DeadLetterQueue(
            store: EncryptedDeadLetterStore.withoutKey(base: reopened)
        )
        try await encrypted.close()
        await #expect(throws: DeadLetterError.self) { try await reopened.count(DeadLetterFilter()) }
    }

    @Test("does nothing for the memory store")
    func memoryStore() async throws {
        let queue = try DeadLetterQueue(store: .memory)
        try await queue.close()
        #expect(try await queue.count() == 0)
    }
}
