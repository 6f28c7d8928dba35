import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite struct JSONLinesTests {
    /// A fresh folder for one test, removed when the test ends.
    final class TemporaryFolder {
        let path: String
        init() throws {
            self.path = FileManager.default.temporaryDirectory.appendingPathComponent("dlq-jsonl-\(UUID())").path
            try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: false)
        }
        deinit { try? FileManager.default.removeItem(atPath: self.path) }
        func file(_ name: String) -> String { self.path + "/" + name }
    }

    static func letters(_ count: Int, seed: UInt64 = 1) -> [DeadLetter] {
        var random = CodecRandom(seed: seed)
        return (0..<count).map { CodecTests.randomLetter(index: $0, using: &random) }
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func mode(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int)
    }

    @Test func writesAndReadsBackManyLetters() throws {
        let folder = try TemporaryFolder()
        let path = folder.file("export.jsonl")
        let letters = Self.letters(3000)
        let writer = try JSONLinesWriter(path: path)
        try writer.write(contentsOf: letters)
        try writer.sync()
        try writer.close()
        #expect(writer.count == 3000)
        #expect(try Self.mode(of: path) == 0o600)

        // Exactly the canonical lines.
        let expected = letters.map { DeadLetterJSON.string($0) + "\n" }.joined()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == expected)

        let reader = try JSONLinesReader(path: path)
        var read: [DeadLetter] = []
        while let (line, letter) = try reader.next() {
            #expect(line == read.count + 1)
            read.append(letter)
        }
        #expect(read == letters)
        #expect(try JSONLinesReader.validate(path: path) == 3000)
    }

    @Test func refusesToReplaceAFileUnlessAppending() throws {
        let folder = try TemporaryFolder()
        let path = folder.file("out.jsonl")
        try Self.write("keep me\n", to: path)
        let error = try #require(throws: DeadLetterError.self) { try JSONLinesWriter(path: path) }
        #expect(error.code == .io)
        #expect(error.file == path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me\n")

        let letters = Self.letters(2)
        let writer = try JSONLinesWriter(path: path, append: true)
        try writer.write(letters[0])
        try writer.close()
        try writer.close()  // again: nothing
        #expect(throws: DeadLetterError.self) { try writer.write(letters[1]) }
        #expect(
            try String(contentsOfFile: path, encoding: .utf8) == "keep me\n" + DeadLetterJSON.string(letters[0]) + "\n"
        )

        // Appending creates a missing file, with mode 0600.
        let fresh = folder.file("fresh.jsonl")
        let appender = try JSONLinesWriter(path: fresh, append: true)
        try appender.write(letters[1])
        try appender.sync()
        try appender.close()
        #expect(try Self.mode(of: fresh) == 0o600)
        #expect(try JSONLinesReader.validate(path: fresh) == 1)

        // A missing folder is an error, not created.
        #expect(throws: DeadLetterError.self) { try JSONLinesWriter(path: folder.file("missing/out.jsonl")) }
    }

    @Test func writesAJSONArray() throws {
        let folder = try TemporaryFolder()
        let letters = Self.letters(5)
        let path = folder.file("export.json")
        let writer = try JSONLinesWriter(path: path, format: .jsonArray)
        try writer.write(contentsOf: letters)
        try writer.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try JSONDecoder().decode([DeadLetter].self, from: data) == letters)

        let empty = folder.file("empty.json")
        let emptyWriter = try JSONLinesWriter(path: empty, format: .jsonArray)
        try emptyWriter.close()
        #expect(try String(contentsOfFile: empty, encoding: .utf8) == "[]\n")
    }

    @Test func skipsBlankLinesAndReadsCRLFAndAByteOrderMark() throws {
        let folder = try TemporaryFolder()
        let path = folder.file("in.jsonl")
        let letters = Self.letters(3)
        let lines = letters.map { DeadLetterJSON.string($0) }
        // A BOM, CRLF line ends, blank and space-only lines, and a last line without a line break.
        try Self.write("\u{FEFF}" + lines[0] + "\r\n\n   \r\n\t\n" + lines[1] + "\r\n\n" + lines[2], to: path)
        let reader = try JSONLinesReader(path: path)
        var seen: [(Int, DeadLetter)] = []
        while let next = try reader.next() { seen.append(next) }
        #expect(seen.map(\.0) == [1, 5, 7])
        #expect(seen.map(\.1) == letters)
        #expect(try JSONLinesReader.validate(path: path) == 3)

        let emptyPath = folder.file("empty.jsonl")
        try Self.write("\n\n", to: emptyPath)
        #expect(try JSONLinesReader.validate(path: emptyPath) == 0)
    }

    @Test func aBadLineIsNamedWithItsFileAndNumber() async throws {
        let folder = try TemporaryFolder()
        let path = folder.file("bad.jsonl")
        let lines = Self.letters(5).map { DeadLetterJSON.string($0) }
        var bad = lines
        bad[2] = bad[2].replacingOccurrences(of: #""attempts":"#, with: #""attempts":"x","old":"#)
        try Self.write(bad.joined(separator: "\n") + "\n", to: path)

        let error = try #require(throws: DeadLetterError.self) { try JSONLinesReader.validate(path: path) }
        #expect(error.code == .invalidFormat)
        #expect(error.file == path)
        #expect(error.line == 3)
        #expect(error.field == "attempts")
        #expect(error.description == "\(path):3: field 'attempts': expected an integer, found a string")

        // Streaming into a store stops at the same line, and the store keeps nothing (all or nothing).
        let store = MemoryDeadLetterStore()
        await #expect(
            throws: DeadLetterError(
                code: .invalidFormat,
                message: "expected an integer, found a string",
                file: path,
                line: 3,
                field: "attempts"
            )
        ) {
            try await store.importLetters(JSONLinesFile(path: path), onConflict: .skip)
        }
        #expect(try await store.usage().count == 0)

        // A truncated last line (a crash while exporting) is named too.
        let truncated = folder.file("truncated.jsonl")
        try Self.write(lines[0] + "\n" + lines[1].dropLast(10), to: truncated)
        let truncatedError = try #require(throws: DeadLetterError.self) {
            try JSONLinesReader.validate(path: truncated)
        }
        #expect(truncatedError.line == 2)
        #expect(truncatedError.message.hasPrefix("not valid JSON at column"))
    }

    @Test func importsAFileIntoAStore() async throws {
        let folder = try TemporaryFolder()
        let path = folder.file("export.jsonl")
        let letters = Self.letters(200)
        let writer = try JSONLinesWriter(path: path)
        try writer.write(contentsOf: letters)
        try writer.close()

        #expect(try JSONLinesReader.validate(path: path) == 200)
        let store = MemoryDeadLetterStore()
        _ = try await store.importLetters(JSONLinesFile(path: path), onConflict: .skip)
        #expect(try await store.usage().count == 200)
        for letter in letters.prefix(20) {
            #expect(try await store.letter(id: letter.id) == letter)
        }
        // Iterating twice reads the file twice.
        var count = 0
        for try await _ in JSONLinesFile(path: path) { count += 1 }
        for try await _ in JSONLinesFile(path: path) { count += 1 }
        #expect(count == 400)
    }

    @Test func readsLinesLongerThanItsBufferAndRefusesHugeOnes() throws {
        let folder = try TemporaryFolder()
        let path = folder.file("big.jsonl")
        var big = Self.letters(1)[0]
        big.payload = Data((0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let small = Self.letters(3, seed: 9)
        let writer = try JSONLinesWriter(path: path)
        try writer.write(contentsOf: [small[0], big, small[1], big, small[2]])
        try writer.close()
        let reader = try JSONLinesReader(path: path)
        var read: [DeadLetter] = []
        while let (_, letter) = try reader.next() { read.append(letter) }
        #expect(read == [small[0], big, small[1], big, small[2]])

        let error = try #require(throws: DeadLetterError.self) {
            try JSONLinesReader.validate(path: path, maximumLineLength: 1 << 20)
        }
        #expect(error.line == 2)
        #expect(error.message == "line is longer than 1048576 bytes")
    }

    @Test func aMissingFileIsAnIOError() throws {
        let error = try #require(throws: DeadLetterError.self) {
            try JSONLinesReader.validate(path: "/nonexistent-dlq-folder/x.jsonl")
        }
        #expect(error.code == .io)
        #expect(error.file == "/nonexistent-dlq-folder/x.jsonl")
    }

    @Test func readsFromAFileDescriptor() throws {
        let folder = try TemporaryFolder()
        let path = folder.file("in.jsonl")
        let letters = Self.letters(4)
        try Self.write(letters.map { DeadLetterJSON.string($0) }.joined(separator: "\n"), to: path)
        let handle = try #require(FileHandle(forReadingAtPath: path))
        defer { try? handle.close() }
        let reader = JSONLinesReader(fileDescriptor: handle.fileDescriptor, name: "stdin")
        #expect(try reader.validateAll() == 4)
        #expect(reader.lineNumber == 4)
    }
}

