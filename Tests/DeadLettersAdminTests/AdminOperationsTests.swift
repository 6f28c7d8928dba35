import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import ServiceLifecycle
import Testing

/// A failure that is not worth retrying, as a handler of a service throws it.
struct StillInvalid: Error, CustomStringConvertible, DeadLetterReasonProviding {
    var failureReason: FailureReason { .validation }
    var description: String { "total is still missing" }
}

@Suite("Admin: operations and instances over HTTP and on the dashboard")
struct AdminOperationsTests {
    static let ordersWarning = "no running service handles source 'orders'; its letters wait until one does"

    /// A live instance that handles `sources`, seen now.
    static func listening(_ harness: AdminHarness, sources: [String]) async throws {
        let now = harness.clock.now()
        try await harness.store.saveInstance(
            DeadLetterInstance(
                id: "svc-1",
                host: "app-1",
                pid: 42,
                version: DeadLetterQueue.version,
                sources: sources,
                startedAt: now,
                lastSeenAt: now
            )
        )
    }

    @Test("a redrive with no instance for its source warns, records a pending operation, lists it, and cancel ends it")
    func redriveWarnListCancel() async throws {
        let harness = try await AdminHarness()
        try await Self.listening(harness, sources: ["payments"])
        try await harness.run { client in
            let body = #"{"filter":{"source":"orders","reason":"validation"}}"#
            let dry = try await client.postJSON("/api/v1/redrive", #"{"filter":{"source":"orders"},"dryRun":true}"#)
            let dryAnswer = try dry.object()
            #expect(dryAnswer["matched"] as? Int == 7)
            #expect(dryAnswer["operation"] is NSNull, "a dry run records no operation")
            #expect(dryAnswer["warnings"] as? [String] == [Self.ordersWarning])
            #expect(try await harness.queue.operations().isEmpty)

            let answer = try await client.postJSON("/api/v1/redrive", body).object()
            #expect(answer["matched"] as? Int == 6)
            #expect(answer["warnings"] as? [String] == [Self.ordersWarning])
            let operation = try #require(answer["operation"] as? [String: Any])
            let id = try #require(operation["id"] as? String)
            #expect(operation["kind"] as? String == "redrive")
            #expect(operation["state"] as? String == "running")
            #expect(operation["actor"] as? String == "anonymous@127.0.0.1")
            let counts = try #require(operation["counts"] as? [String: Any])
            #expect(counts["selected"] as? Int == 6)
            #expect(counts["pending"] as? Int == 6)
            for key in ["createdAt", "startedAt", "finishedAt", "filter", "parameters"] {
                #expect(operation.keys.contains(key), "the operation has \(key)")
            }

            // A source a live instance handles: no warning.
            let payments = try await client.postJSON("/api/v1/redrive", #"{"filter":{"source":"payments"}}"#)
            #expect(try payments.object()["warnings"] as? [String] == [])

            let list = try await client.send(.get, "/api/v1/operations")
            #expect(list.status == .ok)
            let operations = try #require(JSONSerialization.jsonObject(with: Data(list.text.utf8)) as? [[String: Any]])
            #expect(operations.count == 2)
            #expect(operations.last?["id"] as? String == id, "newest first")
            let running = try await client.send(.get, "/api/v1/operations?state=running&limit=1").text
            let runningList = try #require(
                JSONSerialization.jsonObject(with: Data(running.utf8)) as? [[String: Any]]
            )
            #expect(runningList.count == 1)
            let firstID = try #require(runningList.first?["id"] as? String)
            let older = try await client.send(.get, "/api/v1/operations?state=running&before=\(firstID)").text
            #expect(older.contains(id), "the next page with before=")
            let finished = try await client.send(.get, "/api/v1/operations?state=finished").text
            #expect(finished == "[]\n")
            let bad = try await client.send(.get, "/api/v1/operations?state=done")
            #expect(bad.status == .badRequest)
            #expect(try bad.errorCode() == "invalidParameter")

            let shown = try await client.send(.get, "/api/v1/operations/\(id)")
            #expect(shown.status == .ok)
            let shownObject = try shown.object()
            #expect(shownObject["id"] as? String == id)
            #expect((shownObject["letters"] as? [Any])?.isEmpty == true, "none failed again yet")

            let cancelled = try await client.send(.post, "/api/v1/operations/\(id)/cancel")
            #expect(cancelled.status == .ok)
            let cancelledObject = try cancelled.object()
            #expect(cancelledObject["state"] as? String == "cancelled")
            let after = try #require(cancelledObject["counts"] as? [String: Any])
            #expect(after["pending"] as? Int == 0)
            #expect(after["skipped"] as? Int == 6)
            let letters = try await harness.store.page(
                DeadLetterFilter(sources: ["orders"], reasons: ["validation"]),
                after: nil,
                limit: 100
            )
            #expect(letters.letters.count == 6)
            #expect(letters.letters.allSatisfy { $0.status == .dead }, "the letters are dead again")
            #expect(letters.letters.allSatisfy { $0.history.last?.actor == "anonymous@127.0.0.1" })
            #expect(letters.letters.allSatisfy { $0.history.last?.operation == id })

            let again = try await client.send(.post, "/api/v1/operations/\(id)/cancel")
            #expect(again.status == .conflict)
            #expect(try again.errorCode() == "operationOver")
        }
    }

    @Test("a service that runs the source drains the redrive: finished, with the letter that failed again")
    func drainedByARunningService() async throws {
        let harness = try await AdminHarness()
        let failing = harness.letters[0].id
        harness.queue.register(source: "orders") { letter in
            if letter.id == failing { throw StillInvalid() }
        }
        try await harness.run { client in
            let answer = try await client.postJSON(
                "/api/v1/redrive",
                #"{"filter":{"source":"orders","reason":"validation"}}"#
            ).object()
            #expect(answer["warnings"] as? [String] == [Self.ordersWarning], "the queue does not run yet")
            let id = try #require((answer["operation"] as? [String: Any])?["id"] as? String)
            var events = harness.queue.events().makeAsyncIterator()
            let group = ServiceGroup(
                services: [harness.queue],
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var outcomes = 0
                while outcomes < 6, let event = await events.next() {
                    if event.kind == .recovered || event.kind == .dead { outcomes += 1 }
                }
                let instances = try await client.send(.get, "/api/v1/instances").text
                #expect(instances.contains(#""sources":["orders"]"#), "the running queue is listed")
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let shown = try await client.send(.get, "/api/v1/operations/\(id)").object()
            #expect(shown["state"] as? String == "finished")
            let counts = try #require(shown["counts"] as? [String: Any])
            #expect(counts["succeeded"] as? Int == 5)
            #expect(counts["failed"] as? Int == 1)
            #expect(counts["pending"] as? Int == 0)
            let letters = try #require(shown["letters"] as? [[String: Any]])
            #expect(letters.map { $0["id"] as? String } == [failing])
            #expect(letters.first?["errorMessage"] as? String == "total is still missing")
            let page = try await client.send(.get, "/operations/\(id)").text
            #expect(page.contains(#"<span class="badge finished" id="operation-state">finished</span>"#))
            #expect(page.contains("total is still missing"))
            #expect(!page.contains(#"id="cancel-operation""#))
        }
    }

    @Test("unknown operations are 404 JSON; wrong methods 405")
    func unknown() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let missing = "01890a5d-ac96-774b-bcce-b302099a8057"
            let shown = try await client.send(.get, "/api/v1/operations/\(missing)")
            #expect(shown.status == .notFound)
            #expect(try shown.errorCode() == "notFound")
            let cancel = try await client.send(.post, "/api/v1/operations/\(missing)/cancel")
            #expect(cancel.status == .notFound)
            #expect(try cancel.errorCode() == "notFound")
            let wrong = try await client.send(.get, "/api/v1/operations/\(missing)/cancel")
            #expect(wrong.status == .methodNotAllowed)
            #expect(try await client.send(.post, "/api/v1/operations").status == .methodNotAllowed)
            #expect(try await client.send(.delete, "/api/v1/instances").status == .methodNotAllowed)
        }
    }

