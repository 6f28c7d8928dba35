import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq for an operator: typos, odd values, times, fingerprint prefixes, unknown values, help")
    struct OperatorCommandTests {
        /// Writes `letters` as JSON Lines and imports them into the workspace's store.
        static func importLetters(_ letters: [DeadLetter], into space: Workspace) throws {
            space.write("letters.jsonl", letters.map { DeadLetterJSON.string($0) + "\n" }.joined())
            try space.ok(["import", "letters.jsonl"])
        }

        static func letter(
            _ id: String,
            source: String = "orders",
            reason: FailureReason = .timeout,
            errorType: String = "GatewayTimeout",
            message: String = "slow",
            lastFailedAt: Date,
            fingerprint: String? = nil
        ) -> DeadLetter {
            DeadLetter(
                id: id,
                source: source,
                reason: reason,
                errorType: errorType,
                errorMessage: message,
                firstFailedAt: lastFailedAt.addingTimeInterval(-60),
                lastFailedAt: lastFailedAt,
                fingerprint: fingerprint,
                payload: Data("{}".utf8)
            )
        }

        @Test(
            "a mistyped command exits 2 with the closest commands",
            arguments: [
                (["lsit"], "unknown command 'lsit'; did you mean 'list'?"),
                (["grups", "--json"], "did you mean 'groups'?"),
                (["--store", "dead-letters.sqlite", "redrvie"], "did you mean 'redrive'?"),
                (["re"], "did you mean 'redrive' or 'replay'?"),
                (["frobnicate"], "the commands are add, list, show"),
            ]
        )
        func didYouMean(arguments: [String], mentioned: String) throws {
            let space = try Workspace()
            defer { space.remove() }
            expectOneLineError(try space.run(arguments), status: 2, containing: mentioned)
        }

        @Test(
            "a negative or malformed number, rate or duration says the form it takes",
            arguments: [
                (["list", "--limit", "-1"], "--limit <n>': must be a whole number, 1 or more"),
                (["list", "--limit", "ten"], "must be a whole number, 1 or more"),
                (["groups", "--min-attempts", "-2"], "--min-attempts <n>': must be a whole number, 0 or more"),
                (["replay", "--exec", "true", "--rate", "fast"], "must be a number per second, minute or hour: 10/s"),
                (["replay", "--exec", "true", "--rate", "-5/s"], "10/s, 600/m, 3600/h"),
                (["replay", "--exec", "true", "--concurrency", "-1"], "--concurrency must be at least 1"),
                (["replay", "--exec", "true", "--timeout", "soon"], "must be a length of time: 500ms, 30s"),
                (["list", "--since", "tomorrow"], "today, yesterday, or an age"),
            ]
        )
        func valueForms(arguments: [String], mentioned: String) throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            let run = try space.run(arguments)
            expectOneLineError(run, status: 2, containing: mentioned)
            #expect(!run.stderr.contains("Missing value"), "\(run)")
        }

        @Test("--since and --until take today, yesterday, and times without seconds or zone, read as UTC")
        func timeForms() throws {
            let space = try Workspace()
            defer { space.remove() }
            let now = Date()
            let midnight = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
            // A day long before yesterday, so that its letters and those of yesterday and today never mix.
            let evening = try #require(Timestamp.parse("2025-03-05T22:00:00Z"))
            try Self.importLetters(
                [
                    Self.letter("a-before-22", lastFailedAt: evening.addingTimeInterval(-1)),
                    Self.letter("b-at-22", lastFailedAt: evening),
                    Self.letter("c-at-22-30", lastFailedAt: evening.addingTimeInterval(30 * 60 + 15)),
                    Self.letter("d-yesterday", lastFailedAt: midnight.addingTimeInterval(-3600)),
                    Self.letter("e-today", lastFailedAt: midnight.addingTimeInterval(1)),
                ],
                into: space
            )
            func ids(_ arguments: [String]) throws -> [String] { try space.letters(arguments).map(\.id) }
            #expect(try ids(["--since", "2025-03-05T22:00", "--until", "2025-03-06"]) == ["b-at-22", "c-at-22-30"])
            #expect(try ids(["--since", "2025-03-05 22:00", "--until", "2025-03-05T22:30"]) == ["b-at-22"])
            #expect(try ids(["--since", "2025-03-05T22:30:15", "--until", "2025-03-06"]) == ["c-at-22-30"])
            #expect(
                try ids(["--since", "2025-03-05T23:00+01:00", "--until", "2025-03-06"]) == ["b-at-22", "c-at-22-30"]
            )
            #expect(try ids(["--until", "2025-03-05T22:00"]) == ["a-before-22"])
            #expect(try space.letters(["--since", "today"]).map(\.id) == ["e-today"])
            #expect(try space.letters(["--since", "YESTERDAY", "--until", "today"]).map(\.id) == ["d-yesterday"])
            let help = try space.ok(["list", "--help"]).output.split(whereSeparator: \.isWhitespace).joined(
                separator: " "
            )
            #expect(help.contains("today, yesterday"))
            #expect(help.contains("Times and dates without a zone are UTC: 2026-12-05T22:00 is 22:00 UTC"))
        }

        @Test("--fingerprint takes a unique prefix of 8 or more characters; an ambiguous one is an error naming them")
        func fingerprintPrefixes() throws {
            let space = try Workspace()
            defer { space.remove() }
            let now = Date()
            try Self.importLetters(
                [
                    Self.letter("a", lastFailedAt: now, fingerprint: "ff60bdbeb7820001"),
                    Self.letter("b", lastFailedAt: now, fingerprint: "ff60bdbeb7820001"),
                    Self.letter("c", errorType: "Other", lastFailedAt: now, fingerprint: "ff60bdbe00000002"),
                    Self.letter("d", lastFailedAt: now, fingerprint: "0123456789abcdef"),
                ],
                into: space
            )
            // The Groups page and a careful operator cut fingerprints to 12 characters.
            let twelve = try space.ok(["list", "--json", "--fingerprint", "ff60bdbeb782"])
            #expect(try JSONDecoder().decode([DeadLetter].self, from: twelve.stdout).map(\.id) == ["a", "b"])
            #expect(twelve.stderr.isEmpty, "\(twelve)")
            #expect(try space.letters(["--fingerprint", "FF60BDBE0"]).map(\.id) == ["c"])
            #expect(try space.letters(["--fingerprint", "0123456789abcdef"]).map(\.id) == ["d"])
            #expect(try space.letters(["--fingerprint", "01234567", "--fingerprint", "ff60bdbe00"]).count == 2)
            let redrive = try space.ok(["redrive", "--dry-run", "--fingerprint", "ff60bdbeb782"])
            #expect(redrive.stderr.isEmpty, "\(redrive)")

            let ambiguous = try space.run(["list", "--fingerprint", "ff60bdbe"])
            expectOneLineError(ambiguous, status: 2, containing: "--fingerprint ff60bdbe is ambiguous")
            #expect(ambiguous.stderr.contains("ff60bdbeb7820001 (2 letters, GatewayTimeout)"), "\(ambiguous)")
            #expect(ambiguous.stderr.contains("ff60bdbe00000002 (1 letter, Other)"), "\(ambiguous)")
            expectOneLineError(
                try space.run(["purge", "--fingerprint", "ff60bdbe", "--yes"]),
                status: 2,
                containing: "ambiguous"
            )
            #expect(try space.letters().count == 4)

            let short = try space.ok(["list", "--fingerprint", "0123"])
            #expect(short.output.contains("No dead letters match."))
            #expect(short.stderr.contains("dlq: warning: no letter has fingerprint '0123'"), "\(short)")
            #expect(short.stderr.contains("a prefix of 8 or more characters; '0123' is the start of 0123456789abcdef"))
            let none = try space.ok(["list", "--fingerprint", "99999999"])
            #expect(none.stderr.contains("no letter has a fingerprint that starts with '99999999'"), "\(none)")
            let whole = try space.ok(["list", "--fingerprint", "9999999999999999"])
            #expect(whole.stderr == "dlq: warning: no letter has fingerprint '9999999999999999' (see 'dlq groups')\n")
        }

        @Test("a source, reason or error type that no letter has is named on stderr, with the values that exist")
        func unknownValuesWarn() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add(source: "orders", reason: "timeout", errorType: "GatewayTimeout")
            try space.add(source: "payments", reason: "validation", errorType: "CardDeclined")

            let typo = try space.ok(["list", "--reason", "timout"])
            #expect(typo.output == "No dead letters match.\n")
            #expect(
                typo.stderr
                    == "dlq: warning: no letter has reason 'timout' (did you mean 'timeout'?); the reasons letters "
                    + "have: timeout, validation\n"
            )
            let source = try space.ok(["stats", "--source", "Orders", "--source", "payments"])
            #expect(source.stderr.contains("no letter has source 'Orders' (did you mean 'orders'?)"), "\(source)")
            #expect(!source.stderr.contains("'payments'"), "\(source)")
            let type = try space.ok(["export", "--error-type", "Timeout"])
            #expect(type.stderr.contains("no letter has error type 'Timeout'"), "\(type)")
            #expect(type.stderr.contains("the error types letters have: CardDeclined, GatewayTimeout"), "\(type)")
            let groups = try space.ok(["groups", "--reason", "dependency"])
            #expect(groups.stderr.contains("no letter has reason 'dependency'; the reasons"), "\(groups)")
            // A value that exists says nothing; --json output stays one document.
            let known = try space.ok(["list", "--json", "--reason", "timeout", "--source", "orders"])
            #expect(known.stderr.isEmpty, "\(known)")
            #expect(try JSONDecoder().decode([DeadLetter].self, from: known.stdout).count == 1)
        }

        @Test("groups shows each group's reasons, first failed and last failed")
        func groupsColumns() throws {
            let space = try Workspace()
            defer { space.remove() }
            let now = Date()
            try Self.importLetters(
                [
                    Self.letter("a", reason: .timeout, lastFailedAt: now.addingTimeInterval(-3 * 3600)),
                    Self.letter("b", reason: .timeout, lastFailedAt: now.addingTimeInterval(-120)),
                    Self.letter("c", reason: .dependency, lastFailedAt: now.addingTimeInterval(-600)),
                ],
                into: space
            )
            let run = try space.ok(["groups"], environment: ["COLUMNS": "200"])
            let header = try #require(run.lines.first)
            for title in ["REASON", "FIRST FAILED", "LAST FAILED"] { #expect(header.contains(title), "\(run)") }
            let row = try #require(run.lines.dropFirst().first)
            #expect(row.contains("timeout,dependency"), "\(run)")
            #expect(row.contains("3h ago") && row.contains("2m ago"), "\(run)")
        }

        @Test("every command's help examples fit in 80 columns, one command a line, at any terminal width")
        func helpExamplesFit() throws {
            let space = try Workspace()
            defer { space.remove() }
            let commands = [
                "", "add", "list", "show", "stats", "groups", "redrive", "replay", "park", "edit", "delete", "purge",
                "export", "import", "check", "serve", "demo", "migrate",
            ]
            var examples = 0
            // Under about 27 columns, argument-parser's own wrapping trapped (debug) or wrote nothing (release).
            for columns in ["80", "50", "20"] {
                for command in commands {
                    let arguments = (command.isEmpty ? [] : [command]) + ["--help"]
                    let help = try space.ok(arguments, environment: ["COLUMNS": columns]).output.components(
                        separatedBy: "\n"
                    )
                    var inExamples = false
                    for line in help {
                        if line.hasPrefix("Examples") {
                            inExamples = true
                            continue
                        }
                        if line.trimmingCharacters(in: .whitespaces).isEmpty { inExamples = false }
                        guard inExamples else { continue }
                        examples += 1
                        // A command broken in the middle goes on at the start of the next line.
                        #expect(
                            line.hasPrefix("  ") && !line.hasPrefix("   ") && line.contains("dlq "),
                            "dlq \(command) --help, COLUMNS=\(columns): '\(line)'"
                        )
                        #expect(line.count <= 80, "dlq \(command) --help: \(line.count) columns: '\(line)'")
                    }
                }
            }
            #expect(examples > 100)
        }

        @Suite(
            "dlq for an operator on PostgreSQL: fingerprint prefixes and unknown values",
            .enabled(if: CommandTestServer.isAvailable, CommandTestServer.skipMessage)
        )
        struct OperatorPostgresCommandTests {
            @Test("a fingerprint prefix resolves, an ambiguous one is refused, an unknown reason warns")
            func prefixesAndWarnings() throws {
                let space = try Workspace()
                defer { space.remove() }
                let store = try CommandTestServer.freshStore()
                try space.ok(["migrate", "--store", store])
                let now = Date()
                space.write(
                    "letters.jsonl",
                    [
                        OperatorCommandTests.letter("a", lastFailedAt: now, fingerprint: "ff60bdbeb7820001"),
                        OperatorCommandTests.letter("b", lastFailedAt: now, fingerprint: "ff60bdbe00000002"),
                    ].map { DeadLetterJSON.string($0) + "\n" }.joined()
                )
                try space.ok(["import", "letters.jsonl", "--store", store])
                let one = try space.ok(["list", "--json", "--store", store, "--fingerprint", "ff60bdbeb782"])
                #expect(try JSONDecoder().decode([DeadLetter].self, from: one.stdout).map(\.id) == ["a"])
                #expect(one.stderr.isEmpty, "\(one)")
                expectOneLineError(
                    try space.run(["redrive", "--store", store, "--fingerprint", "ff60bdbe"]),
                    status: 2,
                    containing: "--fingerprint ff60bdbe is ambiguous: 2 fingerprints start with it"
                )
                let typo = try space.ok(["groups", "--store", store, "--reason", "timout"])
                #expect(typo.stderr.contains("no letter has reason 'timout' (did you mean 'timeout'?)"), "\(typo)")
                #expect(typo.output == "No dead letters.\n", "\(typo)")
            }
        }
    }
}
