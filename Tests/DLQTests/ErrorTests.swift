import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq errors: bad flags, bad files, exit statuses")
    struct ErrorTests {
        @Test(
            "bad flags and values exit 2 with one line on stderr",
            arguments: [
                (["list", "--bogus"], "--bogus"),
                (
                    ["list", "--since", "last week"],
                    "an ISO 8601 time (2026-11-23T10:00:00Z, or 2026-11-23T10:00 read as UTC)"
                ),
                (["list", "--until", "1e30s"], "--until"),
                (["list", "--since", "1e10s"], "--since"),
                (["replay", "--exec", "true", "--timeout", "1e30"], "--timeout"),
                (["replay", "--exec", "true", "--timeout", "1e10"], "--timeout"),
                (["list", "--status", "lost"], "--status"),
                (["list", "--limit", "0"], "--limit"),
                (["add", "--source", "s", "--reason", "r"], "--error-message"),
                (
                    ["add", "--source", "s", "--reason", "r", "--error-message", "m", "--metadata", "novalue"],
                    "key=value"
                ),
                (["replay", "--exec", "true", "--rate", "fast"], "--rate"),
                (["replay", "--exec", "true", "--timeout", "0s"], "--timeout"),
                (["replay"], "--exec"),
                (["show"], "<id>"),
                (["frobnicate"], "frobnicate"),
                (["export", "--format", "xml"], "--format"),
                (["list", "--store", "mysql://db/x"], "mysql"),
            ]
        )
        func badFlags(arguments: [String], mentioned: String) throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            let before = space.contents("dead-letters.sqlite")
            let run = try space.run(arguments)
            expectOneLineError(run, status: 2, containing: mentioned)
            #expect(space.contents("dead-letters.sqlite") == before)
        }

        @Test("a file that is not a store is reported and left as it was, for every command")
        func garbageStore() throws {
            let space = try Workspace()
            defer { space.remove() }
            let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
            _ = FileManager.default.createFile(atPath: space.path("garbage.sqlite"), contents: garbage)
            for arguments in [
                ["list"], ["stats", "--json"], ["migrate"], ["import", "x.jsonl"],
                ["add", "--source", "s", "--reason", "r", "--error-message", "m", "--payload", "p"],
                ["purge", "--all", "--yes"],
            ] {
                space.write("x.jsonl", "")
                let run = try space.run(arguments + ["--store", "garbage.sqlite"])
                expectOneLineError(run, status: 4, containing: "garbage.sqlite")
                #expect(space.contents("garbage.sqlite") == garbage, "\(arguments)")
            }
            #expect(!space.exists("garbage.sqlite-wal"))
        }

        @Test("a missing folder is never created; a missing store is not created by reading commands")
        func missingFolderAndStore() throws {
            let space = try Workspace()
            defer { space.remove() }
            let add = try space.run(
                [
                    "add", "--store", "nowhere/dlq.sqlite", "--source", "s", "--reason", "r", "--error-message", "m",
                    "--payload", "p",
                ]
            )
            expectOneLineError(add, status: 4, containing: "nowhere")
            #expect(!space.exists("nowhere"))
            for arguments in [["list"], ["show", "x"], ["stats"], ["groups"], ["redrive"], ["export"]] {
                let run = try space.run(arguments)
                expectOneLineError(run, status: 4, containing: "dead-letters.sqlite")
            }
            #expect(!space.exists("dead-letters.sqlite"))
        }

        @Test("serve is listed, and answers until the admin server is wired")
        func serveIsAvailableOrExplains() throws {
            let space = try Workspace()
            defer { space.remove() }
            let help = try space.ok(["serve", "--help"])
            #expect(help.output.contains("serve"))
        }
    }
}