    @Test("the operations routes need the token, and cancel refuses another site")
    func guarded() async throws {
        let harness = try await AdminHarness(token: AdminHarness.token)
        try await harness.run { client in
            let redrive = try await client.postJSON(
                "/api/v1/redrive",
                #"{"filter":{"source":"orders"}}"#,
                headers: bearer
            )
            let id = try #require((try redrive.object()["operation"] as? [String: Any])?["id"] as? String)
            #expect((try redrive.object()["operation"] as? [String: Any])?["actor"] as? String == "admin")
            for path in ["/api/v1/operations", "/api/v1/operations/\(id)", "/api/v1/instances"] {
                #expect(try await client.send(.get, path).status == .unauthorized, "\(path)")
            }
            #expect(try await client.send(.post, "/api/v1/operations/\(id)/cancel").status == .unauthorized)
            let page = try await client.send(.get, "/operations/\(id)")
            #expect(page.status == .seeOther, "the dashboard asks to sign in")
            #expect(page.headers[.location]?.hasPrefix("/signin") == true)
            var evil = bearer
            evil[.origin] = "http://evil.example"
            let crossSite = try await client.send(.post, "/api/v1/operations/\(id)/cancel", headers: evil)
            #expect(crossSite.status == .forbidden)
            #expect(try await harness.queue.operation(id: id)?.state == .running, "still running")
            let cancelled = try await client.send(.post, "/api/v1/operations/\(id)/cancel", headers: bearer)
            #expect(try cancelled.object()["state"] as? String == "cancelled")
        }
    }