extension JSONLinesTests {
    @Test func readsTheJSONArrayItsWriterWrites() throws {
        let folder = try TemporaryFolder()
        let letters = Self.letters(4)
        let path = folder.file("export.json")
        let writer = try JSONLinesWriter(path: path, format: .jsonArray)
        try writer.write(contentsOf: letters)
        try writer.close()
        let reader = try JSONLinesReader(path: path)
        var read: [(Int, DeadLetter)] = []
        while let next = try reader.next() { read.append(next) }
        #expect(read.map(\.0) == [2, 3, 4, 5])
        #expect(read.map(\.1) == letters)

        let empty = folder.file("empty.json")
        try Self.write("[]\n", to: empty)
        #expect(try JSONLinesReader.validate(path: empty) == 0)

        // Cut short: the closing bracket is missing.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let cut = folder.file("cut.json")
        try Self.write(String(text.dropLast(3)), to: cut)
        let error = try #require(throws: DeadLetterError.self) { try JSONLinesReader.validate(path: cut) }
        #expect(error.line == 5)
        #expect(error.message.contains("not closed"))

        // Something after the closing bracket.
        let after = folder.file("after.json")
        try Self.write(text + DeadLetterJSON.string(letters[0]) + "\n", to: after)
        #expect(throws: DeadLetterError.self) { try JSONLinesReader.validate(path: after) }

        // Brackets in a JSON Lines file are not JSON.
        let mixed = folder.file("mixed.jsonl")
        try Self.write(DeadLetterJSON.string(letters[0]) + "\n[\n", to: mixed)
        let mixedError = try #require(throws: DeadLetterError.self) { try JSONLinesReader.validate(path: mixed) }
        #expect(mixedError.line == 2)
    }
}
