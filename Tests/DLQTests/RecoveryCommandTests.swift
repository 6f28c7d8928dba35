import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq redrive and replay")
    struct RecoveryCommandTests {
        @Test("redrive makes the selected letters due now and prints the count; --dry-run changes nothing")
        func redrive() throws {
            let space = try Workspace()
            defer { space.remove() }
            let a = try space.add(source: "orders")
            let b = try space.add(source: "payments")
            #expect(
                try space.ok(["redrive", "--source", "orders", "--dry-run"]).output
                    == "dry run: 1 letter would be redriven; nothing was changed\n"
            )
            #expect(try space.letters().allSatisfy { $0.status == .dead })
            #expect(try space.ok(["redrive", "--source", "orders"]).output.hasPrefix("redriven 1 letter · operation "))
            let letters = try space.letters()
            let redriven = try #require(letters.first { $0.id == a })
            #expect(redriven.status == .retrying)
            let due = try #require(redriven.nextAttemptAt)
            #expect(abs(due.timeIntervalSinceNow) < 60)
            #expect(letters.first { $0.id == b }?.status == .dead)
        }

        @Test("replay runs the command per letter with the payload on stdin and DLQ_* set; success removes it")
        func replaySucceeds() throws {
            let space = try Workspace()
            defer { space.remove() }
            let a = try space.add(
                source: "orders",
                reason: "timeout",
                payload: "payload-a",
                extra: ["--attempts", "2"]
            )
            let b = try space.add(source: "orders", reason: "timeout", payload: "payload-b")
            let keep = try space.add(source: "payments", payload: "not selected")
            try FileManager.default.createDirectory(atPath: space.path("out"), withIntermediateDirectories: false)
            let command =
                #"cat > "out/$DLQ_ID.payload" && echo "$DLQ_SOURCE $DLQ_REASON $DLQ_ATTEMPTS" > "out/$DLQ_ID.env""#
            let run = try space.run(["replay", "--source", "orders", "--concurrency", "2", "--exec", command])
            #expect(run.status == 0, "\(run)")
            #expect(run.output.contains("matched 2") && run.output.contains("succeeded 2"), "\(run)")
            #expect(run.output.contains("failed 0") && run.output.contains("skipped 0"), "\(run)")
            #expect(space.contents("out/\(a).payload") == Data("payload-a".utf8))
            #expect(space.contents("out/\(b).payload") == Data("payload-b".utf8))
            #expect(space.contents("out/\(a).env") == Data("orders timeout 2\n".utf8))
            #expect(space.contents("out/\(b).env") == Data("orders timeout 1\n".utf8))
            #expect(try space.letters().map(\.id) == [keep])
        }

        @Test("--keep keeps succeeded letters with a history entry; --dry-run runs nothing")
        func keepAndDryRun() throws {
            let space = try Workspace()
            defer { space.remove() }
            let id = try space.add()
            let dry = try space.ok(["replay", "--dry-run", "--exec", "touch ran"])
            #expect(dry.output.contains("1 letter would be replayed"))
            #expect(dry.output.contains(id))
            #expect(!space.exists("ran"))
            try space.ok(["replay", "--keep", "--exec", "true"])
            let letter = try #require(try space.letters().first)
            #expect(letter.id == id)
            #expect(letter.history.map(\.outcome) == [nil, "succeeded"])
        }

        @Test("a failing command records the last line of its stderr, or its exit status, and exits 1")
        func replayFails() throws {
            let space = try Workspace()
            defer { space.remove() }
            let a = try space.add(source: "orders", reason: "timeout", payload: "a")
            let b = try space.add(source: "orders", reason: "timeout", payload: "b")
            let command = #"""
                if [ "$(cat)" = "a" ]; then echo "starting" >&2; echo "HTTP 422: order ord-1 rejected" >&2; exit 3; else exit 7; fi
                """#
            let run = try space.run(["replay", "--exec", command])
            #expect(run.status == 1, "\(run)")
            #expect(run.output.contains("matched 2") && run.output.contains("failed 2"), "\(run)")
            let letters = try space.letters()
            let first = try #require(letters.first { $0.id == a })
            #expect(first.errorMessage == "HTTP 422: order ord-1 rejected")
            #expect(first.replayCount == 1)
            #expect(first.attempts == 2)
            #expect(first.reason == .timeout)
            #expect(first.status == .dead)
            #expect(first.history.last?.outcome == "failed")
            let second = try #require(letters.first { $0.id == b })
            #expect(second.errorMessage == "exit status 7")
            #expect(second.replayCount == 1)
        }

        @Test("a command that hangs past --timeout is killed and counts as a failure")
        func replayTimesOut() throws {
            let space = try Workspace()
            defer { space.remove() }
            let id = try space.add(reason: "dependency")
            let run = try space.run(["replay", "--timeout", "1s", "--exec", "sleep 30; echo never"])
            #expect(run.status == 1, "\(run)")
            #expect(run.output.contains("failed 1"), "\(run)")
            #expect(run.elapsed < .seconds(10), "killed at the timeout, not after the sleep")
            let letter = try #require(try space.letters().first)
            #expect(letter.id == id)
            #expect(letter.reason == .timeout)
            #expect(letter.errorMessage.contains("timed out after 1s"))
            #expect(letter.replayCount == 1)
        }

        @Test("after 3 failed replays a letter is parked, and replay leaves parked letters alone")
        func parking() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            for _ in 0..<3 { #expect(try space.run(["replay", "--exec", "exit 1"]).status == 1) }
            #expect(try space.letters().first?.status == .parked)
            let skipped = try space.ok(["replay", "--exec", "exit 1"])
            #expect(skipped.output.contains("matched 0"))
            let selected = try space.run(["replay", "--status", "parked", "--exec", "true"])
            #expect(selected.status == 0 && selected.output.contains("succeeded 1"), "\(selected)")
            #expect(try space.letters().isEmpty)
        }

        @Test("replay stops after --max-failures failures in a row")
        func maxFailures() throws {
            let space = try Workspace()
            defer { space.remove() }
            for _ in 0..<5 { try space.add() }
            let run = try space.run(["replay", "--max-failures", "2", "--exec", "exit 1"])
            #expect(run.status == 1)
            #expect(run.output.contains("failed 2") && run.output.contains("skipped 3"), "\(run)")
            #expect(run.stderr.contains("--max-failures"))
        }
    }
}

extension DLQCommandSuites {
    @Suite("dlq replay and Ctrl-C")
    struct ReplayInterruptTests {
        @Test("SIGINT stops the replay after the command in flight; its outcome is recorded, the rest is untouched")
        func interrupt() async throws {
            let space = try Workspace()
            defer { space.remove() }
            for index in 0..<5 { try space.add(payload: "p\(index)") }
            let executable = try #require(DLQBinary.path)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["replay", "--exec", #"touch "started-$DLQ_ID"; sleep 1; touch "done-$DLQ_ID""#]
            process.currentDirectoryURL = URL(fileURLWithPath: space.folder)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait for the first command to start (not a timing assumption: we poll for its marker file). The poll
            // blocks this thread on purpose: an awaited sleep could wait behind other suites' blocking subprocess
            // calls on the two cooperative threads, long enough for the whole replay to finish unseen.
            var started: [String] = []
            for _ in 0..<500 where started.isEmpty {
                usleep(10_000)
                started =
                    (try? FileManager.default.contentsOfDirectory(atPath: space.folder))?
                    .filter { $0.hasPrefix("started-") } ?? []
            }
            #expect(!started.isEmpty)
            process.interrupt()
            process.waitUntilExit()
            #expect(process.terminationStatus == 130)
            let files = try FileManager.default.contentsOfDirectory(atPath: space.folder)
            let startedIDs = Set(
                files.filter { $0.hasPrefix("started-") }.map { String($0.dropFirst("started-".count)) }
            )
            let doneIDs = Set(files.filter { $0.hasPrefix("done-") }.map { String($0.dropFirst("done-".count)) })
            #expect(startedIDs == doneIDs, "every command that started ran to its end")
            let left = try space.letters()
            #expect(left.count == 5 - doneIDs.count)
            #expect(Set(left.map(\.id)).isDisjoint(with: doneIDs))
            // Nothing is left leased: a new replay takes every remaining letter.
            let rest = try space.ok(["replay", "--exec", "true"])
            #expect(rest.output.contains("succeeded \(left.count)"), "\(rest)")
        }
    }
}
