import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

extension JSONLinesTests {
    @Test func theArchiveAppendsDurablyAndRestores() async throws {
        let folder = try TemporaryFolder()
        let path = folder.file("archive.jsonl")
        let clock = ManualClock()
        let archive = JSONLinesArchive(path: path, clock: clock)
        let letters = Self.letters(10)
        try await archive.archive([], reason: "expired")
        #expect(!FileManager.default.fileExists(atPath: path))

        try await archive.archive(Array(letters[0..<4]), reason: "expired")
        clock.advance(by: .seconds(90))
        try await archive.archive(Array(letters[4...]), reason: "purged")
        #expect(try Self.mode(of: path) == 0o600)

        // Each line: the canonical letter, then when and why it was archived.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 10)
        let at = Timestamp.format(clock.now())
        let before = Timestamp.format(clock.now().addingTimeInterval(-90))
        var first = DeadLetterJSON.string(letters[0])
        first.removeLast()
        #expect(lines[0] == first + #","archivedAt":"\#(before)","archiveReason":"expired"}"#)
        #expect(lines[9].hasSuffix(#","archivedAt":"\#(at)","archiveReason":"purged"}"#))

        // Restoring gives back the letters exactly.
        var restored: [DeadLetter] = []
        for try await letter in JSONLinesArchive.restore(from: path) { restored.append(letter) }
        #expect(restored == letters)
        let store = MemoryDeadLetterStore()
        let result = try await store.importLetters(JSONLinesArchive.restore(from: path), onConflict: .skip)
        #expect(result.inserted == 10)
    }

    @Test func concurrentArchivesKeepEveryLineWhole() async throws {
        let folder = try TemporaryFolder()
        let path = folder.file("archive.jsonl")
        let archive = JSONLinesArchive(path: path)
        let letters = Self.letters(400)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for chunk in 0..<40 {
                group.addTask {
                    try await archive.archive(Array(letters[(chunk * 10)..<(chunk * 10 + 10)]), reason: "pruned")
                }
            }
            try await group.waitForAll()
        }
        var ids: Set<String> = []
        for try await letter in JSONLinesFile(path: path) { ids.insert(letter.id) }
        #expect(ids == Set(letters.map(\.id)))
    }

    @Test func theArchiveDropsATornLastLine() async throws {
        let folder = try TemporaryFolder()
        let path = folder.file("archive.jsonl")
        let letters = Self.letters(3)
        // A crash in the middle of an earlier archive left half a line.
        let whole = DeadLetterJSON.string(letters[0]) + "\n"
        try Self.write(whole + String(DeadLetterJSON.string(letters[1]).prefix(50)), to: path)
        let archive = JSONLinesArchive(path: path)
        try await archive.archive([letters[1], letters[2]], reason: "expired")
        var restored: [DeadLetter] = []
        for try await letter in JSONLinesArchive.restore(from: path) { restored.append(letter) }
        #expect(restored == letters)

        // A file that is nothing but a torn line is emptied first.
        let torn = folder.file("torn.jsonl")
        try Self.write("{\"v\":1,\"id\":", to: torn)
        try await JSONLinesArchive(path: torn).archive([letters[2]], reason: "expired")
        #expect(try JSONLinesReader.validate(path: torn) == 1)
    }

    @Test func anArchiveInAMissingFolderFails() async throws {
        let archive = JSONLinesArchive(path: "/nonexistent-dlq-folder/archive.jsonl")
        await #expect(throws: DeadLetterError.self) { try await archive.archive(Self.letters(1), reason: "expired") }
    }
}
