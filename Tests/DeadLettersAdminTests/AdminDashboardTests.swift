import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import ServiceLifecycle
import Testing

@Suite("Admin dashboard and /metrics over a real socket")
struct AdminDashboardTests {
    @Test("The overview shows the totals, the counts by reason and source, and the oldest age")
    func overview() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            let html = response.text
            #expect(html.contains(#"<div class="value" id="total">12</div>"#))
            #expect(html.contains(#"id="count-dead">7<"#))
            #expect(html.contains(#"id="count-retrying">3<"#))
            #expect(html.contains(#"id="count-parked">2<"#))
            #expect(html.contains(#"id="oldest-age">20h<"#))
            #expect(html.contains(#"<a href="/letters?source=orders">orders</a></td><td class="num">7</td>"#))
            #expect(html.contains(#"<a href="/letters?reason=validation">validation</a></td><td class="num">6</td>"#))
        }
    }

    @Test("The overview draws failures per hour over 24 hours, stacked by reason, and per day on request")
    func overviewTimeline() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let html = try await client.send(.get, "/").text
            #expect(html.contains("<h2>Failures per hour, last 24 hours</h2>"))
            #expect(html.contains(#"<svg id="timeline" class="timeline" viewBox="0 0 720 160""#))
            let reasons = Dictionary(grouping: harness.letters, by: \.reason.rawValue).mapValues(\.count)
            let bars = html.components(separatedBy: #"<rect class="tl-bar""#).count - 1
            #expect(bars == reasons.count, "one bar segment per reason in the one hour that has letters")
            for (reason, count) in reasons {
                #expect(html.contains("<title>2026-01-01 00:00: \(count) \(reason)</title>"), "\(reason)")
            }
            // The segments stack to the full height in the fullest hour: the tallest bar is the plot's height.
            #expect(html.contains(#"y="0""#) || html.contains(#"y="0.0""#))
            let days = try await client.send(.get, "/?timeline=30d").text
            #expect(days.contains("<h2>Failures per day, last 30 days</h2>"))
            #expect(days.contains("<title>2026-01-01: "))
            #expect(try await client.send(.get, "/?timeline=30d&x=1").status == .badRequest)
        }
    }

    @Test("The overview refreshes itself with the one script its policy allows, by a nonce new in every response")
    func overviewLiveScript() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            var nonces: [String] = []
            for _ in 0..<2 {
                let response = try await client.send(.get, "/")
                let policy = try #require(response.headers[.contentSecurityPolicy])
                let nonce = try #require(
                    policy.split(separator: ";").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
                        .first { $0.hasPrefix("script-src 'nonce-") }
                        .map { String($0.dropFirst("script-src 'nonce-".count).dropLast()) },
                    "\(policy)"
                )
                #expect(nonce.count == 32 && nonce.allSatisfy(\.isHexDigit))
                #expect(response.text.components(separatedBy: "<script").count == 2, "one script")
                #expect(response.text.contains(#"<script nonce="\#(nonce)">"#))
                #expect(response.text.contains(#"<div id="overview-live" data-live>"#))
                nonces.append(nonce)
            }
            #expect(nonces[0] != nonces[1])
            let letter = try await client.send(.get, "/letters/\(harness.letters[0].id)")
            #expect(letter.text.contains(#"data-copy="\#(harness.letters[0].fingerprint)" hidden>Copy</button>"#))
            #expect(letter.text.components(separatedBy: "<script").count == 2, "its copy button's script")
            let signIn = try await client.send(.get, "/signin")
            #expect(!signIn.text.contains("<script"), "a page without live parts or copy buttons has no script")
            #expect(signIn.headers[.contentSecurityPolicy]?.contains("script-src") == false)
        }
    }

    @Test("The list pages with a cursor and keeps the filter")
    func list() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let html = try await client.send(.get, "/letters?source=orders&status=dead").text
            #expect(html.contains(#"<span id="matching">7</span>"#))
            #expect(html.contains(#"<input type="checkbox" name="source" value="orders" checked> orders"#))
            #expect(
                html.contains(
                    #"href="/confirm?action=redrive&amp;source=orders&amp;status=dead&amp;back=%2Fletters%3Fsource%3Dorders%26status%3Ddead""#
                )
            )
            for letter in harness.letters.filter({ $0.source == "orders" }) { #expect(html.contains(letter.id)) }
            #expect(!html.contains(harness.letters[6].id))

            let bad = try await client.send(.get, "/letters?status=zombie")
            #expect(bad.status == .badRequest)
            #expect(bad.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(bad.text.contains("unknown status"))
        }
    }

    @Test("A letter's detail escapes a <script> payload and markup in the error and metadata")
    func detailEscapes() async throws {
        let harness = try await AdminHarness()
        let hostile = harness.letters[11]
        try await harness.run { client in
            let response = try await client.send(.get, "/letters/\(hostile.id)")
            #expect(response.status == .ok)
            let html = response.text
            #expect(!html.contains("<script>"))
            #expect(!html.contains("<img src=x"))
            #expect(!html.contains("<b>markup</b>"))
            #expect(html.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"))
            #expect(html.contains("bad &lt;b&gt;markup&lt;/b&gt; &amp; &quot;quotes&quot;"))
            #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;"))

            let json = try await client.send(.get, "/letters/\(harness.letters[0].id)").text
            #expect(json.contains("{\n  &quot;order&quot;: 42\n}"))
            #expect(json.contains("keyNotFound: total in order 0"))

            let missing = try await client.send(.get, "/letters/nope")
            #expect(missing.status == .notFound)
            #expect(missing.text.contains("no dead letter has the id"))
        }
    }

    @Test("A letter's detail lists its causes, metadata and replay history")
    func detailHistory() async throws {
        let harness = try await AdminHarness(seed: false)
        let letter = DeadLetterFixtures.letter(
            causes: ["connection reset by peer", "TLS handshake failed"],
            metadata: ["tenant": "acme"],
            history: [
                DeadLetter.HistoryEntry(
                    event: .replayed,
                    at: DeadLetterFixtures.epoch.addingTimeInterval(60),
                    outcome: .failed,
                    errorMessage: "still down",
                    actor: "alice"
                )
            ]
        )
        _ = try await harness.store.append([letter])
        try await harness.run { client in
            let html = try await client.send(.get, "/letters/\(letter.id)").text
            #expect(html.contains("<li>connection reset by peer</li><li>TLS handshake failed</li>"))
            #expect(html.contains(#"<td class="mono">tenant</td><td class="msg">acme</td>"#))
            // The history is a timeline: the first failure, then the replay with its outcome, error and actor.
            #expect(html.contains(#"<li class="entry failed"><div class="when">2026-01-01 00:00:00 UTC</div>"#))
            #expect(html.contains(#"<li class="entry replayed"><div class="when">2026-01-01 00:01:00 UTC</div>"#))
            #expect(html.contains(#"<span class="badge failed">failed</span> <span class="msg">still down</span>"#))
            #expect(html.contains("by alice"))
        }
    }

    @Test("Redrive through the confirmation page: the count first, then the POSTed form")
    func redriveConfirmation() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let confirm = try await client.send(.get, "/confirm?action=redrive&source=orders&reason=validation")
            #expect(confirm.status == .ok)
            #expect(confirm.text.contains(#"<h1 id="question">Redrive 6 letters?</h1>"#))
            // Nothing changed yet.
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.retrying])) == 3)

            let csrf = try formToken(in: confirm.text)
            let done = try await client.postForm(
                "/actions/redrive",
                "csrf=\(csrf)&source=orders&reason=validation"
            )
            #expect(done.status == .seeOther)
            let operation = try #require(try await harness.queue.operations(limit: 1).first)
            // With the way back to the filtered view the redrive came from.
            #expect(
                done.headers[.location]
                    == "/operations/\(operation.id)?done=redrive&count=6&back=%2Fletters%3Fsource%3Dorders%26reason%3Dvalidation"
            )
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.retrying])) == 9)
            let page = try await client.send(.get, "/operations/\(operation.id)?done=redrive&count=6").text
            #expect(page.contains("Redriven: 6 letters handed back to the running services."))
        }
    }

    @Test("Delete one letter and purge by filter through their confirmations; purging all needs all=1")
    func deleteAndPurge() async throws {
        let harness = try await AdminHarness()
        let victim = harness.letters[0]
        try await harness.run { client in
            let confirm = try await client.send(.get, "/confirm?action=delete&id=\(victim.id)")
            #expect(confirm.text.contains("Delete 1 letter?"))
            let csrf = try formToken(in: confirm.text)
            let deleted = try await client.postForm("/actions/delete", "csrf=\(csrf)&id=\(victim.id)")
            #expect(deleted.headers[.location] == "/letters?done=delete&count=1")
            #expect(try await harness.store.letter(id: victim.id) == nil)

            let purgeConfirm = try await client.send(.get, "/confirm?action=purge&source=payments")
            #expect(purgeConfirm.text.contains("Purge 3 letters?"))
            let purged = try await client.postForm("/actions/purge", "csrf=\(csrf)&source=payments")
            #expect(purged.headers[.location] == "/letters?source=payments&done=purge&count=3")

            let all = try await client.send(.get, "/confirm?action=purge")
            #expect(all.text.contains("Purge ALL 8 letters?"))
            #expect(all.text.contains(#"name="all" value="1""#))
            let refused = try await client.postForm("/actions/purge", "csrf=\(csrf)")
            #expect(refused.status == .badRequest)
            #expect(try await harness.store.count(DeadLetterFilter()) == 8)
            let everything = try await client.postForm("/actions/purge", "csrf=\(csrf)&all=1")
            #expect(everything.headers[.location] == "/letters?done=purge&count=8")
            #expect(try await harness.store.count(DeadLetterFilter()) == 0)

            #expect(try await client.send(.get, "/confirm?action=explode").status == .badRequest)
            #expect(try await client.postForm("/actions/explode", "csrf=\(csrf)").status == .badRequest)
        }
    }

    @Test("Groups list each fingerprint with its count and links")
    func groups() async throws {
        let harness = try await AdminHarness()
        let fingerprint = harness.letters[0].fingerprint
        try await harness.run { client in
            let html = try await client.send(.get, "/groups").text
            #expect(html.contains(#"<td class="num" data-label="Letters">6</td>"#))
            #expect(html.contains("/letters?fingerprint=\(fingerprint)"))
            #expect(
                html.contains("/confirm?action=redrive&amp;fingerprint=\(fingerprint)")
                    || html.contains("/confirm?action=redrive&fingerprint=\(fingerprint)")
            )
        }
    }

    @Test("/metrics renders the Prometheus registry with the depth and oldest-age gauges current")
    func metrics() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/metrics")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = response.text
            #expect(text.contains(#"dlq_depth{source="orders"} 7"#))
            #expect(text.contains(#"dlq_depth{source="payments"} 3"#))
            #expect(text.contains(#"dlq_oldest_age_seconds{source="orders"} 72000"#))

            // New letters show up on the next scrape.
            _ = try await harness.queue.add(payload: Data("x".utf8), source: "payments", error: TestError())
            let again = try await client.send(.get, "/metrics").text
            #expect(again.contains(#"dlq_depth{source="payments"} 4"#))
            #expect(again.contains(#"dlq_dead_letters_total{"#))
        }
    }

    @Test("/metrics is 404 when no registry is given")
    func metricsWithoutRegistry() async throws {
        let harness = try await AdminHarness(seed: false)
        let server = try DeadLetterAdminServer(queue: harness.queue, configuration: .init(port: 0))
        try await server.makeApplication().test(.live) { client in
            let response = try await client.send(.get, "/metrics")
            #expect(response.status == .notFound)
            #expect(try response.errorCode() == "notFound")
        }
    }

    @Test("The routes mount under a base path in another application, links and paging included")
    func mountedRoutes() async throws {
        let harness = try await AdminHarness()
        var configuration = DeadLetterAdminRoutes.Configuration(basePath: "/ops/dlq")
        configuration.dashboardPageSize = 5
        let routes = try DeadLetterAdminRoutes(
            queue: harness.queue,
            registry: harness.registry,
            configuration: configuration,
            clock: harness.clock
        )
        let router = Router()
        router.get("/hello") { _, _ in "world" }
        routes.register(on: router)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            #expect(try await client.send(.get, "/hello").text == "world")
            let overview = try await client.send(.get, "/ops/dlq")
            #expect(overview.status == .ok)
            #expect(overview.text.contains(#"href="/ops/dlq/letters""#))
            let api = try await client.send(.get, "/ops/dlq/api/v1/stats")
            #expect(try api.object()["total"] as? Int == 12)

            // Dashboard paging: 5 a page, the next page after the fifth letter, the filter kept.
            let first = try await client.send(.get, "/ops/dlq/letters?status=dead&status=retrying").text
            let marker = #"id="next-page" href=""#
            let start = try #require(first.range(of: marker)).upperBound
            let next = String(first[start...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
            #expect(next.hasPrefix("/ops/dlq/letters?status=dead&status=retrying&cursor="))
            let second = try await client.send(.get, next).text
            let ids = harness.letters.filter { $0.status != .parked }.map(\.id)
            #expect(ids[5..<10].allSatisfy { second.contains($0) })
            #expect(!ids[0..<5].contains { second.contains($0) })
            #expect(second.contains("First page"))
        }
    }

    @Test("The server runs in a ServiceGroup and stops on graceful shutdown")
    func gracefulShutdown() async throws {
        let harness = try await AdminHarness(seed: false)
        let port = AsyncStream.makeStream(of: Int.self)
        let server = try DeadLetterAdminServer(
            queue: harness.queue,
            configuration: .init(port: 0),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        ) { port.continuation.yield($0) }
        let group = ServiceGroup(
            configuration: .init(
                services: [server],
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = port.stream.makeAsyncIterator()
            let listening = try #require(await iterator.next())
            #expect(listening > 0)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

struct TestError: Error {}
