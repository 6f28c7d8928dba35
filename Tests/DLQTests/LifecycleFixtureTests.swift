import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("A store and an export made by the previous release")
    struct LifecycleFixtureTests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Fixtures"
        )

        /// The letters of the release's export (stored format version 1), as this version reads them.
        static func releaseLetters() throws -> [DeadLetter] {
            let text = try String(
                contentsOf: Self.fixtures.appendingPathComponent("release-export.jsonl"),
                encoding: .utf8
            )
            return try text.split(separator: "\n").enumerated().map { index, line in
                try DeadLetterJSON.decode(String(line), line: index + 1)
            }
        }

        func copyFixture(_ name: String, to space: Workspace) throws {
            try FileManager.default.copyItem(
                atPath: Self.fixtures.appendingPathComponent(name).path,
                toPath: space.path(name)
            )
        }

        @Test("dlq migrate brings the release's store to schema 3, saying so, with every letter and its history intact")
        func migratesTheReleaseStore() throws {
            let space = try Workspace()
            defer { space.remove() }
            try self.copyFixture("release-store.sqlite", to: space)
            let store = ["--store", "release-store.sqlite"]
            let migrated = try space.ok(store + ["migrate"])
            #expect(migrated.output.contains("migrated schema version 2 to 5; 6 letters kept"), "\(migrated)")
            #expect(try space.ok(store + ["migrate"]).output.contains("already up to date"))
            let expected = try Self.releaseLetters()
            let letters = try space.letters(store)
            #expect(letters == expected, "every letter as the release exported it, with a first failed entry")
            // The history the release recorded is still there, after the first failure made from the letter.
            let parked = try #require(letters.first { $0.source == "emails" })
            #expect(parked.status == .parked)
            #expect(parked.history.map(\.event) == [.failed, .replayed, .replayed, .replayed])
            #expect(parked.history.dropFirst().map(\.outcome) == [.failed, .failed, .failed])
            #expect(parked.history.last?.errorMessage == "smtp refused again")
            let kept = try #require(letters.first { $0.source == "payments" && $0.attempts == 4 })
            #expect(kept.history.map(\.event) == [.failed, .replayed])
            #expect(kept.history.last?.outcome == .succeeded)
            let untouched = try #require(letters.first { $0.metadata["tenant"] == "acme" })
            #expect(untouched.history.count == 1)
            #expect(untouched.history[0].errorMessage == "typeMismatch: expected Double at total")
            #expect(untouched.history[0].reason == .decoding)
            // Migrating indexed the release's letters for search and metadata.
            #expect(try space.letters(store + ["--meta", "tenant=acme"]).map(\.id) == [untouched.id])
            #expect(try space.letters(store + ["--search", "TYPEMISMATCH"]).map(\.id) == [untouched.id])
            // The migrated store works: a failed replay now keeps the first failure.
            let failed = try space.run(
                store + ["replay", "--source", "orders", "--status", "dead", "--exec", "echo still bad >&2; exit 1"]
            )
            #expect(failed.status == 1, "\(failed)")
            let after = try #require(try space.letters(store).first { $0.id == untouched.id })
            #expect(after.history.first?.errorMessage == "typeMismatch: expected Double at total")
            #expect(after.errorMessage == "still bad")
            let export = try space.ok(store + ["export"]).output
            #expect(export.split(separator: "\n").allSatisfy { $0.hasPrefix(#"{"v":2,"#) }, "exports write version 2")
        }

        @Test("the release's version-1 export imports into a new store and into a migrated one")
        func importsTheReleaseExport() throws {
            let space = try Workspace()
            defer { space.remove() }
            try self.copyFixture("release-export.jsonl", to: space)
            try self.copyFixture("release-store.sqlite", to: space)
            try space.ok(["--store", "new.sqlite", "migrate"])
            let imported = try space.ok(["--store", "new.sqlite", "import", "release-export.jsonl"])
            #expect(imported.output.contains("6"), "\(imported)")
            #expect(try space.letters(["--store", "new.sqlite"]) == Self.releaseLetters())
            try space.ok(["--store", "release-store.sqlite", "migrate"])
            let again = try space.ok(["--store", "release-store.sqlite", "import", "release-export.jsonl"])
            #expect(again.output.contains("skipped 6") || again.output.contains("6 skipped"), "\(again)")
            #expect(try space.letters(["--store", "release-store.sqlite"]) == Self.releaseLetters())
        }
    }
}
