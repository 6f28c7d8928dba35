import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import GRDB
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A store whose file is not what it should be: a FIFO, deleted or replaced while open, damaged, read-only,
/// and what closing leaves behind.
@Suite("SQLite store file safety")
struct SQLiteFileSafetyTests {
    @Test func fifoAtThePathIsRefusedWithoutOpeningIt() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        #expect(mkfifo(path, 0o600) == 0)
        // Should the store open the FIFO, a writer arrives after 3 s, so that the test ends (and fails).
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 3)
            for _ in 0..<200 {
                let fd = open(path, O_WRONLY | O_NONBLOCK)
                if fd >= 0 {
                    close(fd)
                    return
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(throws: DeadLetterError.self) { try SQLiteDeadLetterStore(path: path) }
        #expect(clock.now - start < .seconds(2), "opening the store waited on the FIFO")
        #expect(error.code == .notAStore)
        #expect(error.description.contains("a FIFO (named pipe), not a regular file"), "\(error)")
    }

    @Test func deletedStoreFileIsNeitherReadNorWritten() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        defer { try? store.close() }
        try await store.append([DeadLetterFixtures.letter()])
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }

        let append = await #expect(throws: DeadLetterError.self) {
            try await store.append([DeadLetterFixtures.letter()])
        }
        #expect(append?.code == .storeUnavailable)
        #expect(
            append?.description.contains("was deleted after it was opened") == true,
            "\(String(describing: append))"
        )
        let count = await #expect(throws: DeadLetterError.self) { try await store.count(DeadLetterFilter()) }
        #expect(count?.code == .storeUnavailable)
        let redrive = await #expect(throws: DeadLetterError.self) {
            try await store.redrive(DeadLetterFilter(), now: Date(), limit: nil)
        }
        #expect(redrive?.code == .storeUnavailable)
        #expect(!FileManager.default.fileExists(atPath: path), "nothing recreated the file")
    }

    @Test func replacedStoreFileIsNeitherReadNorWritten() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let other = folder.file("other.sqlite")
        let store = try SQLiteDeadLetterStore(path: path)
        defer { try? store.close() }
        try await store.append([DeadLetterFixtures.letter()])
        let replacement = try SQLiteDeadLetterStore(path: other)
        try replacement.close()
        // As a restore would: the new file in place, the old one's log gone.
        #expect(rename(other, path) == 0)
        for suffix in ["-wal", "-shm"] { unlink(path + suffix) }

        let error = await #expect(throws: DeadLetterError.self) {
            try await store.append([DeadLetterFixtures.letter()])
        }
        #expect(error?.description.contains("replaced by another file") == true, "\(String(describing: error))")
        let reopened = try SQLiteDeadLetterStore(path: path)
        defer { try? reopened.close() }
        #expect(try await reopened.count(DeadLetterFilter()) == 0, "nothing was written into the new file")
    }

    /// The root page of `name` in the store at `path` (closed), read with a plain connection.
    private func rootPage(_ name: String, in path: String) throws -> (page: Int, size: Int) {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            let page = try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_schema WHERE name = ?", arguments: [name])
            let size = try Int.fetchOne(db, sql: "PRAGMA page_size")
            return (page ?? 0, size ?? 0)
        }
    }

    /// Overwrites the first `count` bytes of page `page` (counting from 1) with `byte`.
    private func damage(_ path: String, page: Int, size: Int, byte: UInt8 = 0x07, count: Int = 1) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64((page - 1) * size))
        try handle.write(contentsOf: Data(repeating: byte, count: count))
        try handle.close()
    }

    @Test func damageReportedOnceStopsEveryWrite() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        var store = try SQLiteDeadLetterStore(path: path)
        try await store.append((0..<20).map { _ in DeadLetterFixtures.letter() })
        try store.close()
        // The index of due letters is read only by letters waiting for a retry.
        let (page, size) = try self.rootPage("dlq_letters_due", in: path)
        try self.damage(path, page: page, size: size)

        store = try SQLiteDeadLetterStore(path: path)
        defer { try? store.close() }
        let first = await #expect(throws: DeadLetterError.self) {
            try await store.append([DeadLetterFixtures.letter(status: .retrying)])
        }
        #expect(first?.code == .notAStore)
        #expect(first?.description.contains("damaged") == true)
        #expect(first?.description.contains("dlq check") == true, "\(String(describing: first))")
        // A letter that would not touch the damaged page is refused too, and so is any other write.
        let second = await #expect(throws: DeadLetterError.self) {
            try await store.append([DeadLetterFixtures.letter(status: .dead)])
        }
        #expect(second?.description.contains("dlq check") == true, "\(String(describing: second))")
        await #expect(throws: DeadLetterError.self) { try await store.delete(ids: ["x"]) }
        // Reading goes on, so that what can be read can be exported.
        #expect(try await store.count(DeadLetterFilter()) == 20)
        let check = try SQLiteStoreCheck.run(path: path)
        #expect(!check.isSound)
        #expect(check.problems.contains { $0.contains("integrity check") }, "\(check.problems)")
    }

    @Test func checkFindsTotalsRowsAndPagesThatAreWrong() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        let letters = (0..<30).map { index in DeadLetterFixtures.letter(source: index % 3 == 0 ? "emails" : "orders") }
        try await store.append(letters)
        try store.close()

        let sound = try SQLiteStoreCheck.run(path: path)
        #expect(sound.isSound, "\(sound.problems)")
        #expect(sound.letters == 30)
        #expect(sound.schemaVersion == SQLiteDeadLetterStore.schemaVersion)
        #expect(sound.notes.isEmpty)

        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "UPDATE dlq_tallies SET count = count + 2 WHERE source = 'emails'")
            try db.execute(sql: "UPDATE dlq_groups SET count = count - 1 WHERE source = 'orders'")
            try db.execute(sql: "UPDATE dlq_letters SET status = 'zombie' WHERE id = ?", arguments: [letters[4].id])
        }
        try queue.close()
        let wrong = try SQLiteStoreCheck.run(path: path)
        #expect(wrong.letters == 30)
        #expect(wrong.problems.count == 3, "\(wrong.problems)")
        #expect(
            wrong.problems.contains {
                $0.contains("dlq_tallies") && $0.contains("source 'emails'") && $0.contains("12 letters")
                    && $0.contains("10 letters")
            },
            "\(wrong.problems)"
        )
        #expect(wrong.problems.contains { $0.contains("dlq_groups") }, "\(wrong.problems)")
        #expect(
            wrong.problems.contains { $0.contains("letter \(letters[4].id)") && $0.contains("'zombie'") },
            "\(wrong.problems)"
        )
        #expect(try #require(FileManager.default.contents(atPath: path)).count > 0)
    }

    @Test func checkFindsDamagedPagesAndNotesAnOlderSchema() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        try await store.append((0..<50).map { _ in DeadLetterFixtures.letter() })
        try store.close()
        let (page, size) = try self.rootPage("dlq_letters_source", in: path)
        // Bytes of index entries (past the page header) changed: rows and index disagree.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(page * size - 600))
        try handle.write(contentsOf: Data(repeating: 0x5A, count: 300))
        try handle.close()
        let queue = try DatabaseQueue(path: path)
        try await queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = 1") }
        try queue.close()

        let check = try SQLiteStoreCheck.run(path: path)
        #expect(!check.isSound)
        #expect(check.problems.contains { $0.contains("integrity check") }, "\(check.problems)")
        #expect(check.schemaVersion == 1)
        #expect(check.notes.contains { $0.contains("older") }, "\(check.notes)")
    }

    @Test func damagedRowNamesTheLetterAndTheFile() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path)
        defer { try? store.close() }
        let letter = DeadLetterFixtures.letter()
        try await store.append([letter])
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "UPDATE dlq_letters SET status = 'zombie' WHERE id = ?", arguments: [letter.id])
        }
        try queue.close()
        let error = await #expect(throws: DeadLetterError.self) { try await store.letter(id: letter.id) }
        #expect(error?.description.contains(path) == true, "\(String(describing: error))")
        #expect(error?.description.contains(letter.id) == true, "\(String(describing: error))")
        #expect(error?.description.contains("unknown status 'zombie'") == true)
    }

    @Test func readOnlyStoreReadsAndNeverWrites() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let writer = try SQLiteDeadLetterStore(path: path)
        try await writer.append((0..<5).map { _ in DeadLetterFixtures.letter() })
        try writer.close()

        let store = try SQLiteDeadLetterStore(configuration: .init(path: path, readOnly: true))
        #expect(try await store.count(DeadLetterFilter()) == 5)
        #expect(try await store.summary(DeadLetterFilter(), now: Date()).total == 5)
        let append = await #expect(throws: DeadLetterError.self) {
            try await store.append([DeadLetterFixtures.letter()])
        }
        #expect(append?.code == .unsupported)
        await #expect(throws: DeadLetterError.self) { try await store.delete(ids: ["x"]) }
        try store.close()

        let missing = #expect(throws: DeadLetterError.self) {
            try SQLiteDeadLetterStore(configuration: .init(path: folder.file("missing.sqlite"), readOnly: true))
        }
        #expect(missing?.code == .storeUnavailable)
        #expect(!FileManager.default.fileExists(atPath: folder.file("missing.sqlite")))

        // An older schema is not migrated read-only: it is refused, and the file is left as it was.
        let queue = try DatabaseQueue(path: path)
        try await queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = 1") }
        try queue.close()
        let old = #expect(throws: DeadLetterError.self) {
            try SQLiteDeadLetterStore(configuration: .init(path: path, readOnly: true))
        }
        #expect(old?.code == .incompatibleStore)
        #expect(old?.description.contains("schema version 1") == true, "\(String(describing: old))")
        #expect(old?.description.contains("read-only") == true)
        let plain = try DatabaseQueue(path: path)
        let version = try await plain.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") }
        try plain.close()
        #expect(version == 1)
    }

    @Test(
        .enabled(if: Immutable.available, "needs chattr +i (root with CAP_LINUX_IMMUTABLE on ext4 or similar)")
    )
    func storeThatCannotBeWrittenIsReadImmutableAndCreatesNothing() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let writer = try SQLiteDeadLetterStore(path: path)
        try await writer.append((0..<5).map { _ in DeadLetterFixtures.letter() })
        try writer.close()
        let before = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        try Immutable.set([path, folder.path])
        defer { try? Immutable.clear([path, folder.path]) }

        let store = try SQLiteDeadLetterStore(configuration: .init(path: path, readOnly: true))
        #expect(try await store.page(DeadLetterFilter(), after: nil, limit: 10).letters.count == 5)
        try store.close()
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == before)

        let writing = #expect(throws: DeadLetterError.self) { try SQLiteDeadLetterStore(path: path) }
        #expect(writing?.code == .storeUnavailable)
        #expect(writing?.description.contains("cannot be written") == true, "\(String(describing: writing))")
    }

    @Test(
        .enabled(if: Immutable.available, "needs chattr +i (root with CAP_LINUX_IMMUTABLE on ext4 or similar)")
    )
    func logThatCannotBeReadIsSaidSo() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let copy = try TemporaryFolder()
        defer { copy.remove() }
        // A copy taken while the store was open: its letters are in the log ('-wal'), not yet in the file.
        let writer = try SQLiteDeadLetterStore(path: path)
        try await writer.append((0..<5).map { _ in DeadLetterFixtures.letter() })
        for suffix in ["", "-wal"] {
            try FileManager.default.copyItem(atPath: path + suffix, toPath: copy.file() + suffix)
        }
        try writer.close()
        let files = [copy.file(), copy.file() + "-wal", copy.path]
        try Immutable.set(files)
        defer { try? Immutable.clear(files) }
        let error = #expect(throws: DeadLetterError.self) {
            try SQLiteDeadLetterStore(configuration: .init(path: copy.file(), readOnly: true))
        }
        #expect(error?.description.contains("log ('-wal') holds commits") == true, "\(String(describing: error))")
    }

    @Test func closingCopiesTheLogIntoTheFileAndEmptiesIt() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        let store = try SQLiteDeadLetterStore(path: path, durability: .fast)
        for chunk in 0..<100 {
            try await store.append(
                (0..<100).map { index in DeadLetterFixtures.letter(fingerprint: "f\(chunk * 100 + index)") }
            )
        }
        var info = stat()
        #expect(stat(path + "-wal", &info) == 0 && info.st_size > 1 << 20, "the log holds the letters")
        // A read opens a reading connection; GRDB closes readers after the writer, and a reader cannot empty
        // the log.
        #expect(try await store.count(DeadLetterFilter()) == 10_000)
        try store.close()
        let wal = stat(path + "-wal", &info) == 0 ? Int(info.st_size) : 0
        #expect(wal == 0, "\(wal) bytes left in the log after close")
        let reopened = try SQLiteDeadLetterStore(configuration: .init(path: path, readOnly: true))
        defer { try? reopened.close() }
        #expect(try await reopened.count(DeadLetterFilter()) == 10_000)
    }
}

/// `chattr +i`: a file or folder that even root cannot change, to test read-only stores while tests run as
/// root (root ignores mode bits, but not the immutable flag).
enum Immutable {
    /// Whether `chattr +i` works here: root with CAP_LINUX_IMMUTABLE, on a file system that has the flag.
    static let available: Bool = {
        let path = FileManager.default.temporaryDirectory.path + "/dlq-chattr-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: path, contents: Data()) else { return false }
        defer {
            try? Self.clear([path])
            try? FileManager.default.removeItem(atPath: path)
        }
        guard (try? Self.set([path])) != nil else { return false }
        return access(path, W_OK) != 0
    }()

    static func set(_ paths: [String]) throws { try Self.chattr("+i", paths) }
    static func clear(_ paths: [String]) throws { try Self.chattr("-i", paths) }

    private static func chattr(_ flag: String, _ paths: [String]) throws {
        let tool = ["/usr/bin/chattr", "/bin/chattr", "/sbin/chattr"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let tool else { throw CocoaError(.featureUnsupported) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = [flag] + paths
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteNoPermission) }
    }
}
