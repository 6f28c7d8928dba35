import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import Testing

/// A `kill -9` at any moment loses no acknowledged letter and never corrupts the store; an import killed
/// midway leaves all or nothing; a read-only folder is a clear error.
@Suite("SQLite crashes", .enabled(if: SQLiteChild.canSpawn && !SQLiteChild.isChild, "needs /proc/self/exe"))
struct SQLiteCrashTests {
    /// Reopens the store and checks it: sound file, running totals equal to the letters really there.
    func reopenAndCheck(_ path: String) async throws -> SQLiteDeadLetterStore {
        let store = try SQLiteDeadLetterStore(path: path)
        #expect(try await store.integrityCheck() == ["ok"])
        // A non-empty filter counts rows; the empty one reads the totals the triggers keep.
        let counted = try await store.count(DeadLetterFilter(minAttempts: 0))
        #expect(try await store.usage().count == counted, "running totals match the rows")
        #expect(try await store.summary(DeadLetterFilter(), now: Date()).total == counted)
        return store
    }

    @Test func killedAdderLosesNoAcknowledgedLetter() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        var random = SeededRandom(seed: 0xC0FFEE)
        var acknowledged: Set<String> = []
        for round in 0..<20 {
            let child = try SQLiteChild.Running(mode: "append", path: path)
            // Kill after a random number of acknowledgements, while the other tasks' appends are in flight.
            let killAfter = Int.random(in: 1...400, using: &random)
            var seen = 0
            while seen < killAfter, let line = child.nextEvent(["ACK "]) {
                acknowledged.insert(String(line.dropFirst(4)))
                seen += 1
            }
            #expect(seen == killAfter, "round \(round): the child stopped early")
            for line in child.kill(collecting: ["ACK "]) { acknowledged.insert(String(line.dropFirst(4))) }
            #expect(child.process.terminationReason == .uncaughtSignal)

            let store = try await self.reopenAndCheck(path)
            var stored: Set<String> = []
            for try await letter in store.letters() { stored.insert(letter.id) }
            let lost = acknowledged.subtracting(stored)
            #expect(lost.isEmpty, "round \(round): \(lost.count) acknowledged letters lost")
            try store.close()
        }
        #expect(acknowledged.count >= 20)
    }

    @Test func killedImportLeavesAllOrNothing() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file()
        var random = SeededRandom(seed: 0x1A2B)
        // Rounds 0-3 are killed while the import reads; round 4 runs to its end.
        for round in 0..<5 {
            let tag = "import-\(round)"
            let child = try SQLiteChild.Running(mode: "import", path: path, tag: tag)
            var imported: Int?
            if round < 4 {
                let killAfter = Int.random(in: 1...(SQLiteChildLetters.importCount / 1000 - 1), using: &random)
                var reads = 0
                while reads < killAfter, child.nextEvent(["READ "]) != nil { reads += 1 }
                #expect(reads == killAfter)
                for line in child.kill(collecting: ["IMPORTED "]) { imported = Int(line.dropFirst(9)) }
            } else {
                while let line = child.nextEvent(["IMPORTED "]) { imported = Int(line.dropFirst(9)) }
                child.process.waitUntilExit()
                #expect(imported == SQLiteChildLetters.importCount)
            }
            let store = try await self.reopenAndCheck(path)
            let count = try await store.count(DeadLetterFilter(sources: [tag]))
            if imported != nil {
                #expect(count == SQLiteChildLetters.importCount, "round \(round): a committed import is whole")
            } else {
                #expect(count == 0, "round \(round): a killed import leaves nothing")
            }
            try store.close()
        }
    }

    @Test func readOnlyFolderIsAClearError() async throws {
        let folder = try TemporaryFolder()
        defer {
            chmod(folder.path, 0o755)
            folder.remove()
        }
        let existing = folder.file("existing.sqlite")
        let store = try SQLiteDeadLetterStore(path: existing)
        try await store.append([DeadLetterFixtures.letter()])
        try store.close()
        // Readable by the child (which may run as nobody); the folder is what is read-only.
        #expect(chmod(existing, 0o644) == 0)
        #expect(chmod(folder.path, 0o555) == 0)
        let before = FileManager.default.contents(atPath: existing)
        for path in [folder.file("new.sqlite"), existing] {
            let child = try SQLiteChild.Running(mode: "open", path: path)
            let line = child.nextEvent(["ERROR ", "OPENED"])
            child.process.waitUntilExit()
            #expect(line?.hasPrefix("ERROR storeUnavailable") == true, "\(line ?? "no answer")")
            #expect(line?.contains(path) == true)
        }
        #expect(FileManager.default.contents(atPath: existing) == before)
        #expect(!FileManager.default.fileExists(atPath: folder.file("new.sqlite")))
    }
}
