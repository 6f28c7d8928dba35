import DeadLetters
import Foundation
import Testing

/// What `dlq` refuses at its edges: counters beyond 1,000,000, ids with control characters, import lines that
/// are not UTF-8; each with a one-line error, nothing stored, nothing crashed.
@Suite("dlq input hardening")
struct InputCommandTests {
    /// A line of the stored format with some fields replaced by raw JSON values.
    static func line(id: String = #""a""#, attempts: String = "1", extra: String = "") -> String {
        #"{"v":1,"id":\#(id),"source":"orders","reason":"validation","errorMessage":"m","attempts":\#(attempts),"#
            + #""firstFailedAt":"2026-11-23T10:00:00.000Z","lastFailedAt":"2026-11-23T10:00:00.000Z""#
            + #"\#(extra),"payload":""}"#
    }

    @Test("add --attempts takes 1 to 1,000,000; above is a usage error and stores nothing")
    func addBoundsAttempts() throws {
        let space = try Workspace()
        defer { space.remove() }
        for value in ["9223372036854775807", "1000001"] {
            let run = try space.run([
                "add", "--source", "s", "--reason", "r", "--error-message", "m", "--payload", "x", "--attempts", value,
            ])
            expectOneLineError(run, status: 2, containing: "--attempts must be from 1 to 1000000")
        }
        #expect(!space.exists("dead-letters.sqlite"))
        try space.add(extra: ["--attempts", "1000000"])
        try space.add(extra: ["--attempts", "1000000"])
        let stats = try space.ok(["stats", "--json"])
        #expect(stats.output.contains(#""averageAttempts":1000000"#), "\(stats)")
    }

    @Test("import refuses a letter with attempts or replayCount beyond 1,000,000, naming its line; stores nothing")
    func importBoundsCounters() throws {
        let space = try Workspace()
        defer { space.remove() }
        let cases = [
            Self.line(id: #""b""#, attempts: "9223372036854775807"),
            Self.line(id: #""b""#, extra: #","replayCount":1000001"#),
        ]
        for (index, bad) in cases.enumerated() {
            space.write("bad\(index).jsonl", Self.line() + "\n" + bad + "\n" + Self.line(id: #""c""#) + "\n")
            let run = try space.run(["import", "bad\(index).jsonl"])
            expectOneLineError(run, status: 4, containing: "bad\(index).jsonl:2: field '")
            #expect(run.stderr.contains("must be at most 1000000"), "\(run)")
        }
        #expect(!space.exists("dead-letters.sqlite"), "a refused import creates no store")
    }

    @Test("import refuses ids with a NUL or another control character, naming the line; stores nothing")
    func importRefusesControlCharacters() throws {
        let space = try Workspace()
        defer { space.remove() }
        space.write(
            "ids.jsonl",
            [Self.line(id: #""\u0000""#), Self.line(id: #""a\u0000b""#), Self.line(id: #""a\u0000c""#)]
                .joined(separator: "\n") + "\n"
        )
        let run = try space.run(["import", "ids.jsonl"])
        expectOneLineError(run, status: 4, containing: "ids.jsonl:1: field 'id': must not contain a control character")
        space.write("tab.jsonl", Self.line() + "\n" + Self.line(id: #""x\ty""#) + "\n")
        expectOneLineError(try space.run(["import", "tab.jsonl"]), status: 4, containing: "tab.jsonl:2: field 'id'")
        #expect(!space.exists("dead-letters.sqlite"))
    }

    @Test("import refuses a line that is not valid UTF-8, in a field name too, naming the line")
    func importRefusesInvalidUTF8() throws {
        let space = try Workspace()
        defer { space.remove() }
        for (name, key) in [
            ("expiry", Array("expi".utf8) + [0xC4] + Array("esAt".utf8)),
            ("status", Array("stat".utf8) + [0xBC, 0x73]),
        ] {
            var bytes = Array((Self.line() + "\n").utf8)
            bytes += Array(Self.line(id: #""b""#, extra: #","KEY":"parked""#).utf8)
            let marker = Array("KEY".utf8)
            let at = try #require((0...(bytes.count - 3)).first { Array(bytes[$0..<($0 + 3)]) == marker })
            bytes.replaceSubrange(at..<(at + 3), with: key)
            bytes += Array("\n".utf8)
            _ = FileManager.default.createFile(atPath: space.path("\(name).jsonl"), contents: Data(bytes))
            let run = try space.run(["import", "\(name).jsonl"])
            expectOneLineError(run, status: 4, containing: "\(name).jsonl:2: not valid UTF-8 at column")
        }
        #expect(!space.exists("dead-letters.sqlite"))
    }

    @Test("show and delete refuse an id with a control character as a usage error")
    func showAndDeleteRefuseControlCharacters() throws {
        let space = try Workspace()
        defer { space.remove() }
        let id = try space.add()
        for bad in ["a\u{1}b", "tab\there", "new\nline"] {
            expectOneLineError(
                try space.run(["show", bad]),
                status: 2,
                containing: "the id must not contain a control character"
            )
            expectOneLineError(
                try space.run(["delete", id, bad]),
                status: 2,
                containing: "the id must not contain a control character"
            )
        }
        #expect(try space.letters().map(\.id) == [id], "nothing was deleted")
    }

    @Test("An export of a store with awkward ids imports back into an empty store")
    func awkwardIDsRoundTrip() throws {
        let space = try Workspace()
        defer { space.remove() }
        let ids = ["id with space", "é", "🎉", "a/b", "what?", #"\"quoted\""#, "100%"]
        space.write("ids.jsonl", ids.map { Self.line(id: "\"\($0)\"") }.joined(separator: "\n") + "\n")
        try space.ok(["import", "ids.jsonl"])
        try space.ok(["export", "--output", "back.jsonl"])
        try space.ok(["import", "back.jsonl", "--store", "other.sqlite"])
        #expect(try space.letters(["--store", "other.sqlite"]).count == ids.count)
        #expect(try space.ok(["show", "id with space", "--json"]).output.contains(#""id":"id with space""#))
    }
}
