import DeadLetters
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension DLQCommandSuites {
    @Suite("dlq and a letter's lifecycle")
    struct LifecycleCommandTests {
        @Test(
            "a replay whose command does not exist is refused (exit 2) before any letter changes; the first failure stays"
        )
        func missingCommandChangesNothing() throws {
            let space = try Workspace()
            defer { space.remove() }
            let ids = [
                try space.add(reason: "decoding", message: "typeMismatch: expected Double at total"),
                try space.add(reason: "decoding", message: "typeMismatch: expected Double at total"),
            ]
            let before = try space.letters()
            for arguments in [
                ["replay", "--reason", "decoding", "--limit", "2", "--exec", "./fix-and-resend.sh"],
                ["replay", "--reason", "decoding", "--dry-run", "--exec", "./fix-and-resend.sh"],
                ["replay", "--reason", "decoding", "--exec", "no-such-command-anywhere --flag"],
            ] {
                let run = try space.run(arguments)
                #expect(run.status == 2, "\(arguments): \(run)")
                #expect(run.stderr.contains("fix-and-resend.sh") || run.stderr.contains("no-such-command-anywhere"))
                #expect(run.stderr.split(separator: "\n").count == 1, "one line: \(run.stderr)")
                #expect(try space.letters() == before, "no letter changed")
            }
            // Built-ins, names on PATH and compound commands are taken.
            for command in ["true", "cat > /dev/null", "FOO=1 sh -c 'exit 0'", "if true; then true; fi"] {
                #expect(try space.run(["replay", "--dry-run", "--exec", command]).status == 0, "\(command)")
            }
            // A command that fails: the original DecodingError stays the first entry, the replay's error follows.
            let failed = try space.run(["replay", "--reason", "decoding", "--exec", "echo downstream 503 >&2; exit 1"])
            #expect(failed.status == 1, "\(failed)")
            for letter in try space.letters() where ids.contains(letter.id) {
                #expect(letter.history.count == 2)
                #expect(letter.history[0].event == .failed)
                #expect(letter.history[0].errorType == "DecodingError")
                #expect(letter.history[0].errorMessage == "typeMismatch: expected Double at total")
                #expect(letter.history[1].event == .replayed)
                #expect(letter.history[1].outcome == .failed)
                #expect(letter.history[1].errorMessage == "downstream 503")
                #expect(letter.errorMessage == "downstream 503")
            }
            let groups = try space.ok(["groups", "--json"]).output
            #expect(!groups.contains("fix-and-resend"), "an operator's typo is no failure group")
        }

        @Test("a command that exits 127 while running stops the replay (exit 2) and hands its letter back unchanged")
        func exit127StopsTheReplay() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            try space.add()
            let before = try space.letters()
            let run = try space.run(["replay", "--exec", "sh -c 'exit 127'"])
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("exited 127"), "\(run.stderr)")
            #expect(try space.letters() == before, "the letters are unchanged")
        }

        @Test("DLQ_ACTOR names who redrove; every letter gets a redriven entry with the operation")
        func redriveRecordsTheActor() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add(source: "orders")
            try space.add(source: "orders")
            try space.add(source: "payments")
            #expect(
                try space.ok(["redrive", "--source", "orders"], environment: ["DLQ_ACTOR": "alice"]).output
                    .hasPrefix("redriven 2 letters · operation ")
            )
            let letters = try space.letters(["--source", "orders"])
            #expect(letters.count == 2)
            for letter in letters {
                let entry = try #require(letter.history.last)
                #expect(entry.event == .redriven)
                #expect(entry.actor == "alice")
            }
            #expect(Set(letters.compactMap { $0.history.last?.operation }).count == 1, "one operation")
            let other = try #require(try space.letters(["--source", "payments"]).first)
            #expect(other.history.map(\.event) == [.failed])
            // Without DLQ_ACTOR: user@host.
            try space.ok(["park", "--source", "payments"], environment: ["DLQ_ACTOR": ""])
            let parked = try #require(try space.letters(["--source", "payments"]).first)
            #expect(parked.status == .parked)
            #expect(parked.history.last?.actor?.contains("@") == true)
            let show = try space.ok(["show", parked.id]).output
            #expect(show.contains("parked"), "dlq show prints the history: \(show)")
            #expect(try space.run(["park"]).status == 2, "park needs a selector")
        }

        @Test("dlq edit replaces the payload and records the previous one; --redrive makes it due")
        func edit() throws {
            let space = try Workspace()
            defer { space.remove() }
            let id = try space.add(payload: "abc")
            space.write("fixed.json", #"{"total":42.0}"#)
            try space.ok(["edit", id, "--payload-file", "fixed.json", "--redrive"], environment: ["DLQ_ACTOR": "erin"])
            let raw = try space.ok(["show", id, "--raw"]).stdout
            #expect(raw == Data(#"{"total":42.0}"#.utf8))
            let letter = try #require(try space.letters().first)
            #expect(letter.status == .retrying)
            #expect(letter.history.map(\.event) == [.failed, .edited, .redriven])
            #expect(letter.history[1].message?.contains("3 bytes") == true)
            #expect(try space.run(["edit", "nope", "--payload-file", "fixed.json"]).status == 3)
            #expect(try space.run(["edit", id, "--payload-file", "missing.json"]).status == 4)
        }

        @Test(
            "a replay killed three times while its command runs leaves the letter to be parked; a fourth does not run it"
        )
        func poisonLetterParkedAfterKills() async throws {
            let space = try Workspace()
            defer { space.remove() }
            let id = try space.add()
            for round in 1...3 {
                let process = try space.start([
                    "replay", "--lease", "1s", "--exec", "echo $$ > child-\(round); exec sleep 30",
                ])
                var waited = 0
                while !space.exists("child-\(round)") || space.contents("child-\(round)")?.isEmpty != false,
                    waited < 300
                {
                    try await Task.sleep(for: .milliseconds(50))
                    waited += 1
                }
                #expect(space.exists("child-\(round)"), "round \(round): the command started")
                kill(process.processIdentifier, SIGKILL)
                // The command's process too, before waiting: Foundation's wait ends only once it is gone as well.
                let child = String(decoding: space.contents("child-\(round)") ?? Data(), as: UTF8.self)
                if let pid = Int32(child.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
                process.waitUntilExit()
                // Wait out the lease.
                try await Task.sleep(for: .milliseconds(1_200))
            }
            let fourth = try space.run(["replay", "--lease", "1s", "--exec", "touch ran"])
            #expect(!space.exists("ran"), "the fourth replay does not run the poison letter: \(fourth)")
            #expect(fourth.output.contains("parked 1"), "\(fourth)")
            let letter = try #require(try space.letters().first { $0.id == id })
            #expect(letter.status == .parked)
            #expect(letter.abandonedClaims == 3)
            #expect(letter.history.contains { $0.event == .abandoned && $0.message?.contains("3 claims") == true })
            let fifth = try space.run(["replay", "--exec", "touch ran"])
            #expect(fifth.status == 0)
            #expect(!space.exists("ran"))
        }
    }
}