    @Test("GET /api/v1/instances lists the live instances with their sources")
    func instances() async throws {
        let harness = try await AdminHarness(seed: false)
        try await harness.run { client in
            #expect(try await client.send(.get, "/api/v1/instances").text == "[]\n")
            try await Self.listening(harness, sources: ["payments", "orders"])
            let response = try await client.send(.get, "/api/v1/instances")
            let list = try #require(JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [[String: Any]])
            #expect(list.count == 1)
            #expect(list.first?["id"] as? String == "svc-1")
            #expect(list.first?["host"] as? String == "app-1")
            #expect(list.first?["pid"] as? Int == 42)
            #expect(list.first?["sources"] as? [String] == ["orders", "payments"])
            #expect(list.first?["lastSeenAt"] is String)
        }
    }

    @Test("a redrive's rate spreads the letters' next attempts and is recorded; a bad rate is 400")
    func rate() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            for bad in [#""rate":0"#, #""rate":-1"#, #""rate":"fast""#] {
                let refused = try await client.postJSON("/api/v1/redrive", #"{"filter":{"source":"orders"},\#(bad)}"#)
                #expect(refused.status == .badRequest, "\(bad)")
                #expect(try refused.errorCode() == "invalidBody")
            }
            let answer = try await client.postJSON(
                "/api/v1/redrive",
                #"{"filter":{"source":"orders","reason":"validation"},"rate":2}"#
            ).object()
            #expect(answer["matched"] as? Int == 6)
            let operation = try #require(answer["operation"] as? [String: Any])
            #expect((operation["parameters"] as? [String: Any])?["rate"] as? Double == 2)
            let letters = try await harness.store.page(
                DeadLetterFilter(sources: ["orders"], reasons: ["validation"]),
                after: nil,
                limit: 100
            )
            let due = letters.letters.compactMap(\.nextAttemptAt).sorted()
            #expect(due.count == 6)
            #expect(due.first == harness.clock.now())
            let gaps = zip(due, due.dropFirst()).map { $1.timeIntervalSince($0) }
            #expect(gaps.allSatisfy { abs($0 - 0.5) < 0.002 }, "0.5 s apart: \(gaps)")
        }
    }

    @Test("park and purge answer their operation and no warnings")
    func parkAndPurge() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let parked = try await client.postJSON("/api/v1/park", #"{"filter":{"source":"payments"}}"#).object()
            #expect(parked["matched"] as? Int == 3)
            #expect((parked["operation"] as? [String: Any])?["kind"] as? String == "park")
            #expect(parked["warnings"] as? [String] == [])
            let purged = try await client.postJSON("/api/v1/purge", #"{"filter":{"source":"emails"}}"#).object()
            #expect(purged["matched"] as? Int == 2)
            let operation = try #require(purged["operation"] as? [String: Any])
            #expect(operation["kind"] as? String == "purge")
            #expect(operation["state"] as? String == "finished")
            let dry = try await client.postJSON("/api/v1/purge", #"{"filter":{"source":"orders"},"dryRun":true}"#)
            #expect(try dry.object()["operation"] is NSNull)
        }
    }

    @Test("the dashboard: the confirmation warns, the redrive lands on its operation, which lists and cancels")
    func dashboard() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let confirm = try await client.send(.get, "/confirm?action=redrive&source=orders&reason=validation")
            #expect(
                confirm.text.contains(
                    #"<p class="warning"><span id="warning">No running service handles orders: "#
                        + #"these letters will wait until one starts.</span> <a href="/instances""#
                )
            )
            #expect(confirm.text.contains(#"name="rate""#))
            let csrf = try formToken(in: confirm.text)
            let badRate = try await client.postForm(
                "/actions/redrive",
                "csrf=\(csrf)&source=orders&reason=validation&rate=soon"
            )
            #expect(badRate.status == .badRequest)
            let done = try await client.postForm(
                "/actions/redrive",
                "csrf=\(csrf)&source=orders&reason=validation&rate=10"
            )
            #expect(done.status == .seeOther)
            let location = try #require(done.headers[.location])
            let operation = try #require(try await harness.queue.operations(limit: 1).first)
            #expect(location.hasPrefix("/operations/\(operation.id)?done=redrive&count=6&back="))
            #expect(operation.parameters.rate == 10)
            #expect(operation.actor == "anonymous@127.0.0.1")

            let page = try await client.send(.get, location).text
            #expect(page.contains(#"id="notice">Redriven: 6 letters"#))
            #expect(page.contains(#"id="warning">No running service handles orders"#))
            #expect(page.contains(#"<a href="/instances" id="instances-link">Running instances →</a>"#))
            #expect(page.contains(#"<b id="count-pending">6</b>"#))
            #expect(
                page.contains(#"<noscript><meta http-equiv="refresh""#),
                "it reloads while it runs, without JavaScript"
            )
            #expect(
                page.contains(#"<div id="operation-live" data-live>"#) && page.contains("<script nonce="),
                "in place with it"
            )
            #expect(page.contains(#"id="cancel-operation""#))
            #expect(page.contains(#"<dd class="mono">orders</dd>"#), "the filter")

            let list = try await client.send(.get, "/operations").text
            #expect(list.contains(#"href="/operations/\#(operation.id)""#))
            #expect(list.contains(#"<span class="badge running">running</span>"#))
            #expect(list.contains("0 of 6"))
            #expect(list.contains(#"class="on">Operations</a>"#))

            let forged = try await client.postForm("/operations/\(operation.id)/cancel", "csrf=nope")
            #expect(forged.status == .forbidden)
            let cancel = try await client.postForm(
                "/operations/\(operation.id)/cancel",
                "csrf=\(try formToken(in: page))"
            )
            #expect(cancel.status == .seeOther)
            #expect(cancel.headers[.location] == "/operations/\(operation.id)?done=cancel")
            let after = try await client.send(.get, "/operations/\(operation.id)?done=cancel").text
            #expect(after.contains(#"id="operation-state">cancelled</span>"#))
            #expect(!after.contains(#"id="cancel-operation""#), "no Cancel button once it is over")
            #expect(!after.contains(#"http-equiv="refresh""#))
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.retrying])) == 3)
            let missing = try await client.send(.get, "/operations/01890a5d-ac96-774b-bcce-b302099a8057")
            #expect(missing.status == .notFound)
            // A letter's timeline links to the operation its entries were written for.
            let letter = try await client.send(.get, "/letters/\(harness.letters[0].id)").text
            #expect(letter.contains(#"operation <a class="mono" href="/operations/\#(operation.id)">"#))
        }
    }

    @Test("hostile values in an operation's filter and its letters' new errors are escaped on its page and in JSON")
    func hostile() async throws {
        let harness = try await AdminHarness()
        try await Self.listening(harness, sources: ["orders"])
        try await harness.run { client in
            let answer = try await client.postJSON(
                "/api/v1/redrive",
                #"{"filter":{"source":"orders","search":"<script>alert(1)</script>"}}"#
            )
            #expect(!answer.text.contains("<script>"), "JSON escapes < for HTML")
            let id = try #require((try answer.object()["operation"] as? [String: Any])?["id"] as? String)
            let letter = harness.letters[11]
            try await harness.store.addOperationLetters([
                DeadLetterOperationLetter(operation: id, letterID: letter.id, outcome: .pending)
            ])
            _ = try await harness.store.recordOperationLetters([
                DeadLetterOperationLetter(
                    operation: id,
                    letterID: letter.id,
                    outcome: .failed,
                    at: harness.clock.now(),
                    errorType: "<b>HTMLError</b>",
                    errorMessage: #"<img src=x onerror=alert(1)> & "quotes""#
                )
            ])
            let page = try await client.send(.get, "/operations/\(id)").text
            #expect(!page.contains("<script>alert"))
            #expect(!page.contains("<img src=x"))
            #expect(!page.contains("<b>HTMLError"))
            #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(page.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;"))
            #expect(page.contains(#"href="/letters/\#(letter.id)""#), "a link to the letter")
            let json = try await client.send(.get, "/api/v1/operations/\(id)")
            #expect(!json.text.contains("<img"))
            let letters = try #require(try json.object()["letters"] as? [[String: Any]])
            #expect(letters.first?["errorType"] as? String == "<b>HTMLError</b>")
            #expect(letters.first?["outcome"] as? String == "failed")
        }
    }
}
