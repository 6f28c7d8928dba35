import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

/// The PostgreSQL server of these tests: `DLQ_POSTGRES_URL` (start one with `scripts/postgres start`).
///
/// The same rules as the PostgreSQL store's own tests: without the variable the suite is skipped, visibly, and
/// with `DLQ_REQUIRE_POSTGRES=1` a missing server is a failure.
enum CommandTestServer {
    static let url = PostgresTestEnvironment.url

    /// Set by `.ci/run`: without a server, the tests fail instead of being skipped.
    static let required = PostgresTestEnvironment.required

    static let isAvailable = PostgresTestEnvironment.isAvailable

    static let skipMessage: Comment =
        "DLQ_POSTGRES_URL is not set: dlq PostgreSQL tests skipped (start a server with `scripts/postgres start`)"

    /// The server's URL in a schema of its own (`?schema=` or `&schema=`), so that tests run side by side. The
    /// schemas stay on the server, which is a throwaway one.
    static func freshStore() throws -> String {
        let url = try #require(self.url, "DLQ_POSTGRES_URL")
        let schema = "dlq_cli_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return url + (url.contains("?") ? "&" : "?") + "schema=" + schema
    }

    /// The URL with its password replaced by `password`.
    static func withPassword(_ url: String, _ password: String) throws -> String {
        let scheme = try #require(url.range(of: "://"))
        let at = try #require(url.range(of: "@", range: scheme.upperBound..<url.endIndex))
        let credentials = url[scheme.upperBound..<at.lowerBound]
        let user = credentials.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return String(url[..<scheme.upperBound]) + user + ":" + password + String(url[at.lowerBound...])
    }

    /// The password in the URL, which no output may contain.
    static func password(_ url: String) -> String? {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", range: scheme.upperBound..<url.endIndex)
        else { return nil }
        let credentials = url[scheme.upperBound..<at.lowerBound].split(separator: ":", maxSplits: 1)
        return credentials.count == 2 ? String(credentials[1]) : nil
    }
}

extension DLQCommandSuites {
    @Suite("dlq on PostgreSQL: the PostgreSQL server")
    struct PostgresCommandServerTests {
        @Test("the dlq PostgreSQL tests run for real when DLQ_REQUIRE_POSTGRES=1")
        func serverIsGivenWhenRequired() {
            if CommandTestServer.required {
                #expect(
                    CommandTestServer.url != nil,
                    "DLQ_REQUIRE_POSTGRES=1 but DLQ_POSTGRES_URL is unset: the dlq PostgreSQL tests would be skipped"
                )
            } else if CommandTestServer.url == nil {
                print("note: \(CommandTestServer.skipMessage)")
            }
        }
    }
}

extension DLQCommandSuites {
    @Suite(
        "dlq on PostgreSQL: every command with --store postgres://",
        .enabled(if: CommandTestServer.isAvailable, CommandTestServer.skipMessage)
    )
    struct PostgresCommandTests {
        /// Runs `dlq ARGUMENTS --store URL` and expects exit status 0; no output names the password.
        @discardableResult
        private func ok(_ space: Workspace, _ store: String, _ arguments: [String]) throws -> DLQRun {
            let run = try space.ok(arguments + ["--store", store])
            if let password = CommandTestServer.password(store) {
                #expect(!run.output.contains(password) && !run.stderr.contains(password), "\(arguments)")
            }
            return run
        }

