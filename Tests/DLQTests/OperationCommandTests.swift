import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq ops, dlq instances, and redrive and replay as operations")
    struct OperationCommandTests {
        /// Stores `count` dead letters of `source` in the workspace's store, failed an hour ago.
        func seed(
            _ space: Workspace,
            count: Int,
            source: String = "orders",
            seed: UInt64 = 1
        ) async throws
            -> [DeadLetter]
        {
            let letters = DeadLetterFixtures.letters(count: count, start: Date().addingTimeInterval(-3600), seed: seed)
            {
                _,
                letter in
                letter.source = source
            }
            let store = try SQLiteDeadLetterStore(path: space.store)
            try await store.append(letters)
            try store.close()
            return letters
        }

        func operations(_ space: Workspace, _ arguments: [String] = []) throws -> [[String: Any]] {
            let run = try space.ok(["ops", "list", "--json"] + arguments)
            return try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [[String: Any]], "\(run)")
        }

        @Test("redrive --rate 10/s spreads 100 letters 0.1 s apart, freezes its set and warns that nobody listens")
        func redriveAtARate() async throws {
            let space = try Workspace()
            defer { space.remove() }
            _ = try await self.seed(space, count: 100)
            let run = try space.ok(["redrive", "--source", "orders", "--rate", "10/s", "--json"])
            let answer = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any], "\(run)")
            #expect(answer["matched"] as? Int == 100)
            let warnings = try #require(answer["warnings"] as? [String])
            #expect(warnings.count == 1 && warnings[0].contains("'orders'"), "\(warnings)")
            #expect(run.stderr.contains("warning: no running service handles source 'orders'"), "\(run)")
            let operation = try #require(answer["operation"] as? [String: Any])
            let id = try #require(operation["id"] as? String)
            #expect(operation["kind"] as? String == "redrive")
            #expect(operation["state"] as? String == "running")
            #expect((operation["counts"] as? [String: Int])?["pending"] == 100)

            let due = try space.letters(["--source", "orders"]).compactMap(\.nextAttemptAt).sorted()
            #expect(due.count == 100)
            for index in 1..<due.count {
                let gap = due[index].timeIntervalSince(due[index - 1])
                #expect(abs(gap - 0.1) < 0.0015, "letter \(index): \(gap) s after the one before")
            }
            // Letters of the source added afterwards are not part of it.
            _ = try await self.seed(space, count: 5, seed: 9)
            let shown = try space.ok(["ops", "show", id, "--json"])
            let record = try #require(try JSONSerialization.jsonObject(with: shown.stdout) as? [String: Any])
            #expect((record["counts"] as? [String: Int])?["selected"] == 100)
            #expect(try space.ok(["redrive", "--source", "orders"]).output.contains("redriven 105 letters"))
        }

        @Test("cancelling a pending redrive returns its letters to dead, each with a cancelled entry naming who")
        func cancelRedrive() async throws {
            let space = try Workspace()
            defer { space.remove() }
            let letters = try await self.seed(space, count: 3)
            try space.ok(["redrive"], environment: ["DLQ_ACTOR": "alice"])
            let id = try #require(try self.operations(space).first?["id"] as? String)
            let cancel = try space.ok(["ops", "cancel", id], environment: ["DLQ_ACTOR": "bob"])
            #expect(cancel.output.contains("3 letters returned to dead"), "\(cancel)")
            for letter in try space.letters() {
                #expect(letter.status == .dead)
                #expect(letter.history.last?.event == .cancelled)
                #expect(letter.history.last?.actor == "bob")
                #expect(letter.history.last?.operation == id)
            }
            let record = try #require(try self.operations(space, ["--state", "cancelled"]).first)
            #expect(record["id"] as? String == id)
            #expect(record["actor"] as? String == "alice")
            #expect(record["message"] as? String == "cancelled by bob")
            #expect(letters.count == 3)
            #expect(try space.run(["ops", "cancel", id]).status == 2, "already cancelled")
            #expect(try space.run(["ops", "show", "no-such-operation"]).status == 3)
        }

        @Test(
            "a replay SIGKILLed midway is interrupted; --resume runs what it had not finished and ends finished"
        )
        func killedReplayResumes() async throws {
            let space = try Workspace()
            defer { space.remove() }
            let letters = try await self.seed(space, count: 6)
            let slow = letters[2].id
            // The slow letter hangs the first time (until the replay is killed), then succeeds.
            let command =
                #"echo "$DLQ_ID" >> ran.log; if [ "$DLQ_ID" = "\#(slow)" ] && [ ! -f hung ]; then echo $$ > hung; exec sleep 30; fi"#
            let process = try space.start(["replay", "--lease", "1s", "--exec", command])
            var waited = 0
            while space.contents("hung")?.isEmpty != false, waited < 400 {
                try await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            // The slow letter runs a while before the process dies (the letters before it have committed their
            // outcomes by then; one that finished in the very instant of the kill would count as skipped).
            try await Task.sleep(for: .milliseconds(500))
            kill(process.processIdentifier, SIGKILL)
            // The command's process too, before waiting: Foundation's wait ends only once it is gone as well.
            let child = String(decoding: space.contents("hung") ?? Data(), as: UTF8.self)
            if let pid = Int32(child.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
            process.waitUntilExit()
            // Wait out the heartbeat's lease: the replay is then shown interrupted, with no other process.
            try await Task.sleep(for: .milliseconds(1_500))
            let record = try #require(try self.operations(space).first)
            let id = try #require(record["id"] as? String)
            #expect(record["state"] as? String == "interrupted", "\(record)")

            let resumed = try space.ok(["replay", "--resume", id])
            #expect(resumed.output.contains("operation \(id)"), "\(resumed)")
            #expect(resumed.elapsed < .seconds(10), "\(resumed.elapsed)")
            let finished = try #require(try self.operations(space).first { $0["id"] as? String == id })
            #expect(finished["state"] as? String == "finished", "\(finished)")
            let counts = try #require(finished["counts"] as? [String: Int])
            #expect(counts["selected"] == 6)
            #expect(counts["pending"] == 0)
            #expect(counts["succeeded"] == 6, "\(counts)")
            #expect(try space.letters().isEmpty)
            // Only the letter that was running when the process died ran twice (concurrency 1).
            let ran = String(decoding: space.contents("ran.log") ?? Data(), as: UTF8.self).split(separator: "\n")
            #expect(ran.count == 7, "\(ran)")
            #expect(Set(ran.map(String.init)) == Set(letters.map(\.id)))
            #expect(ran.filter { $0 == slow }.count == 2)
        }

        @Test("a canary that fails pauses the replay (exit 1); dlq ops resume goes on with the recorded command")
        func canaryThenResume() async throws {
            let space = try Workspace()
            defer { space.remove() }
            _ = try await self.seed(space, count: 5)
            let command = #"echo "$DLQ_ID" >> ran.log; test -f fixed"#
            let paused = try space.run(["replay", "--canary", "2", "--max-failures", "100", "--exec", command])
            #expect(paused.status == 1, "\(paused)")
            #expect(paused.stderr.contains("replay paused: a canary letter failed; go on with: dlq ops resume"))
            let record = try #require(try self.operations(space).first)
            let id = try #require(record["id"] as? String)
            #expect(record["state"] as? String == "paused")
            #expect((record["counts"] as? [String: Int])?["failed"] == 2)
            space.write("fixed", "")
            try space.ok(["ops", "resume", id])
            let finished = try #require(try self.operations(space).first { $0["id"] as? String == id })
            #expect(finished["state"] as? String == "finished")
            #expect((finished["counts"] as? [String: Int])?["succeeded"] == 3)
            #expect(try space.letters().count == 2, "the canary's two failures stay")
        }

        @Test("dlq ops cancel stops a replay running in another process within its heartbeat")
        func cancelReplayFromAnotherProcess() async throws {
            let space = try Workspace()
            defer { space.remove() }
            _ = try await self.seed(space, count: 6)
            let process = try space.start(["replay", "--exec", #"echo "$DLQ_ID" >> ran.log; sleep 1"#])
            var waited = 0
            while space.contents("ran.log")?.isEmpty != false, waited < 400 {
                try await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            let id = try #require(try self.operations(space, ["--state", "running"]).first?["id"] as? String)
            try space.ok(["ops", "cancel", id], environment: ["DLQ_ACTOR": "carol"])
            process.waitUntilExit()
            let ran = String(decoding: space.contents("ran.log") ?? Data(), as: UTF8.self).split(separator: "\n")
            #expect(ran.count < 6, "the replay stopped before its end: \(ran)")
            let record = try #require(try self.operations(space).first { $0["id"] as? String == id })
            #expect(record["state"] as? String == "cancelled")
            #expect(record["message"] as? String == "cancelled by carol")
            let counts = try #require(record["counts"] as? [String: Int])
            #expect(counts["pending"] == 0)
            #expect(counts["succeeded"]! + counts["skipped"]! == 6, "\(counts)")
        }

        @Test("dlq instances lists the queues that run on the store, and redrive warns only for unhandled sources")
        func instancesListed() async throws {
            let space = try Workspace()
            defer { space.remove() }
            _ = try await self.seed(space, count: 2, source: "orders")
            _ = try await self.seed(space, count: 2, source: "emails", seed: 4)
            #expect(try space.ok(["instances"]).output.contains("No running service"))
            let store = try SQLiteDeadLetterStore(path: space.store)
            var configuration = DeadLetterQueue.Configuration()
            configuration.instanceID = "billing-1"
            let queue = try DeadLetterQueue(store: store, configuration: configuration)
            // A handler that never finishes a letter, so the redriven letters stay put while we look.
            queue.register(source: "orders") { _ in try await Task.sleep(for: .seconds(60)) }
            let running = Task { try await queue.run() }
            defer {
                running.cancel()
                try? store.close()
            }
            var instances: [[String: Any]] = []
            for _ in 0..<100 {
                let run = try space.ok(["instances", "--json"])
                instances = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [[String: Any]])
                if !instances.isEmpty { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let instance = try #require(instances.first)
            #expect(instance["id"] as? String == "billing-1")
            #expect(instance["sources"] as? [String] == ["orders"])
            #expect(instance["pid"] as? Int == Int(getpid()))
            #expect(instance["host"] is String && instance["version"] is String && instance["lastSeenAt"] is String)
            let redrive = try space.ok(["redrive", "--json"])
            let answer = try #require(try JSONSerialization.jsonObject(with: redrive.stdout) as? [String: Any])
            #expect(
                answer["warnings"] as? [String] == [
                    "no running service handles source 'emails'; its letters wait until one starts (see dlq instances)"
                ]
            )
        }
    }
}
