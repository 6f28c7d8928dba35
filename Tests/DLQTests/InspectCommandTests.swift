import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq add, list, show, stats, groups, delete, migrate")
    struct InspectCommandTests {
        @Test("add prints the new id alone; show --json is that letter in the stored format")
        func addThenShow() throws {
            let space = try Workspace()
            defer { space.remove() }
            let run = try space.ok(
                [
                    "add", "--source", "orders", "--reason", "validation", "--error-type", "DecodingError",
                    "--error-message", "keyNotFound: total", "--attempts", "3", "--metadata", "tenant=acme",
                    "--metadata", "Authorization=Bearer abc", "--content-type", "application/json", "--payload",
                    #"{"id":42}"#,
                ]
            )
            #expect(run.lines.count == 1)
            let id = run.output.trimmingCharacters(in: .newlines)
            #expect(id.count == 36 && id == id.lowercased(), "a lower-case UUID: \(id)")
            #expect(run.stderr.isEmpty)

            let show = try space.ok(["show", id, "--json"])
            let letter = try JSONDecoder().decode(DeadLetter.self, from: show.stdout)
            #expect(letter.id == id)
            #expect(letter.source == "orders")
            #expect(letter.reason == .validation)
            #expect(letter.errorType == "DecodingError")
            #expect(letter.errorMessage == "keyNotFound: total")
            #expect(letter.attempts == 3)
            #expect(letter.status == .dead)
            #expect(letter.nextAttemptAt == nil)
            #expect(letter.replayCount == 0)
            #expect(letter.metadata == ["tenant": "acme", "Authorization": MetadataRedactor.placeholder])
            #expect(letter.contentType == "application/json")
            #expect(letter.payload == Data(#"{"id":42}"#.utf8))
            #expect(
                letter.fingerprint == Fingerprint.compute(errorType: "DecodingError", message: "keyNotFound: total")
            )
            let expires = try #require(letter.expiresAt)
            #expect(abs(expires.timeIntervalSince(letter.lastFailedAt) - 7 * 86_400) < 1)
            // Exactly the stored format: the canonical bytes, one line.
            #expect(show.output == DeadLetterJSON.string(letter) + "\n")
        }

        @Test("add reads the payload from a file or from stdin; show --raw writes the bytes alone")
        func payloadSources() throws {
            let space = try Workspace()
            defer { space.remove() }
            let binary = Data([0, 1, 2, 254, 255, 10, 13])
            _ = FileManager.default.createFile(atPath: space.path("payload.bin"), contents: binary)
            let fromFile = try space.ok(
                ["add", "--source", "s", "--reason", "r", "--error-message", "m", "--payload-file", "payload.bin"]
            ).output.trimmingCharacters(in: .newlines)
            let fromStdin = try space.ok(
                ["add", "--source", "s", "--reason", "r", "--error-message", "m"],
                stdin: Data("from stdin".utf8)
            ).output.trimmingCharacters(in: .newlines)
            #expect(try space.ok(["show", fromFile, "--raw"]).stdout == binary)
            #expect(try space.ok(["show", fromStdin, "--raw"]).stdout == Data("from stdin".utf8))
            let text = try space.ok(["show", fromStdin]).output
            #expect(text.contains(fromStdin) && text.contains("from stdin"))
        }

        @Test("list --json is a JSON array of every letter, oldest first, and the filters narrow it")
        func listAndFilters() throws {
            let space = try Workspace()
            defer { space.remove() }
            let a = try space.add(source: "orders", reason: "validation", message: "keyNotFound: total")
            let b = try space.add(source: "payments", reason: "timeout", errorType: "GatewayTimeout", message: "slow")
            let c = try space.add(
                source: "orders",
                reason: "timeout",
                errorType: "GatewayTimeout",
                message: "slow again",
                extra: ["--attempts", "5"]
            )
            #expect(try space.letters().map(\.id) == [a, b, c])
            #expect(try space.letters(["--source", "orders"]).map(\.id) == [a, c])
            #expect(try space.letters(["--reason", "timeout"]).map(\.id) == [b, c])
            #expect(try space.letters(["--error-type", "GatewayTimeout", "--source", "orders"]).map(\.id) == [c])
            #expect(try space.letters(["--min-attempts", "2"]).map(\.id) == [c])
            #expect(try space.letters(["--search", "SLOW"]).map(\.id) == [b, c])
            #expect(try space.letters(["--limit", "2"]).map(\.id) == [a, b])
            #expect(try space.letters(["--since", "1h"]).count == 3)
            #expect(try space.letters(["--until", "1h"]).isEmpty)
            #expect(try space.letters(["--since", "2020-01-01T00:00:00Z", "--status", "dead"]).count == 3)
            #expect(try space.letters(["--status", "parked"]).isEmpty)
            let fingerprint = try #require(try space.letters().first?.fingerprint)
            #expect(try space.letters(["--fingerprint", fingerprint]).map(\.id) == [a])
            #expect(try space.ok(["list", "--json", "--source", "nobody"]).output == "[]\n")

            let table = try space.ok(["list"]).output
            #expect(table.hasPrefix("ID"))
            #expect(table.contains(a) && table.contains("payments") && table.contains("3 letters"))
        }

        @Test("stats --json has the documented fields with the right counts")
        func stats() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add(source: "orders", reason: "validation", extra: ["--attempts", "1"])
            try space.add(source: "orders", reason: "timeout", errorType: "GatewayTimeout", extra: ["--attempts", "2"])
            try space.add(
                source: "payments",
                reason: "timeout",
                errorType: "GatewayTimeout",
                extra: ["--attempts", "6"]
            )
            let run = try space.ok(["stats", "--json"])
            #expect(run.lines.count == 1)
            let object = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
            #expect(
                Set(object.keys)
                    == [
                        "total", "byReason", "bySource", "byErrorType", "byStatus", "byAge", "oldestFailedAt",
                        "newestFailedAt", "averageAttempts",
                    ]
            )
            #expect(object["total"] as? Int == 3)
            #expect(object["byReason"] as? [String: Int] == ["validation": 1, "timeout": 2])
            #expect(object["bySource"] as? [String: Int] == ["orders": 2, "payments": 1])
            #expect(object["byErrorType"] as? [String: Int] == ["DecodingError": 1, "GatewayTimeout": 2])
            #expect(object["byStatus"] as? [String: Int] == ["dead": 3, "retrying": 0, "parked": 0])
            #expect(object["byAge"] as? [String: Int] == ["<1h": 3, "1h-6h": 0, "6h-24h": 0, ">24h": 0])
            #expect((object["averageAttempts"] as? Double).map { abs($0 - 3) < 0.001 } == true)
            let oldest = try #require(object["oldestFailedAt"] as? String)
            let newest = try #require(object["newestFailedAt"] as? String)
            #expect(Timestamp.parse(oldest) != nil && Timestamp.parse(newest) != nil && oldest <= newest)

            let filtered = try space.ok(["stats", "--json", "--source", "payments"])
            let narrowed = try #require(try JSONSerialization.jsonObject(with: filtered.stdout) as? [String: Any])
            #expect(narrowed["total"] as? Int == 1)

            let human = try space.ok(["stats"]).output
            #expect(human.contains("3 dead letters") && human.contains("by reason") && human.contains("timeout"))
        }

        @Test("stats of an empty store: zeros and nulls")
        func emptyStats() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.ok(["migrate"])
            let run = try space.ok(["stats", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
            #expect(object["total"] as? Int == 0)
            #expect(object["oldestFailedAt"] is NSNull)
            #expect(object["averageAttempts"] as? Int == 0)
        }

        @Test("groups --json: one entry per fingerprint, largest first, with the documented fields")
        func groups() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add(source: "orders", message: "keyNotFound: total")
            try space.add(source: "orders", errorType: "Timeout", message: "no answer after 2000 ms")
            try space.add(source: "payments", errorType: "Timeout", message: "no answer after 3500 ms")
            let run = try space.ok(["groups", "--json"])
            let groups = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [[String: Any]])
            #expect(groups.count == 2)
            #expect(
                groups.allSatisfy {
                    Set($0.keys)
                        == [
                            "fingerprint", "count", "errorType", "sampleMessage", "sources", "firstFailedAt",
                            "lastFailedAt",
                        ]
                }
            )
            #expect(groups[0]["count"] as? Int == 2)
            #expect(groups[0]["errorType"] as? String == "Timeout")
            #expect(groups[0]["sources"] as? [String] == ["orders", "payments"])
            #expect(
                groups[0]["fingerprint"] as? String
                    == Fingerprint.compute(errorType: "Timeout", message: "no answer after 2000 ms")
            )
            #expect((groups[0]["sampleMessage"] as? String)?.hasPrefix("no answer after") == true)
            #expect(groups[1]["count"] as? Int == 1)
            #expect(groups[1]["sources"] as? [String] == ["orders"])
            #expect(try space.ok(["groups"]).output.contains("Timeout"))
        }

        @Test("delete removes the letters named; an unknown id deletes nothing and exits 3")
        func delete() throws {
            let space = try Workspace()
            defer { space.remove() }
            let a = try space.add()
            let b = try space.add()
            let c = try space.add()
            let missing = try space.run(["delete", a, "0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d"])
            expectOneLineError(missing, status: 3, containing: "0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d")
            #expect(try space.letters().count == 3)
            #expect(try space.ok(["delete", a, b]).output == "2\n")
            #expect(try space.letters().map(\.id) == [c])
            expectOneLineError(try space.run(["show", a]), status: 3, containing: a)
        }

        @Test("migrate creates a store; --store works before and after the command, and DLQ_STORE too")
        func storeSelection() throws {
            let space = try Workspace()
            defer { space.remove() }
            let run = try space.ok(["migrate", "--store", "first.sqlite"])
            #expect(run.output.contains("created, schema version 5"), "\(run)")
            #expect(try space.ok(["migrate", "--store", "first.sqlite"]).output.contains("already up to date"))
            #expect(space.exists("first.sqlite"))
            #expect(!space.exists("dead-letters.sqlite"))
            let id = try space.ok(
                [
                    "--store", "first.sqlite", "add", "--source", "s", "--reason", "r", "--error-message", "m",
                    "--payload",
                    "x",
                ]
            ).output.trimmingCharacters(in: .newlines)
            #expect(try space.letters(["--store", "first.sqlite"]).map(\.id) == [id])
            #expect(try space.ok(["--store", "first.sqlite", "list", "--json"]).output.contains(id))
            let viaEnvironment = try space.ok(
                ["list", "--json"],
                environment: ["DLQ_STORE": space.path("first.sqlite")]
            )
            #expect(viaEnvironment.output.contains(id))
            #expect(!space.exists("dead-letters.sqlite"))
        }

        @Test("--help carries an example for every command; completion scripts are generated")
        func helpAndCompletion() throws {
            let space = try Workspace()
            defer { space.remove() }
            let commands = [
                "add", "list", "show", "stats", "groups", "redrive", "replay", "delete", "purge", "export", "import",
                "check", "demo", "migrate",
            ]
            let root = try space.ok(["--help"]).output
            for command in commands + ["serve"] { #expect(root.contains(command), "\(command) in dlq --help") }
            for command in commands {
                let help = try space.ok([command, "--help"]).output
                #expect(help.contains("dlq \(command)"), "an example in dlq \(command) --help")
                #expect(help.contains("--store"), "--store in dlq \(command) --help")
            }
            let bash = try space.ok(["--generate-completion-script", "bash"]).output
            #expect(bash.contains("_dlq") && bash.contains("replay"))
            let zsh = try space.ok(["--generate-completion-script", "zsh"]).output
            #expect(zsh.contains("#compdef dlq"))
        }
    }
}
