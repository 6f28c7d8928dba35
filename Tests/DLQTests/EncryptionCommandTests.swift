import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq with DLQ_ENCRYPTION_KEY")
    struct EncryptionCommandTests {
        static let key = Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
        static let otherKey = Data((0..<32).map { UInt8(200 - $0) }).base64EncodedString()
        static let secret = #"{"card":"4111111111111111","cvv":"737"}"#

        @Test("payloads are sealed in the store file and shown in the clear with the key")
        func sealedAtRest() throws {
            let space = try Workspace()
            defer { space.remove() }
            let withKey = ["DLQ_ENCRYPTION_KEY": Self.key]
            let added = try space.ok(
                [
                    "add", "--source", "payments", "--reason", "timeout", "--error-message", "card declined",
                    "--payload",
                    Self.secret,
                ],
                environment: withKey
            )
            let id = added.output.trimmingCharacters(in: .whitespacesAndNewlines)

            var bytes = Data()
            for suffix in ["", "-wal"] {
                bytes.append(space.contents("dead-letters.sqlite" + suffix) ?? Data())
            }
            #expect(bytes.count > 0)
            #expect(bytes.range(of: Data("4111111111111111".utf8)) == nil, "the card number is not in the file")
            #expect(bytes.range(of: Data("card declined".utf8)) != nil, "the error stays readable for filters")

            let shown = try space.ok(["show", id, "--json"], environment: withKey)
            let letter = try JSONDecoder().decode(DeadLetter.self, from: shown.stdout)
            #expect(letter.payload == Data(Self.secret.utf8))
            let exported = try space.ok(["export"], environment: withKey)
            #expect(exported.output.contains(Data(Self.secret.utf8).base64EncodedString()), "export writes the payload")

            let withoutKey = try space.run(["show", id, "--json"])
            expectOneLineError(withoutKey, status: 4, containing: "no key is configured")
            #expect(withoutKey.stderr.contains(id))
            let stats = try space.ok(["stats", "--json"])
            #expect(stats.output.contains(#""total":1"#), "counts need no key")

            // For people, `show` prints everything but the payload, then the error; the exit code stays 4.
            let shownWithoutKey = try space.run(["show", id])
            #expect(shownWithoutKey.status == 4, "\(shownWithoutKey)")
            #expect(shownWithoutKey.stderrLines.count == 1 && shownWithoutKey.stderr.contains("no key is configured"))
            #expect(shownWithoutKey.output.contains("card declined"), "the error context is shown")
            #expect(shownWithoutKey.output.contains("encrypted, not shown"))
            #expect(!shownWithoutKey.output.contains("4111"), "neither the payload nor ciphertext as if it were one")
            // The list shows no payload, so a sealed letter is listed without the key, and among plain ones.
            try space.ok(["add", "--source", "orders", "--reason", "timeout", "--error-message", "in the clear"])
            let listed = try space.ok(["list"])
            #expect(listed.output.contains(id) && listed.output.contains("in the clear"), "\(listed)")
            #expect(listed.output.contains("2 letters"), "\(listed)")
            let listedJSON = try space.run(["list", "--json"])
            #expect(listedJSON.status == 4, "the JSON list carries payloads, so it still needs the key")

            let wrongKey = try space.run(["show", id, "--raw"], environment: ["DLQ_ENCRYPTION_KEY": Self.otherKey])
            expectOneLineError(wrongKey, status: 4, containing: "which is not among the configured keys")

            let rotated = [
                "DLQ_ENCRYPTION_KEY": Self.otherKey, "DLQ_ENCRYPTION_PREVIOUS_KEYS": Self.key,
            ]
            let again = try space.ok(["show", id, "--json"], environment: rotated)
            #expect(try JSONDecoder().decode(DeadLetter.self, from: again.stdout).payload == Data(Self.secret.utf8))

            let deleted = try space.ok(["delete", id])
            #expect(deleted.output == "1\n", "deleting shows no payload, so it needs no key")
        }

        @Test("replay --exec gets the payload in the clear on stdin")
        func replayGetsPlaintext() throws {
            let space = try Workspace()
            defer { space.remove() }
            let withKey = ["DLQ_ENCRYPTION_KEY": Self.key]
            try space.ok(
                [
                    "add", "--source", "payments", "--reason", "timeout", "--error-message", "x", "--payload",
                    Self.secret,
                ],
                environment: withKey
            )
            try space.ok(["replay", "--exec", "cat > replayed.txt"], environment: withKey)
            #expect(space.contents("replayed.txt") == Data(Self.secret.utf8))
            #expect(try space.ok(["stats", "--json"]).output.contains(#""total":0"#))
        }

        @Test("a bad key is a usage error that names the variable, never its value")
        func badKey() throws {
            let space = try Workspace()
            defer { space.remove() }
            let short = Data(repeating: 7, count: 16).base64EncodedString()
            let run = try space.run(
                ["add", "--source", "s", "--reason", "timeout", "--error-message", "m", "--payload", "p"],
                environment: ["DLQ_ENCRYPTION_KEY": short]
            )
            expectOneLineError(run, status: 2, containing: "DLQ_ENCRYPTION_KEY")
            #expect(run.stderr.contains("32 bytes"))
            #expect(!run.stderr.contains(short))
            #expect(!space.exists("dead-letters.sqlite"), "nothing was written")

            let previousOnly = try space.run(["stats"], environment: ["DLQ_ENCRYPTION_PREVIOUS_KEYS": Self.key])
            expectOneLineError(previousOnly, status: 2, containing: "DLQ_ENCRYPTION_PREVIOUS_KEYS")
        }
    }
}
