import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Ids that need percent-encoding, control characters in ids, requests that no route can take, and counters at
/// their edge, over a real socket.
@Suite("Admin input hardening")
struct AdminInputTests {
    /// Ids that arrive by import and need percent-encoding in a path.
    static let awkwardIDs = ["id with space", "é", "🎉", "a/b", "what?", "\"quoted\"", "100%", "a+b", "x#y", "<b>"]

    /// `id` percent-encoded as a path segment, as a client encodes it.
    static func encoded(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id
    }

    // MARK: Case 5: ids that need percent-encoding

    @Test("Letters whose id needs percent-encoding are fetched, shown and deleted; the dashboard's links reach them")
    func percentEncodedIDs() async throws {
        let harness = try await AdminHarness(seed: false)
        _ = try await harness.store.append(Self.awkwardIDs.map { DeadLetterFixtures.letter(id: $0) })
        try await harness.run { client in
            for id in Self.awkwardIDs {
                let response = try await client.send(.get, "/api/v1/dead-letters/\(Self.encoded(id))")
                #expect(response.status == .ok, "\(id)")
                #expect(try response.object()["id"] as? String == id)
                let page = try await client.send(.get, "/letters/\(Self.encoded(id))")
                #expect(page.status == .ok, "\(id)")
            }
            // Every link of the list to a letter leads to that letter.
            let list = try await client.send(.get, "/letters").text
            // (Each row links to its letter twice: its id and the row menu's "Open".)
            let links = Set(
                list.components(separatedBy: #"href="/letters/"#).dropFirst().map {
                    String($0.prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
                }
            )
            #expect(links.count == Self.awkwardIDs.count)
            for link in links {
                let page = try await client.send(.get, "/letters/\(link)")
                #expect(page.status == .ok, "/letters/\(link)")
            }
            let missing = try await client.send(.get, "/api/v1/dead-letters/no%20such%20letter")
            #expect(missing.status == .notFound)
            #expect(try missing.object().description.contains("no such letter"), "the 404 names the decoded id")
            for id in Self.awkwardIDs {
                let deleted = try await client.send(.delete, "/api/v1/dead-letters/\(Self.encoded(id))")
                #expect(deleted.status == .ok, "\(id)")
            }
        }
        #expect(try await harness.store.count(DeadLetterFilter()) == 0)
    }

    // MARK: Case 4: control characters in ids

    @Test("An id with a control character or broken percent-encoding is refused with 400 on every route")
    func controlCharactersInPathIDs() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            for path in ["a%00b", "%00", "tab%09", "%1B", "c1%C2%85", "%zz", "%C3"] {
                let api = try await client.send(.get, "/api/v1/dead-letters/\(path)")
                #expect(api.status == .badRequest, "\(path)")
                #expect(try api.errorCode() == "invalidParameter")
                let delete = try await client.send(.delete, "/api/v1/dead-letters/\(path)")
                #expect(delete.status == .badRequest, "\(path)")
                let page = try await client.send(.get, "/letters/\(path)")
                #expect(page.status == .badRequest, "\(path)")
                let confirm = try await client.send(.get, "/confirm?action=delete&id=\(path)")
                #expect(confirm.status == .badRequest, "\(path)")
            }
            let body = try await client.postJSON("/api/v1/redrive", #"{"filter":{"ids":["a\u0000b"]},"dryRun":true}"#)
            #expect(body.status == .badRequest)
        }
        #expect(try await harness.store.count(DeadLetterFilter()) == 12)
    }

    // MARK: Case 10: answers no route gives

