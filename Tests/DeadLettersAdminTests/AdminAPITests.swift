import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Admin API over a real socket")
struct AdminAPITests {
    @Test("GET /api/v1/dead-letters lists every letter in id order with the stored format")
    func listAll() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/dead-letters")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            let object = try response.object()
            let items = try #require(object["items"] as? [[String: Any]])
            #expect(items.map { $0["id"] as? String } == harness.letters.map(\.id))
            #expect(object["nextCursor"] is NSNull)
            // Exactly the stored format: each item decodes back to the same letter.
            let first = try JSONSerialization.data(withJSONObject: items[0])
            #expect(try DeadLetterJSON.decode(Array(first)) == harness.letters[0])
        }
    }

    @Test("Cursor paging walks every letter exactly once")
    func paging() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let uri = "/api/v1/dead-letters?limit=5" + (cursor.map { "&cursor=\($0)" } ?? "")
                let object = try await client.send(.get, uri).object()
                let items = try #require(object["items"] as? [[String: Any]])
                #expect(items.count <= 5)
                seen += items.compactMap { $0["id"] as? String }
                cursor = object["nextCursor"] as? String
                pages += 1
            } while cursor != nil && pages < 10
            #expect(seen == harness.letters.map(\.id))
            #expect(pages == 3)
        }
    }

    @Test(
        "Filters select what DeadLetterFilter.matches selects",
        arguments: [
            ("source=orders", 7),
            ("source=orders&source=emails", 9),
            ("reason=timeout", 3),
            ("errorType=SMTPError", 2),
            ("status=retrying&status=parked", 5),
            ("minAttempts=3", 5),
            ("search=KEYNOTFOUND", 6),
            ("since=2026-01-01T00:00:06Z", 6),
            ("until=2026-01-01T00:00:02.000Z", 2),
            ("since=2h", 0),
            ("since=2d", 12),
            ("since=2.5d", 12),
            ("since=1.5h", 0),
            ("since=2026-01-01", 12),
            ("until=2026-01-01", 0),
            ("until=2026-01-02", 12),
            ("source=orders&status=dead&minAttempts=1", 7),
            ("source=%27%3B%20DROP%20TABLE%20letters%3B--", 0),
            ("search=%25", 0),
            ("source=", 12),
        ]
    )
    func filters(query: String, expected: Int) async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/dead-letters?\(query)")
            #expect(response.status == .ok, "\(query): \(response.text)")
            let items = try #require(try response.object()["items"] as? [[String: Any]])
            #expect(items.count == expected, "\(query)")
        }
    }

    @Test(
        "Bad parameter values are 400 naming the parameter",
        arguments: [
            ("status=zombie", "status"),
            ("minAttempts=-1", "minAttempts"),
            ("minAttempts=many", "minAttempts"),
            ("since=yesterday", "since"),
            ("until=2026-13-45", "until"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=abc", "limit"),
            ("sources=orders", "sources"),
            ("source=%ZZ", "source"),
            ("search=a%00b", "search"),
        ]
    )
    func badParameters(query: String, parameter: String) async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/dead-letters?\(query)")
            #expect(response.status == .badRequest, "\(query)")
            let object = try response.object()
            let error = try #require(object["error"] as? [String: Any])
            #expect(error["code"] as? String == "invalidParameter")
            #expect((error["message"] as? String)?.contains("'\(parameter)'") == true, "\(object)")
        }
    }

    @Test("Hostile values: very long, too many, and many parameters are refused with 400")
    func hostileValues() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let long = String(repeating: "a", count: 2000)
            #expect(try await client.send(.get, "/api/v1/dead-letters?search=\(long)").status == .badRequest)
            let many = (0..<101).map { "source=s\($0)" }.joined(separator: "&")
            #expect(try await client.send(.get, "/api/v1/dead-letters?\(many)").status == .badRequest)
            let flood = (0..<201).map { "x\($0)=1" }.joined(separator: "&")
            #expect(try await client.send(.get, "/api/v1/dead-letters?\(flood)").status == .badRequest)
            // Markup in a value is only data: it selects nothing and is not echoed unescaped.
            let response = try await client.send(.get, "/api/v1/dead-letters?source=%3Cscript%3E")
            #expect(response.status == .ok)
            #expect(!response.text.contains("<script>"))
        }
    }

    @Test(
        "Bad cursors are 400 invalidCursor",
        arguments: ["!!!", "not-base64", "AAAA", String(repeating: "Q", count: 2000)]
    )
    func badCursor(cursor: String) async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/dead-letters?cursor=\(cursor)")
            #expect(response.status == .badRequest)
            #expect(try response.errorCode() == "invalidCursor")
        }
    }

    @Test("GET and DELETE one letter; 404 JSON when it is missing")
    func getAndDelete() async throws {
        let harness = try await AdminHarness()
        let letter = harness.letters[3]
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/dead-letters/\(letter.id)")
            #expect(response.status == .ok)
            #expect(try DeadLetterJSON.decode(response.text.trimmingCharacters(in: .newlines)) == letter)

            let deleted = try await client.send(.delete, "/api/v1/dead-letters/\(letter.id)")
            #expect(deleted.status == .ok)
            #expect(try deleted.object()["deleted"] as? Int == 1)
            #expect(try await harness.store.letter(id: letter.id) == nil)

            let missing = try await client.send(.get, "/api/v1/dead-letters/\(letter.id)")
            #expect(missing.status == .notFound)
            #expect(try missing.errorCode() == "notFound")
            let again = try await client.send(.delete, "/api/v1/dead-letters/\(letter.id)")
            #expect(again.status == .notFound)
            #expect(try again.errorCode() == "notFound")
        }
    }

    @Test("POST /api/v1/redrive: dry run counts, then redrives and makes the letters due now")
    func redrive() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let body = #"{"filter":{"source":"orders","reason":["validation"]},"dryRun":true}"#
            let dry = try await client.postJSON("/api/v1/redrive", body)
            #expect(dry.status == .ok)
            #expect(try dry.object()["matched"] as? Int == 6)
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.retrying])) == 3)

            let real = try await client.postJSON(
                "/api/v1/redrive",
                #"{"filter":{"source":"orders","reason":"validation"}}"#
            )
            #expect(try real.object()["matched"] as? Int == 6)
            let redriven = try await harness.store.page(
                DeadLetterFilter(sources: ["orders"], reasons: ["validation"]),
                after: nil,
                limit: 100
            )
            #expect(redriven.letters.allSatisfy { $0.status == .retrying && $0.nextAttemptAt == harness.clock.now() })

            // Parked letters are left alone unless the filter selects them.
            let parked = try await client.postJSON("/api/v1/redrive", #"{"filter":{"source":"emails"}}"#)
            #expect(try parked.object()["matched"] as? Int == 0)
            let selected = try await client.postJSON("/api/v1/redrive", #"{"filter":{"status":"parked"},"limit":1}"#)
            #expect(try selected.object()["matched"] as? Int == 1)
        }
    }

    @Test("POST /api/v1/purge: a filter or an explicit all; dry run changes nothing")
    func purge() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let refused = try await client.postJSON("/api/v1/purge", #"{"dryRun":false}"#)
            #expect(refused.status == .badRequest)
            #expect(try refused.errorCode() == "filterRequired")
            let emptyFilter = try await client.postJSON("/api/v1/purge", #"{"filter":{}}"#)
            #expect(try emptyFilter.errorCode() == "filterRequired")
            let both = try await client.postJSON("/api/v1/purge", #"{"filter":{"source":"orders"},"all":true}"#)
            #expect(both.status == .badRequest)
            #expect(try both.errorCode() == "invalidBody")

            let dry = try await client.postJSON("/api/v1/purge", #"{"filter":{"source":"payments"},"dryRun":true}"#)
            #expect(try dry.object()["matched"] as? Int == 3)
            #expect(try await harness.store.count(DeadLetterFilter()) == 12)

            let real = try await client.postJSON("/api/v1/purge", #"{"filter":{"source":"payments"}}"#)
            #expect(try real.object()["matched"] as? Int == 3)
            #expect(try await harness.store.count(DeadLetterFilter()) == 9)

            let all = try await client.postJSON("/api/v1/purge", #"{"all":true}"#)
            #expect(try all.object()["matched"] as? Int == 9)
            #expect(try await harness.store.count(DeadLetterFilter()) == 0)
        }
    }

    @Test(
        "Bad action bodies are 400 naming the field",
        arguments: [
            ("{", "invalidJSON"),
            ("[]", "invalidBody"),
            (#"{"filter":{"sources":"orders"}}"#, "invalidBody"),
            (#"{"filter":{"status":"zombie"}}"#, "invalidBody"),
            (#"{"filter":{"minAttempts":-2}}"#, "invalidBody"),
            (#"{"filter":{"source":42}}"#, "invalidBody"),
            (#"{"filter":"source=orders"}"#, "invalidBody"),
            (#"{"dryRun":"yes"}"#, "invalidBody"),
            (#"{"limit":0}"#, "invalidBody"),
            (#"{"filtre":{}}"#, "invalidBody"),
        ]
    )
    func badBodies(body: String, code: String) async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.postJSON("/api/v1/redrive", body)
            #expect(response.status == .badRequest, "\(body)")
            #expect(try response.errorCode() == code, "\(body)")
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.retrying])) == 3)
        }
    }

    @Test("GET /api/v1/stats has the fields of dlq stats --json")
    func stats() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/stats")
            #expect(response.status == .ok)
            let keys = [
                "total", "byReason", "bySource", "byErrorType", "byStatus", "byAge", "oldestFailedAt",
                "newestFailedAt", "averageAttempts",
            ]
            var position = response.text.startIndex
            for key in keys {
                let range = try #require(
                    response.text.range(of: "\"\(key)\":", range: position..<response.text.endIndex)
                )
                position = range.upperBound
            }
            let object = try response.object()
            #expect(object["total"] as? Int == 12)
            #expect(object["bySource"] as? [String: Int] == ["orders": 7, "payments": 3, "emails": 2])
            #expect(object["byStatus"] as? [String: Int] == ["dead": 7, "retrying": 3, "parked": 2])
            #expect((object["byAge"] as? [String: Int])?["6h-24h"] == 12)
            #expect(object["oldestFailedAt"] as? String == "2026-01-01T00:00:00.000Z")
            #expect(object["newestFailedAt"] as? String == "2026-01-01T00:00:11.000Z")
            let filtered = try await client.send(.get, "/api/v1/stats?source=emails").object()
            #expect(filtered["total"] as? Int == 2)
            #expect(try await client.send(.get, "/api/v1/stats?limit=3").status == .badRequest)
        }
    }

    @Test("GET /api/v1/timeline counts letters per bucket by when they last failed, with the filters")
    func timeline() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            // The clock is 20 hours after the letters, which all failed in the hour of 00:00.
            let response = try await client.send(.get, "/api/v1/timeline?since=24h&bucket=1h")
            #expect(response.status == .ok)
            let object = try response.object()
            #expect(object["bucket"] as? String == "1h")
            #expect(object["start"] as? String == "2025-12-31T21:00:00.000Z")
            #expect(object["end"] as? String == "2026-01-01T21:00:00.000Z")
            #expect(object["total"] as? Int == 12)
            let buckets = try #require(object["buckets"] as? [[String: Any]])
            #expect(buckets.count == 24)
            let full = buckets.filter { ($0["total"] as? Int ?? 0) > 0 }
            #expect(full.count == 1)
            #expect(full.first?["start"] as? String == "2026-01-01T00:00:00.000Z")
            let firstSeen = try #require(object["firstSeen"] as? [[String: Any]])
            #expect(!firstSeen.isEmpty && firstSeen.count <= 12)
            #expect(try await client.send(.get, "/api/v1/timeline").object()["total"] as? Int == 12, "24h by default")
            #expect(try await client.send(.get, "/api/v1/timeline?since=12h").object()["total"] as? Int == 0)
            let days = try await client.send(.get, "/api/v1/timeline?since=7d&source=emails").object()
            #expect(days["bucket"] as? String == "1d")
            #expect((days["buckets"] as? [Any])?.count == 7)
            #expect(days["total"] as? Int == 2)
            for (query, parameter) in [("since=soon", "since"), ("bucket=1s", "bucket"), ("limit=3", "limit")] {
                let refused = try await client.send(.get, "/api/v1/timeline?\(query)")
                #expect(refused.status == .badRequest, "\(query)")
                #expect(refused.text.contains("parameter '\(parameter)'"), "\(query): \(refused.text)")
            }
        }
    }

    @Test("GET /api/v1/groups: groups by fingerprint, largest first")
    func groups() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/groups")
            #expect(response.status == .ok)
            let groups = try #require(JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [[String: Any]])
            #expect(groups.map { $0["count"] as? Int } == [6, 3, 2, 1])
            let first = groups[0]
            #expect(
                Set(first.keys) == [
                    "fingerprint", "count", "errorType", "sampleMessage", "sources", "firstFailedAt", "lastFailedAt",
                ]
            )
            #expect(first["errorType"] as? String == "DecodingError")
            #expect(first["sources"] as? [String] == ["orders"])
            let limited = try await client.send(.get, "/api/v1/groups?limit=2&status=dead")
            let two = try #require(JSONSerialization.jsonObject(with: Data(limited.text.utf8)) as? [[String: Any]])
            #expect(two.map { $0["count"] as? Int } == [6, 1])
        }
    }

    @Test("GET /healthz answers ok")
    func health() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let response = try await client.send(.get, "/healthz")
            #expect(response.status == .ok)
            #expect(try response.object()["status"] as? String == "ok")
        }
    }

    @Test("HEAD is answered wherever GET is, with GET's headers and no body")
    func head() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            for path in ["/api/v1/stats", "/api/v1/operations", "/", "/operations", "/healthz"] {
                let get = try await client.send(.get, path)
                let head = try await client.send(.head, path)
                #expect(head.status == .ok, "\(path)")
                #expect(head.body.readableBytes == 0, "\(path)")
                #expect(head.headers[.contentType] == get.headers[.contentType], "\(path)")
                #expect(head.headers[.contentLength] == "\(get.body.readableBytes)", "\(path)")
            }
            let post = try await client.send(.head, "/api/v1/redrive")
            #expect(post.status == .methodNotAllowed)
        }
    }

    @Test("Unknown paths are 404 JSON; wrong methods are 405 JSON with Allow")
    func notFoundAndMethods() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let missing = try await client.send(.get, "/api/v2/nothing")
            #expect(missing.status == .notFound)
            #expect(try missing.errorCode() == "notFound")
            let wrong = try await client.send(.get, "/api/v1/redrive")
            #expect(wrong.status == .methodNotAllowed)
            #expect(wrong.headers[.allow] == "POST")
            #expect(try wrong.errorCode() == "methodNotAllowed")
            let put = try await client.send(.put, "/api/v1/dead-letters/x")
            #expect(put.status == .methodNotAllowed)
            #expect(put.headers[.allow] == "GET, DELETE")
            #expect(try await client.send(.post, "/api/v1/stats").status == .methodNotAllowed)
        }
    }
}

