import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// What a browser asks for: a page.
let browser: HTTPFields = [.accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"]

/// The `href` of the element with `id` in a page, with `&amp;` as `&`.
func link(_ id: String, in html: String) throws -> String {
    let mark = try #require(html.range(of: #"id="\#(id)""#), "no element with id \(id)")
    let start = try #require(html[..<mark.lowerBound].lastIndex(of: "<"))
    let end = try #require(html[mark.upperBound...].firstIndex(of: ">"))
    let tag = html[start..<end]
    let href = try #require(tag.range(of: #"href=""#), "no href in \(tag)").upperBound
    return String(tag[href...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
}

@Suite("Admin dashboard: errors, sign-in, paging, selection, the way back and instances")
struct AdminDashboardPagesTests {
    @Test("A browser gets HTML error pages on unknown paths and errors; other clients and the API get JSON")
    func errorPages() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let page = try await client.send(.get, "/no/such/page", headers: browser)
            #expect(page.status == .notFound)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("no such path: /no/such/page"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)

            let posted = try await client.send(.post, "/no/such/form", headers: browser, body: "a=b")
            #expect(posted.status == .notFound)
            #expect(posted.headers[.contentType]?.hasPrefix("text/html") == true)

            let json = try await client.send(.get, "/no/such/page")
            #expect(json.status == .notFound)
            #expect(try json.errorCode() == "notFound")

            let letter = try await client.send(.get, "/letters/nope", headers: browser)
            #expect(letter.status == .notFound)
            #expect(letter.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(letter.text.contains("no dead letter has the id &#39;nope&#39;"))
            let letterJSON = try await client.send(.get, "/letters/nope", headers: [.accept: "application/json"])
            #expect(try letterJSON.errorCode() == "notFound")

            // The API answers JSON even to a browser.
            let api = try await client.send(.get, "/api/v1/dead-letters/nope", headers: browser)
            #expect(api.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(try api.errorCode() == "notFound")
            let apiPath = try await client.send(.get, "/api/v1/nothing", headers: browser)
            #expect(try apiPath.errorCode() == "notFound")

            let confirm = try await client.send(.get, "/confirm?action=explode", headers: browser)
            #expect(confirm.status == .badRequest)
            #expect(confirm.text.contains("<h1>400 Bad Request</h1>"))
        }
    }

    @Test("A page opened before the token changed sends the browser back to sign-in with a notice")
    func endedSignIn() async throws {
        let harness = try await AdminHarness(token: AdminHarness.token)
        try await harness.run { client in
            // A session cookie this server does not know (it restarted, with another token).
            var stale: HTTPFields = browser
            stale[.cookie] = "dlq_session=0123456789abcdef"
            let page = try await client.send(.get, "/letters?source=orders", headers: stale)
            #expect(page.status == .seeOther)
            #expect(page.headers[.location] == "/signin?next=%2Fletters%3Fsource%3Dorders&ended=1")
            let signIn = try await client.send(.get, "/signin?next=%2Fletters%3Fsource%3Dorders&ended=1")
            #expect(signIn.text.contains(#"<div class="warning" id="alert">Your sign-in has ended"#))
            #expect(signIn.text.contains(#"name="next" value="/letters?source=orders""#))
            // A new visitor is not told that something ended.
            let fresh = try await client.send(.get, "/letters", headers: browser)
            #expect(fresh.headers[.location] == "/signin?next=%2Fletters")

            // A form posted from the old page: back to sign-in, then to the page the form was on.
            var form = stale
            form[.contentType] = "application/x-www-form-urlencoded"
            // The test client sends `Host: localhost`; the dashboard's referrer policy sends the page's path.
            form[.referer] = "http://localhost/letters?source=orders"
            let posted = try await client.send(.post, "/actions/park", headers: form, body: "csrf=old&source=orders")
            #expect(posted.status == .seeOther)
            #expect(posted.headers[.location] == "/signin?next=%2Fletters%3Fsource%3Dorders&ended=1")
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.parked])) == 2, "nothing parked")

            // A script without a token still gets the API's 401.
            let script = try await client.postForm("/actions/park", "csrf=old&source=orders")
            #expect(script.status == .unauthorized)
            #expect(try script.errorCode() == "unauthorized")
        }
    }

    @Test("A bad filter keeps the form with the error beside its field")
    func badFilter() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let page = try await client.send(.get, "/letters?source=orders&since=bogus&minAttempts=2", headers: browser)
            #expect(page.status == .badRequest)
            let html = page.text
            #expect(html.contains(#"<input id="since" name="since" value="bogus" aria-invalid="true""#))
            #expect(html.contains(#"<p class="field-error" id="since-error">must be "#))
            #expect(html.contains(#"value="2""#), "the other fields keep their values")
            #expect(html.contains(#"name="source" value="orders" checked"#))
            #expect(html.contains("Correct the filter to see letters."))
            #expect(!html.contains(#"id="filter-error""#), "said once, beside the field")

            let minimum = try await client.send(.get, "/letters?minAttempts=lots", headers: browser).text
            #expect(minimum.contains(#"id="minAttempts-error">must be a whole number"#))
            // A parameter without a field of its own: the error above the form.
            let status = try await client.send(.get, "/letters?status=zombie", headers: browser).text
            #expect(status.contains(#"id="filter-error">parameter &#39;status&#39;: unknown status"#))
        }
    }

    @Test("Filters take several values: repeated keys on the dashboard and the API")
    func multiValue() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let html = try await client.send(.get, "/letters?source=orders&source=payments&status=dead&status=retrying")
                .text
            #expect(html.contains(#"<span id="matching">10</span>"#))
            #expect(html.contains(#"name="source" value="orders" checked"#))
            #expect(html.contains(#"name="source" value="payments" checked"#))
            #expect(!html.contains(#"name="source" value="emails" checked"#))
            #expect(html.contains("<summary>2 chosen</summary>"))
            let api = try await client.send(.get, "/api/v1/dead-letters?source=orders&source=payments").object()
            #expect((api["items"] as? [Any])?.count == 10)
            let errorTypes = try await client.send(.get, "/letters?errorType=SMTPError&errorType=TimeoutError").text
            #expect(errorTypes.contains(#"<span id="matching">5</span>"#))
        }
    }

    @Test("The list says which letters a page shows, pages by cursor at the size chosen, and refuses a bad size")
    func paging() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let first = try await client.send(.get, "/letters?size=5").text
            #expect(first.contains(#"<table id="letters" class="letter-cards" data-live>"#), "its rows refresh")
            #expect(first.contains("<script nonce="))
            #expect(first.contains(#"<span id="range" data-live>1–5 of 12</span>"#))
            #expect(first.contains(#"<a href="/letters?size=25">25</a>"#))
            let next = try link("next-page", in: first)
            #expect(next.hasPrefix("/letters?size=5&cursor="))
            #expect(next.hasSuffix("&offset=5"))
            let second = try await client.send(.get, next).text
            #expect(second.contains(#"<span id="range" data-live>6–10 of 12</span>"#))
            #expect(harness.letters[5..<10].allSatisfy { second.contains($0.id) })
            #expect(!second.contains(harness.letters[4].id))
            #expect(try link("first-page", in: second) == "/letters?size=5")
            let third = try await client.send(.get, try link("next-page", in: second)).text
            #expect(third.contains(#"<span id="range" data-live>11–12 of 12</span>"#))
            #expect(!third.contains(#"id="next-page""#))

            let bad = try await client.send(.get, "/letters?size=0", headers: browser)
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("parameter &#39;size&#39;: must be a whole number from 1 to 200"))
        }
    }

    @Test("The Operations page pages past 100 operations, newest first")
    func operationPaging() async throws {
        let harness = try await AdminHarness(seed: false)
        var created: [String] = []
        for _ in 0..<105 {
            let id = harness.queue.newOperationID()
            created.append(id)
            let operation = DeadLetterOperation(
                id: id,
                kind: .park,
                state: .finished,
                actor: "alice",
                createdAt: harness.clock.now()
            )
            try await harness.store.createOperation(operation, letters: [])
        }
        let ids = created
        try await harness.run { client in
            let first = try await client.send(.get, "/operations").text
            #expect(first.contains(#"<span id="range">1–100</span>"#))
            #expect(first.contains(ids[104]) && first.contains(ids[5]) && !first.contains(ids[4]))
            let older = try link("next-page", in: first)
            #expect(older == "/operations?before=\(ids[5])&offset=100")
            let second = try await client.send(.get, older).text
            #expect(second.contains(#"<span id="range">101–105</span>"#))
            #expect(ids[0..<5].allSatisfy { second.contains($0) } && !second.contains(ids[5]))
            #expect(!second.contains(#"id="next-page""#))
            #expect(try link("first-page", in: second) == "/operations")
            let bad = try await client.send(.get, "/operations?before=%01", headers: browser)
            #expect(bad.status == .badRequest)
        }
    }

    @Test("Park, purge and delete return to the filtered view; a redrive's operation links back to it")
    func wayBack() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let list = try await client.send(.get, "/letters?source=orders&reason=validation").text
            let parkLink = try link("park-matching", in: list)
            #expect(
                parkLink
                    == "/confirm?action=park&source=orders&reason=validation&back=%2Fletters%3Fsource%3Dorders%26reason%3Dvalidation"
            )
            let confirm = try await client.send(.get, parkLink).text
            let csrf = try formToken(in: confirm)
            #expect(
                confirm.contains(
                    #"<input type="hidden" name="back" value="/letters?source=orders&amp;reason=validation">"#
                )
            )
            #expect(try link("cancel", in: confirm) == "/letters?source=orders&reason=validation")
            let parked = try await client.postForm(
                "/actions/park",
                "csrf=\(csrf)&source=orders&reason=validation&back=%2Fletters%3Fsource%3Dorders%26reason%3Dvalidation"
            )
            #expect(parked.headers[.location] == "/letters?source=orders&reason=validation&done=park&count=6")
            let after = try await client.send(.get, parked.headers[.location]!).text
            #expect(after.contains("Parked: 6 letters set aside"))
            #expect(after.contains(#"name="source" value="orders" checked"#))

            // Without a way back, the list with the action's filter.
            let purged = try await client.postForm("/actions/purge", "csrf=\(csrf)&source=payments")
            #expect(purged.headers[.location] == "/letters?source=payments&done=purge&count=3")
            // Another site as the way back is ignored.
            let deleted = try await client.postForm(
                "/actions/delete",
                "csrf=\(csrf)&id=\(harness.letters[11].id)&back=%2F%2Fevil.example%2F"
            )
            #expect(deleted.headers[.location] == "/letters?done=delete&count=1")

            let redriven = try await client.postForm(
                "/actions/redrive",
                "csrf=\(csrf)&source=orders&status=parked&back=%2Fletters%3Fsource%3Dorders"
            )
            let location = try #require(redriven.headers[.location])
            #expect(location.hasSuffix("?done=redrive&count=6&back=%2Fletters%3Fsource%3Dorders"))
            let operation = try await client.send(.get, location).text
            #expect(operation.contains(#"<a href="/letters?source=orders" id="back-link">← Back to the letters</a>"#))

            // A letter's page: park comes back to it, with the notice.
            let id = harness.letters[0].id
            let letterPage = try await client.send(.get, "/letters/\(id)").text
            let parkOne = try link("park-letter", in: letterPage)
            #expect(parkOne.hasSuffix("&back=%2Fletters%2F\(id)"))
            let one = try await client.postForm("/actions/park", "csrf=\(csrf)&id=\(id)&back=%2Fletters%2F\(id)")
            #expect(one.headers[.location] == "/letters/\(id)?done=park&count=1")
            #expect(try await client.send(.get, one.headers[.location]!).text.contains("Parked: 1 letter set aside"))
        }
    }

    @Test("Selected letters go through the same confirmation and operation records as the filter-wide actions")
    func selection() async throws {
        let harness = try await AdminHarness()
        let (a, b) = (harness.letters[0], harness.letters[1])
        try await harness.run { client in
            let list = try await client.send(.get, "/letters?source=orders").text
            #expect(list.contains(#"<input type="checkbox" name="id" value="\#(a.id)" aria-label="Select \#(a.id)">"#))
            #expect(list.contains(#"<form method="get" action="/confirm" id="selection">"#))
            #expect(list.contains(#"<input type="hidden" name="selection" value="ids">"#))
            // The per-row menu: links to the confirmation, no script needed.
            #expect(
                list.contains(
                    #"<a href="/confirm?action=park&amp;id=\#(a.id)&amp;back=%2Fletters%3Fsource%3Dorders" class="park-row">Park…</a>"#
                )
            )

            // What the browser sends for "Park…" with two letters ticked.
            let query = "back=%2Fletters%3Fsource%3Dorders&selection=ids&id=\(a.id)&id=\(b.id)&action=park"
            let confirm = try await client.send(.get, "/confirm?\(query)").text
            #expect(confirm.contains(#"<h1 id="question">Park 2 letters?</h1>"#))
            #expect(confirm.contains("<td>selected</td><td class=\"mono\">2 letters</td>"))
            #expect(confirm.contains(#"<li><a href="/letters/\#(a.id)">\#(a.id)</a></li>"#))
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.parked])) == 2, "nothing parked yet")
            let csrf = try formToken(in: confirm)
            let done = try await client.postForm(
                "/actions/park",
                "csrf=\(csrf)&id=\(a.id)&id=\(b.id)&back=%2Fletters%3Fsource%3Dorders"
            )
            #expect(done.headers[.location] == "/letters?source=orders&done=park&count=2")
            #expect(try await harness.store.letter(id: a.id)?.status == .parked)
            #expect(try await harness.store.letter(id: b.id)?.status == .parked)
            #expect(try await harness.store.letter(id: harness.letters[2].id)?.status == .dead)
            let operation = try #require(try await harness.queue.operations(limit: 1).first)
            #expect(operation.kind == .park)
            #expect(Set(operation.filter.ids) == [a.id, b.id])
            #expect(operation.counts.selected == 2)

            // Ticked letters are redriven whatever their status: the parked two are unparked.
            let redrive = try await client.send(
                .get,
                "/confirm?back=%2Fletters&selection=ids&id=\(a.id)&id=\(b.id)&id=\(harness.letters[2].id)&action=redrive"
            ).text
            #expect(redrive.contains(#"<h1 id="question">Redrive 3 letters?</h1>"#))
            #expect(redrive.contains(#"<input type="hidden" name="status" value="parked">"#))

            // Nothing ticked: nothing happens, whatever the action.
            let none = try await client.send(.get, "/confirm?back=%2Fletters&selection=ids&action=purge").text
            #expect(none.contains(#"<h1 id="question">Nothing selected</h1>"#))
            #expect(!none.contains("/actions/purge"))
            #expect(try await harness.store.count(DeadLetterFilter()) == 12)

            // "Select all N matching": the filter, not the page's ids.
            let all = try await client.send(.get, "/letters?source=orders&size=2&select=all").text
            #expect(all.contains(#"All <b>7</b> matching letters are selected"#))
            #expect(
                all.contains(
                    #"<input type="hidden" name="selection" value="all"><input type="hidden" name="source" value="orders">"#
                )
            )
            #expect(all.contains(#"aria-label="Select \#(a.id)" checked disabled>"#))
            #expect(!all.contains(#"id="delete-selected""#))
            let allConfirm = try await client.send(
                .get,
                "/confirm?back=%2Fletters%3Fsource%3Dorders&selection=all&source=orders&action=redrive"
            ).text
            #expect(allConfirm.contains(#"<h1 id="question">Redrive 5 letters?</h1>"#), "the parked two are left alone")

            // A selection larger than the largest page is refused.
            let many = (0...200).map { "id=x\($0)" }.joined(separator: "&")
            let refused = try await client.send(.get, "/confirm?action=park&\(many)", headers: browser)
            #expect(refused.status == .badRequest)
            #expect(refused.text.contains("more than 200 letters selected"))
        }
    }

    @Test("Fingerprints are shown whole, selectable in one click")
    func fingerprints() async throws {
        let harness = try await AdminHarness()
        let fingerprint = harness.letters[0].fingerprint
        try await harness.run { client in
            let groups = try await client.send(.get, "/groups").text
            #expect(
                groups.contains(
                    #"<code class="copy fingerprint" title="Click to select, then copy">\#(fingerprint)</code>"#
                )
            )
            let letter = try await client.send(.get, "/letters/\(harness.letters[0].id)").text
            #expect(letter.contains(#"id="fingerprint" title="Click to select, then copy">\#(fingerprint)</code>"#))
            let css = try await client.send(.get, "/").text
            #expect(css.contains("code.copy {") && css.contains("user-select: all"))
        }
    }

    @Test("The Instances page lists the live instances; the redrive warning links to it")
    func instances() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let empty = try await client.send(.get, "/instances").text
            #expect(empty.contains(#"id="no-instances""#))
            #expect(empty.contains(#"<a href="/instances" class="on">Instances</a>"#))
            let confirm = try await client.send(.get, "/confirm?action=redrive&source=orders").text
            #expect(try link("instances-link", in: confirm) == "/instances")

            let now = harness.clock.now()
            try await harness.store.saveInstance(
                DeadLetterInstance(
                    id: "svc-1",
                    host: "app-1",
                    pid: 42,
                    version: "9.9.9",
                    sources: ["payments", "orders"],
                    startedAt: now.addingTimeInterval(-60),
                    lastSeenAt: now.addingTimeInterval(-3)
                )
            )
            let page = try await client.send(.get, "/instances").text
            #expect(page.contains(#"<td data-label="Host"><b>app-1</b> <span class="mono muted">svc-1</span></td>"#))
            #expect(page.contains(#"<td class="num" data-label="Pid">42</td>"#))
            #expect(page.contains(#"<td class="mono" data-label="Version">9.9.9</td>"#))
            #expect(page.contains(#"<td data-label="Sources" class="sources">orders, payments</td>"#))
            #expect(page.contains("3s ago"))
            #expect(!page.contains(#"id="no-instances""#))
        }
    }
}