    /// The status line and the body of a raw answer.
    static func parse(_ answer: String) -> (status: String, headers: String, body: String) {
        let parts = answer.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = String(head.prefix { $0 != "\r" })
        return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// The `error.code` of a JSON error body.
    static func errorCode(_ body: String) -> String? {
        let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return (object?["error"] as? [String: Any])?["code"] as? String
    }

    static let refusedBeforeRouting: [(name: String, request: String, status: String, code: String)] = [
        (
            "a malformed Content-Length",
            "POST /api/v1/redrive HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n", "400", "invalidRequest"
        ),
        (
            "a NUL in a header", "GET /api/v1/stats HTTP/1.1\r\nHost: localhost\r\nX-A: a\u{0}b\r\n\r\n", "400",
            "invalidRequest"
        ),
        ("a lower-case method", "get /api/v1/stats HTTP/1.1\r\nHost: localhost\r\n\r\n", "400", "invalidRequest"),
        ("an unknown method", "FROB /api/v1/stats HTTP/1.1\r\nHost: localhost\r\n\r\n", "400", "invalidRequest"),
        (
            "a URL over 80 KiB",
            "GET /api/v1/dead-letters?search=\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "431", "requestTooLarge"
        ),
        (
            "CONNECT to an authority", "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n", "405",
            "methodNotAllowed"
        ),
        ("CONNECT to a route", "CONNECT /api/v1/stats HTTP/1.1\r\nHost: localhost\r\n\r\n", "405", "methodNotAllowed"),
        (
            "a method a route does not take",
            "PROPFIND /api/v1/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "405", "methodNotAllowed"
        ),
        (
            "OPTIONS", "OPTIONS /api/v1/dead-letters/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "405",
            "methodNotAllowed"
        ),
        ("TRACE", "TRACE / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "405", "methodNotAllowed"),
        (
            "a dashboard page's wrong method",
            "PUT /letters HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "405",
            "methodNotAllowed"
        ),
        ("an unknown path", "GET /nothing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "404", "notFound"),
    ]

    @Test(
        "Requests no route takes, and those HTTP parsing refuses, are answered with the JSON error body",
        arguments: 0..<refusedBeforeRouting.count
    )
    func jsonErrorsForAnyRequest(index: Int) async throws {
        let (name, request, status, code) = Self.refusedBeforeRouting[index]
        let harness = try await AdminHarness(seed: false)
        try await harness.run { client in
            let port = try #require(client.port)
            let answer = Self.parse(try await rawHTTPOffPool(port: port, request))
            #expect(answer.status.hasPrefix("HTTP/1.1 \(status) "), "\(name): \(answer.status)")
            #expect(answer.headers.lowercased().contains("content-type: application/json"), "\(name)")
            #expect(Self.errorCode(answer.body) == code, "\(name): \(answer.body)")
            if status == "405" { #expect(answer.headers.contains("Allow:"), "\(name)") }
        }
    }

    @Test("A malformed request pipelined after a good one is refused with JSON after the good one's answer")
    func pipelinedRefusal() async throws {
        let harness = try await AdminHarness(seed: false)
        try await harness.run { client in
            let port = try #require(client.port)
            let answer = try await rawHTTPOffPool(
                port: port,
                "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGET /x HTTP/1.1\r\nContent-Length: x\r\n\r\n"
            )
            #expect(answer.hasPrefix("HTTP/1.1 200 "))
            let second = try #require(answer.range(of: "HTTP/1.1 400 "))
            #expect(Self.errorCode(Self.parse(String(answer[second.lowerBound...])).body) == "invalidRequest")
        }
    }

    @Test("A browser asking for a page that does not exist gets the HTML error page")
    func browserNotFound() async throws {
        let harness = try await AdminHarness(seed: false)
        try await harness.run { client in
            let page = try await client.send(.get, "/nothing", headers: [.accept: "text/html,application/xhtml+xml"])
            #expect(page.status == .notFound)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            let api = try await client.send(.get, "/api/v1/nothing", headers: [.accept: "text/html"])
            #expect(try api.errorCode() == "notFound")
        }
    }

    // MARK: Case 1: counters a store already holds

    @Test("Letters a store already holds with Int.max attempts do not break stats, the list or the dashboard")
    func countersAtTheEdge() async throws {
        let harness = try await AdminHarness(seed: false)
        _ = try await harness.store.append([
            DeadLetterFixtures.letter(attempts: Int.max, replayCount: Int.max),
            DeadLetterFixtures.letter(attempts: Int.max, replayCount: Int.max),
        ])
        try await harness.run { client in
            for path in ["/api/v1/stats", "/api/v1/stats?source=orders", "/api/v1/dead-letters", "/letters", "/"] {
                let response = try await client.send(.get, path)
                #expect(response.status == .ok, "\(path)")
            }
        }
    }
}
