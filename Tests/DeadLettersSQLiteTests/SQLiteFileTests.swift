import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import GRDB
import Testing

/// Opening files that are not stores: each gives a clear error naming the path and leaves the bytes as they
/// were, with no WAL or shared-memory file created beside them.
@Suite("SQLite store files")
struct SQLiteFileTests {
    /// Opens `path` expecting `code`, and checks the file is unchanged and nothing was created beside it.
    func expectRefused(_ path: String, _ code: DeadLetterError.Code, mentioning words: String) throws {
        let before = FileManager.default.contents(atPath: path)
        let error = try #require(throws: DeadLetterError.self) { try SQLiteDeadLetterStore(path: path) }
        #expect(error.code == code)
        #expect(error.file == path)
        #expect(error.description.contains(path))
        #expect(error.description.contains(words), "\(error)")
        #expect(FileManager.default.contents(atPath: path) == before, "the file's bytes are unchanged")
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        #expect(!FileManager.default.fileExists(atPath: path + "-shm"))
    }

    @Test func garbageFileIsNotAStore() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        var random = SeededRandom(seed: 7)
        let bytes = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &random) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try self.expectRefused(path, .notAStore, mentioning: "not a SQLite database")
    }

    @Test func textFileIsNotAStore() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("notes.txt")
        try Data("id,source\n1,orders\n".utf8).write(to: URL(fileURLWithPath: path))
        try self.expectRefused(path, .notAStore, mentioning: "not a SQLite database")
    }

    @Test func emptyFileIsNotAStore() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        try self.expectRefused(path, .notAStore, mentioning: "empty")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 0)
    }

    @Test func otherApplicationsDatabaseIsNotAStore() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("app.db")
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            try db.execute(sql: "INSERT INTO customers (name) VALUES ('Ada')")
        }
        try queue.close()
        try self.expectRefused(path, .notAStore, mentioning: "another application")
    }

    @Test func blankSQLiteDatabaseIsNotAStore() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "PRAGMA user_version = 1") }
        try queue.close()
        try self.expectRefused(path, .notAStore, mentioning: "another application")
    }

    @Test func newerSchemaIsIncompatible() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        try await store.append([DeadLetterFixtures.letter()])
        try store.close()
        let queue = try DatabaseQueue(path: path)
        try await queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = 99") }
        try queue.close()
        try self.expectRefused(path, .incompatibleStore, mentioning: "schema version 99")
    }

    @Test func truncatedStoreIsNotAStore() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        let letters = (0..<300).map { _ in DeadLetterFixtures.letter(payload: Data(repeating: 42, count: 700)) }
        try await store.append(letters)
        try store.close()
        let whole = try #require(FileManager.default.contents(atPath: path))
        #expect(whole.count > 100_000)
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        try self.expectRefused(path, .notAStore, mentioning: "truncated")
    }

    @Test func missingFolderIsNeverCreated() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/missing/dead-letters.sqlite"
        let error = try #require(throws: DeadLetterError.self) { try SQLiteDeadLetterStore(path: path) }
        #expect(error.code == .storeUnavailable)
        #expect(error.description.contains(folder.path + "/missing"))
        #expect(error.description.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/missing"))
    }

    @Test func missingFileWithoutCreateIfMissing() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let configuration = SQLiteDeadLetterStore.Configuration(path: path, createIfMissing: false)
        let error = try #require(throws: DeadLetterError.self) {
            try SQLiteDeadLetterStore(configuration: configuration)
        }
        #expect(error.code == .storeUnavailable)
        #expect(error.file == path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test func newFilesHaveMode0600() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        try await store.append([DeadLetterFixtures.letter()])
        for file in [path, path + "-wal", path + "-shm"] {
            let mode = try #require(FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
            #expect(mode == 0o600, "\(file) has mode \(String(mode, radix: 8))")
        }
        // Nothing but the store and its WAL files is left in the folder (no temporary file).
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["dead-letters.sqlite", "dead-letters.sqlite-shm", "dead-letters.sqlite-wal"])
        try store.close()
    }

    @Test func durableModeVerifiesFullSync() async throws {
        let durable = try makeFreshStore(durability: .durable)
        #expect(try await durable.synchronousLevel() == 2)
        let fast = try makeFreshStore(durability: .fast)
        #expect(try await fast.synchronousLevel() == 1)
        #expect(try await durable.integrityCheck() == ["ok"])
    }

    @Test func reopeningKeepsLettersAndTotals() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let letters = (0..<50).map { index in
            DeadLetterFixtures.letter(source: index % 2 == 0 ? "orders" : "emails", attempts: index % 5 + 1)
        }
        let store = try SQLiteDeadLetterStore(path: path)
        try await store.append(letters)
        let usage = try await store.usage()
        try store.close()
        await #expect(throws: DeadLetterError.self) { try await store.count(DeadLetterFilter()) }
        let reopened = try SQLiteDeadLetterStore(path: path)
        #expect(try await reopened.usage() == usage)
        #expect(usage.count == 50)
        #expect(try await reopened.count(DeadLetterFilter(sources: ["emails"])) == 25)
        let all = try await reopened.page(DeadLetterFilter(), after: nil, limit: 100).letters
        #expect(all == letters)
    }
}

@Suite("SQLite store values")
struct SQLiteValueTests {
    @Test func stringsWithNULRoundTrip() async throws {
        let store = try makeFreshStore()
        let letter = DeadLetterFixtures.letter(
            source: "orders\u{0}eu",
            errorType: "Type\u{0}",
            errorMessage: "bad byte \u{0} in payload",
            causes: ["Inner: \u{0}"],
            metadata: ["key\u{0}": "value\u{0}"],
            contentType: "text/plain\u{0}"
        )
        try await store.append([letter])
        #expect(try await store.letter(id: letter.id) == letter)
        let page = try await store.page(DeadLetterFilter(), after: nil, limit: 10)
        #expect(page.letters == [letter])
        #expect(try await store.usage().bytes == letter.storageSize)
    }

    @Test func causesAndMetadataRoundTripEveryCharacter() async throws {
        let store = try makeFreshStore()
        let tricky = [
            "quote \" backslash \\ slash /", "tab\t newline\n return\r bell\u{7} esc\u{1B}", "é 日本 🎉", "", " ",
        ]
        let letter = DeadLetterFixtures.letter(
            causes: tricky,
            metadata: Dictionary(
                uniqueKeysWithValues: tricky.enumerated().map { ("k\($0.offset) \($0.element)", $0.element) }
            )
        )
        try await store.append([letter])
        #expect(try await store.letter(id: letter.id) == letter)
    }

    @Test func readsJSONWrittenByOtherWriters() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        let letter = DeadLetterFixtures.letter()
        try await store.append([letter])
        try store.close()
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(
                sql: #"UPDATE dlq_letters SET metadata = ?, causes = ? WHERE id = ?"#,
                arguments: [#"{ "a\/b" : "x\u00e9\ud83c\udf89" , "n":"1"}"#, #"[ "one" ,"tw\"o" ]"#, letter.id]
            )
        }
        try queue.close()
        let reopened = try SQLiteDeadLetterStore(path: path)
        let read = try #require(try await reopened.letter(id: letter.id))
        #expect(read.metadata == ["a/b": "xé🎉", "n": "1"])
        #expect(read.causes == ["one", "tw\"o"])
    }
}