        private func add(
            _ space: Workspace,
            _ store: String,
            source: String,
            reason: String = "timeout",
            message: String = "upstream answered 503",
            payload: String
        ) throws -> String {
            let run = try self.ok(
                space,
                store,
                [
                    "add", "--source", source, "--reason", reason, "--error-type", "HTTPError", "--error-message",
                    message,
                    "--payload", payload, "--metadata", "tenant=acme",
                ]
            )
            return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        private func letters(_ space: Workspace, _ store: String, _ arguments: [String] = []) throws -> [DeadLetter] {
            let run = try self.ok(space, store, ["list", "--json"] + arguments)
            return try JSONDecoder().decode([DeadLetter].self, from: run.stdout)
        }

        @Test("migrate, add, list, show, stats, groups, redrive, replay, delete and purge against a server")
        func commands() throws {
            let space = try Workspace()
            defer { space.remove() }
            let store = try CommandTestServer.freshStore()

            let migrated = try self.ok(space, store, ["migrate"])
            #expect(migrated.output.contains("created, schema version 6 (0 letters)"), "\(migrated)")
            #expect(try self.ok(space, store, ["migrate"]).output.contains("schema version 6, already up to date"))

            let a = try self.add(space, store, source: "orders", payload: #"{"order":1}"#)
            let b = try self.add(space, store, source: "orders", payload: #"{"order":2}"#)
            let c = try self.add(
                space,
                store,
                source: "payments",
                reason: "validation",
                message: "bad iban",
                payload: "c"
            )
            let listed = try self.letters(space, store)
            #expect(listed.map(\.id) == [a, b, c].sorted())
            #expect(try self.letters(space, store, ["--source", "payments"]).map(\.id) == [c])
            let first = try #require(listed.first { $0.id == a })
            #expect(first.payload == Data(#"{"order":1}"#.utf8))
            #expect(first.metadata == ["tenant": "acme"])
            #expect(first.reason == .timeout)

            let shown = try self.ok(space, store, ["show", a]).output
            #expect(
                shown.contains(a) && shown.contains("orders") && shown.contains("upstream answered 503"),
                "\(shown)"
            )
            #expect(try self.ok(space, store, ["show", a, "--raw"]).stdout == Data(#"{"order":1}"#.utf8))
            let missing = try space.run(["show", "no-such-letter", "--store", store])
            expectOneLineError(missing, status: 3, containing: "no-such-letter")

            let stats = try self.ok(space, store, ["stats", "--json"])
            let summary = try #require(try JSONSerialization.jsonObject(with: stats.stdout) as? [String: Any])
            #expect(summary["total"] as? Int == 3)
            #expect(summary["bySource"] as? [String: Int] == ["orders": 2, "payments": 1])
            #expect(summary["byReason"] as? [String: Int] == ["timeout": 2, "validation": 1])
            #expect((summary["byStatus"] as? [String: Int])?["dead"] == 3)
            #expect((summary["byAge"] as? [String: Int])?["<1h"] == 3)

            let groups = try self.ok(space, store, ["groups", "--json"])
            let groupList = try #require(try JSONSerialization.jsonObject(with: groups.stdout) as? [[String: Any]])
            #expect(groupList.map { $0["count"] as? Int } == [2, 1])
            #expect(try self.ok(space, store, ["groups"]).output.contains("upstream answered 503"))

            #expect(
                try self.ok(space, store, ["redrive", "--source", "payments"]).output.hasPrefix("redriven 1 letter ·")
            )
            #expect(try self.letters(space, store, ["--source", "payments"]).first?.status == .retrying)

            try FileManager.default.createDirectory(atPath: space.path("out"), withIntermediateDirectories: false)
            let replay = try space.run(
                ["replay", "--source", "orders", "--exec", #"cat > "out/$DLQ_ID""#, "--store", store]
            )
            #expect(replay.status == 0, "\(replay)")
            #expect(replay.output.contains("matched 2") && replay.output.contains("succeeded 2"), "\(replay)")
            #expect(space.contents("out/\(a)") == Data(#"{"order":1}"#.utf8))
            #expect(space.contents("out/\(b)") == Data(#"{"order":2}"#.utf8))
            #expect(try self.letters(space, store).map(\.id) == [c])

            let d = try self.add(space, store, source: "emails", payload: "d")
            let e = try self.add(space, store, source: "emails", payload: "e")
            #expect(try self.ok(space, store, ["delete", d]).output == "1\n")
            #expect(try self.letters(space, store).map(\.id) == [c, e].sorted())
            let purged = try self.ok(space, store, ["purge", "--all", "--yes"])
            #expect(purged.output.contains("purged 2 letters"), "\(purged)")
            #expect(try self.letters(space, store).isEmpty)
            let empty = try self.ok(space, store, ["stats", "--json"])
            #expect((try JSONSerialization.jsonObject(with: empty.stdout) as? [String: Any])?["total"] as? Int == 0)
        }

        @Test("export from PostgreSQL, import into another schema: the second export is identical")
        func exportImport() throws {
            let space = try Workspace()
            defer { space.remove() }
            let source = try CommandTestServer.freshStore()
            let target = try CommandTestServer.freshStore()
            try self.ok(space, source, ["migrate"])
            _ = try self.add(space, source, source: "orders", payload: #"{"order":1}"#)
            _ = FileManager.default.createFile(atPath: space.path("bin"), contents: Data([0, 255, 10, 34, 92]))
            try self.ok(
                space,
                source,
                [
                    "add", "--source", "payments", "--reason", "timeout", "--error-message", "slow \"quoted\"\nline 2",
                    "--payload-file", "bin", "--content-type", "application/octet-stream",
                ]
            )
            _ = try self.add(space, source, source: "shipments", payload: "s")
            _ = try space.run([
                "replay", "--source", "shipments", "--exec", "echo carrier down >&2; exit 1", "--store", source,
            ])

            try self.ok(space, source, ["export", "--output", "first.jsonl"])
            let first = try #require(space.contents("first.jsonl"))
            #expect(String(decoding: first, as: UTF8.self).split(separator: "\n").count == 3)
            #expect(String(decoding: first, as: UTF8.self).contains("carrier down"))

            try self.ok(space, target, ["migrate"])
            let imported = try self.ok(space, target, ["import", "first.jsonl"])
            #expect(imported.output.contains("imported 3, skipped 0"), "\(imported)")
            try self.ok(space, target, ["export", "--output", "second.jsonl"])
            #expect(space.contents("second.jsonl") == first)
            let again = try self.ok(space, target, ["import", "first.jsonl"])
            #expect(again.output.contains("imported 0, skipped 3"), "\(again)")
        }

        @Test("a wrong password: exit 4, one line naming the refused login, never either password")
        func wrongPassword() throws {
            let space = try Workspace()
            defer { space.remove() }
            let store = try CommandTestServer.freshStore()
            let wrong = "not-the-password-\(UInt32.random(in: 0...UInt32.max))"
            let url = try CommandTestServer.withPassword(store, wrong)
            for arguments in [["list"], ["migrate"], ["stats", "--json"]] {
                let run = try space.run(arguments + ["--store", url])
                expectOneLineError(run, status: 4, containing: "refused the login of user")
                #expect(!run.stderr.contains(wrong), "\(run)")
                if let password = CommandTestServer.password(store) { #expect(!run.stderr.contains(password)) }
            }
        }
    }
}
