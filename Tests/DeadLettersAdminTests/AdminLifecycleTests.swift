import DeadLetters
import DeadLettersTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite("Admin: a letter's lifecycle over HTTP")
struct AdminLifecycleTests {
    @Test("POST /api/v1/park parks what the filter selects; redrive with status parked unparks; both name the actor")
    func parkAndUnpark() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let missing = try await client.postJSON("/api/v1/park", #"{}"#)
            #expect(missing.status == .badRequest)
            #expect(try missing.errorCode() == "filterRequired")
            // A filter and "all" together are refused, as for a purge: which one was meant?
            let both = try await client.postJSON("/api/v1/park", #"{"filter":{"source":"orders"},"all":true}"#)
            #expect(both.status == .badRequest)
            #expect(try both.errorCode() == "invalidBody")
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.parked])) == 2)
            let dry = try await client.postJSON("/api/v1/park", #"{"filter":{"source":"orders"},"dryRun":true}"#)
            #expect(try dry.object()["matched"] as? Int == 7)
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.parked])) == 2)
            let parked = try await client.postJSON("/api/v1/park", #"{"filter":{"source":"orders"}}"#)
            #expect(try parked.object()["matched"] as? Int == 7)
            let letter = try #require(try await harness.store.letter(id: harness.letters[0].id))
            #expect(letter.status == .parked)
            #expect(letter.history.last?.event == .parked)
            #expect(letter.history.last?.actor == "anonymous@127.0.0.1", "no token: the remote address")
            let unparked = try await client.postJSON(
                "/api/v1/redrive",
                #"{"filter":{"source":"orders","status":"parked"}}"#
            )
            #expect(try unparked.object()["matched"] as? Int == 7)
            let again = try #require(try await harness.store.letter(id: harness.letters[0].id))
            #expect(again.status == .retrying)
            #expect(again.history.last?.event == .unparked)
        }
    }

    @Test("with a token the actor is admin; the letter page shows the history as a timeline")
    func tokenActorAndTimeline() async throws {
        let harness = try await AdminHarness(token: AdminHarness.token)
        try await harness.run { client in
            let id = harness.letters[6].id
            let body = #"{"filter":{"source":"payments"}}"#
            let redriven = try await client.postJSON("/api/v1/redrive", body, headers: bearer)
            #expect(try redriven.object()["matched"] as? Int == 3)
            let letter = try #require(try await harness.store.letter(id: id))
            #expect(letter.history.last?.event == .redriven)
            #expect(letter.history.last?.actor == "admin")
            let html = try await client.send(.get, "/letters/\(id)", headers: bearer).text
            #expect(html.contains(#"<li class="entry failed">"#))
            #expect(html.contains(#"<li class="entry redriven">"#))
            #expect(html.contains("by admin"))
        }
    }

    @Test("the edit form holds the payload's own bytes and saves what was typed, line breaks as the payload had them")
    func editForm() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let letter = harness.letters[0]
            let page = try await client.send(.get, "/letters/\(letter.id)").text
            let raw = String(decoding: letter.payload, as: UTF8.self)
            let escaped = raw.replacingOccurrences(of: "\"", with: "&quot;")
            #expect(page.contains("class=\"mono\">\n\(escaped)</textarea>"), "the stored bytes, not the pretty view")
            let csrf = try formToken(in: page)
            // What a browser sends for two typed lines: CRLF.
            let saved = try await client.postForm(
                "/letters/\(letter.id)/edit",
                "csrf=\(csrf)&payload=%7B%22order%22%3A1%7D%0D%0A%7B%22order%22%3A2%7D&redrive=1"
            )
            #expect(saved.status == .seeOther)
            let edited = try #require(try await harness.store.letter(id: letter.id))
            #expect(edited.payload == Data("{\"order\":1}\n{\"order\":2}".utf8), "LF, as the payload had no CR")
            #expect(edited.status == .retrying)
            #expect(edited.history.map(\.event) == [.failed, .edited, .redriven])
            #expect(edited.history[1].actor == "anonymous@127.0.0.1")
        }
    }
}