/// A store that fails every read, as an unreachable database does.
struct BrokenStore: DeadLetterStore {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "disk on fire: password=hunter2" }
    }

    func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult { throw Failure() }
    func letter(id: String) async throws -> DeadLetter? { throw Failure() }
    func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        throw Failure()
    }
    func count(_ filter: DeadLetterFilter) async throws -> Int { throw Failure() }
    func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary { throw Failure() }
    func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] { throw Failure() }
    func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] { throw Failure() }
    func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        throw Failure()
    }
    func complete(id: String, owner: String) async throws -> Bool { throw Failure() }
    func release(_ letter: DeadLetter, owner: String) async throws -> Bool { throw Failure() }
    func redrive(_ filter: DeadLetterFilter, now: Date, limit: Int?) async throws -> Int { throw Failure() }
    func delete(ids: [String]) async throws -> Int { throw Failure() }
    func usage() async throws -> DeadLetterUsage { throw Failure() }
}

@Suite("Admin API when the store fails")
struct AdminStoreFailureTests {
    @Test("A failing store is 500 JSON without the error's text, /healthz 503, the dashboard a 500 page")
    func failingStore() async throws {
        let harness = try await AdminHarness(seed: false, store: BrokenStore())
        try await harness.run { client in
            for path in ["/api/v1/dead-letters", "/api/v1/dead-letters/x", "/api/v1/stats", "/api/v1/groups"] {
                let response = try await client.send(.get, path)
                #expect(response.status == .internalServerError, "\(path)")
                #expect(try response.errorCode() == "internalError", "\(path)")
                #expect(!response.text.contains("hunter2"))
            }
            let redrive = try await client.postJSON("/api/v1/redrive", "{}")
            #expect(redrive.status == .internalServerError)
            let health = try await client.send(.get, "/healthz")
            #expect(health.status == .serviceUnavailable)
            #expect(try health.object()["status"] as? String == "unavailable")
            let page = try await client.send(.get, "/", headers: [.accept: "text/html"])
            #expect(page.status == .internalServerError)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(!page.text.contains("hunter2"))
        }
    }
}
