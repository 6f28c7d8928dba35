import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq export, import and purge")
    struct FileCommandTests {
        /// Three letters with everything set: metadata, causes, history (a failed replay), binary payload.
        private func populate(_ space: Workspace) throws {
            try space.add(source: "orders", reason: "validation", extra: ["--metadata", "tenant=acme"])
            _ = FileManager.default.createFile(atPath: space.path("bin"), contents: Data([0, 255, 10, 34, 92]))
            try space.ok(
                [
                    "add", "--source", "payments", "--reason", "timeout", "--error-message", "slow \"quoted\"\nline 2",
                    "--payload-file", "bin", "--content-type", "application/octet-stream",
                ]
            )
            try space.add(source: "shipments", reason: "dependency")
            _ = try space.run(["replay", "--source", "shipments", "--exec", "echo carrier down >&2; exit 1"])
        }

        @Test("export then import into an empty store gives an identical export; a second import skips all")
        func roundTrip() throws {
            let space = try Workspace()
            defer { space.remove() }
            try self.populate(space)
            try space.ok(["export", "--output", "first.jsonl"])
            let first = try #require(space.contents("first.jsonl"))
            #expect(String(decoding: first, as: UTF8.self).split(separator: "\n").count == 3)
            #expect(try space.ok(["export"]).stdout == first, "stdout and --output write the same bytes")

            let imported = try space.ok(["import", "first.jsonl", "--store", "copy.sqlite"])
            #expect(imported.output.contains("imported 3, skipped 0"), "\(imported)")
            try space.ok(["export", "--store", "copy.sqlite", "--output", "second.jsonl"])
            #expect(space.contents("second.jsonl") == first)

            let again = try space.ok(["import", "first.jsonl", "--store", "copy.sqlite"])
            #expect(again.output.contains("imported 0, skipped 3"), "\(again)")

            let array = try space.ok(["export", "--format", "json", "--source", "orders"])
            let letters = try JSONDecoder().decode([DeadLetter].self, from: array.stdout)
            #expect(letters.map(\.source) == ["orders"])
        }

        @Test("export never overwrites a file")
        func exportRefusesExisting() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            space.write("taken.jsonl", "keep me")
            expectOneLineError(try space.run(["export", "--output", "taken.jsonl"]), status: 4, containing: "exists")
            #expect(space.contents("taken.jsonl") == Data("keep me".utf8))
        }

        @Test("import of a file with a bad line 3 names the file, line 3 and the field, and changes nothing")
        func importBadLine() throws {
            let space = try Workspace()
            defer { space.remove() }
            try self.populate(space)
            try space.ok(["export", "--output", "good.jsonl"])
            let lines = String(decoding: try #require(space.contents("good.jsonl")), as: UTF8.self)
                .split(separator: "\n").map(String.init)
            let broken = lines[2].replacingOccurrences(of: #""attempts":"#, with: #""attempts":"many","ignored":"#)
            space.write("bad.jsonl", [lines[0], lines[1], broken].joined(separator: "\n") + "\n")
            try space.ok(["migrate", "--store", "target.sqlite"])
            let before = try space.ok(["export", "--store", "target.sqlite"]).stdout

            let run = try space.run(["import", "bad.jsonl", "--store", "target.sqlite"])
            expectOneLineError(run, status: 4, containing: "bad.jsonl")
            #expect(run.stderr.contains(":3") || run.stderr.contains("line 3"), "\(run)")
            #expect(run.stderr.contains("attempts"), "\(run)")
            #expect(try space.ok(["export", "--store", "target.sqlite"]).stdout == before)
            #expect(try space.letters(["--store", "target.sqlite"]).isEmpty)

            // A file that is not JSON at all fails the same way, on its first line.
            space.write("garbage.jsonl", "this is not json\n")
            let garbage = try space.run(["import", "garbage.jsonl", "--store", "target.sqlite"])
            expectOneLineError(garbage, status: 4, containing: "garbage.jsonl")
            let missing = try space.run(["import", "missing.jsonl", "--store", "other.sqlite"])
            expectOneLineError(missing, status: 4, containing: "missing.jsonl: no such file")
            try FileManager.default.createDirectory(atPath: space.path("exports"), withIntermediateDirectories: false)
            let folder = try space.run(["import", "exports", "--store", "other.sqlite"])
            expectOneLineError(folder, status: 4, containing: "exports: is a folder, not a JSON Lines file")
            #expect(!space.exists("other.sqlite"), "a failed import creates no store")
        }

        @Test("purge refuses to run without a selector, and changes nothing")
        func purgeNeedsSelector() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            let before = try space.ok(["export"]).stdout
            let run = try space.run(["purge", "--yes"])
            expectOneLineError(run, status: 2, containing: "selector")
            let limitOnly = try space.run(["purge", "--limit", "1", "--yes"])
            expectOneLineError(limitOnly, status: 2, containing: "selector")
            let both = try space.run(["purge", "--all", "--source", "orders", "--yes"])
            expectOneLineError(both, status: 2, containing: "--all")
            #expect(try space.ok(["export"]).stdout == before)
        }

        @Test("purge off a terminal needs --yes; with it, it archives then removes the selected letters")
        func purgeArchives() throws {
            let space = try Workspace()
            defer { space.remove() }
            let a = try space.add(source: "orders")
            let b = try space.add(source: "orders")
            let c = try space.add(source: "payments")
            let unconfirmed = try space.run(["purge", "--source", "orders"])
            expectOneLineError(unconfirmed, status: 2, containing: "--yes")
            #expect(try space.letters().count == 3)

            let dry = try space.ok(["purge", "--source", "orders", "--dry-run"])
            #expect(dry.output.contains("2 letters would be removed"))
            #expect(try space.letters().count == 3)

            let run = try space.ok(["purge", "--source", "orders", "--archive", "archive.jsonl", "--yes"])
            #expect(run.output.contains("purged 2 letters"), "\(run)")
            #expect(try space.letters().map(\.id) == [c])
            let archive = String(decoding: try #require(space.contents("archive.jsonl")), as: UTF8.self)
            let archived = try archive.split(separator: "\n").map { try DeadLetterJSON.decode(String($0)) }
            #expect(archived.map(\.id) == [a, b])

            // The archive imports back.
            #expect(try space.ok(["import", "archive.jsonl"]).output.contains("imported 2"))
            #expect(try space.letters().map(\.id) == [a, b, c])

            #expect(try space.ok(["purge", "--all", "--yes"]).output.contains("purged 3 letters"))
            #expect(try space.letters().isEmpty)
            #expect(try space.ok(["purge", "--expired", "--yes"]).output.contains("purged 0 letters"))
        }
    }
}
