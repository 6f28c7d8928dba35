import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Admin API and dashboard: search, metadata and sorting")
struct AdminSearchTests {
    /// 20 letters: order ids in payloads, tenants and SKUs in metadata, attempts 1 to 4.
    static func letters() -> [DeadLetter] {
        DeadLetterFixtures.letters(count: 20, seed: 5) { index, letter in
            letter.source = ["orders", "payments"][index % 2]
            letter.attempts = 1 + index % 4
            letter.errorMessage = index == 3 ? "Timeout talking to stock" : "rejected"
            letter.metadata = ["tenant": index % 2 == 0 ? "acme" : "globex", "sku": "SKU-\(1070 + index)"]
            letter.payload = Data(#"{"order":"ord-\#(10100 + index)"}"#.utf8)
        }
    }

    func harness() async throws -> AdminHarness {
        let harness = try await AdminHarness(seed: false)
        try await harness.store.append(Self.letters())
        return harness
    }

    func ids(_ response: TestResponse) throws -> [String] {
        try #require(try response.object()["items"] as? [[String: Any]], "\(response.text)").compactMap {
            $0["id"] as? String
        }
    }

    @Test(
        "search= and meta.KEY= select what DeadLetterFilter.matches selects",
        arguments: [
            ("search=ORD-10109", DeadLetterFilter(search: "ORD-10109")),
            ("search=sku-1079", DeadLetterFilter(search: "sku-1079")),
            ("search=timeout", DeadLetterFilter(search: "timeout")),
            ("meta.tenant=acme", DeadLetterFilter(metadata: ["tenant": "acme"])),
            ("meta.tenant=acme&meta.sku=SKU-1074", DeadLetterFilter(metadata: ["tenant": "acme", "sku": "SKU-1074"])),
            ("meta.tenant=acme&meta.sku=SKU-1075", DeadLetterFilter(metadata: ["tenant": "acme", "sku": "SKU-1075"])),
            ("meta=tenant%3Dglobex", DeadLetterFilter(metadata: ["tenant": "globex"])),
            ("meta.tenant=acme&search=ord-1011", DeadLetterFilter(search: "ord-1011", metadata: ["tenant": "acme"])),
        ]
    )
    func filters(query: String, filter: DeadLetterFilter) async throws {
        let harness = try await self.harness()
        let want = Self.letters().filter(filter.matches).map(\.id).sorted()
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/dead-letters?\(query)")
            #expect(response.status == .ok, "\(query): \(response.text)")
            #expect(try self.ids(response) == want, "\(query)")
            let stats = try await client.send(.get, "/api/v1/stats?\(query)")
            #expect(try stats.object()["total"] as? Int == want.count, "\(query): \(stats.text)")
        }
    }

    @Test("sort= orders the list and its cursor pages without skipping or repeating; bad values are 400")
    func sorting() async throws {
        let harness = try await self.harness()
        let letters = Self.letters()
        try await harness.run { client in
            for sort in DeadLetterSort.all {
                var seen: [String] = []
                var cursor: String?
                repeat {
                    let uri =
                        "/api/v1/dead-letters?limit=3&sort=\(sort.rawValue)" + (cursor.map { "&cursor=\($0)" } ?? "")
                    let response = try await client.send(.get, uri)
                    #expect(response.status == .ok, "\(uri): \(response.text)")
                    seen += try self.ids(response)
                    cursor = try response.object()["nextCursor"] as? String
                } while cursor != nil && seen.count < 40
                #expect(seen == letters.sorted { sort.orders($0, before: $1) }.map(\.id), "\(sort)")
            }
            let bad = try await client.send(.get, "/api/v1/dead-letters?sort=oldest")
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("'sort'") && bad.text.contains("last-failed"), "\(bad.text)")
            let first = try await client.send(.get, "/api/v1/dead-letters?limit=3&sort=attempts")
            let cursor = try #require(try first.object()["nextCursor"] as? String)
            let mixed = try await client.send(.get, "/api/v1/dead-letters?sort=source&cursor=\(cursor)")
            #expect(mixed.status == .badRequest, "a cursor of another order: \(mixed.text)")
            let badMeta = try await client.send(.get, "/api/v1/dead-letters?meta=novalue")
            #expect(badMeta.status == .badRequest && badMeta.text.contains("key=value"), "\(badMeta.text)")
        }
    }

    @Test("A POST body's filter takes search and meta; the operation records them; bad meta is 400")
    func postBody() async throws {
        let harness = try await self.harness()
        try await harness.run { client in
            let body = #"{"filter":{"search":"ord-1010","meta":{"tenant":"acme"}},"dryRun":true}"#
            let dry = try await client.postJSON("/api/v1/redrive", body)
            #expect(dry.status == .ok, "\(dry.text)")
            let want = Self.letters().filter(DeadLetterFilter(search: "ord-1010", metadata: ["tenant": "acme"]).matches)
            #expect(try dry.object()["matched"] as? Int == want.count)
            let real = try await client.postJSON("/api/v1/redrive", #"{"filter":{"meta":{"tenant":"globex"}}}"#)
            #expect(try real.object()["matched"] as? Int == 10, "\(real.text)")
            let operations = try await client.send(.get, "/api/v1/operations").text
            #expect(operations.contains(#""meta":{"tenant":"globex"}"#), "\(operations)")
            for (bad, field) in [
                (#"{"filter":{"meta":"tenant=acme"}}"#, "filter.meta"),
                (#"{"filter":{"meta":{"tenant":1}}}"#, "filter.meta.tenant"),
            ] {
                let response = try await client.postJSON("/api/v1/redrive", bad)
                #expect(response.status == .badRequest && response.text.contains(field), "\(bad): \(response.text)")
            }
        }
    }

    @Test("The dashboard's filter form has search, metadata and sort fields, filled in, and paging keeps the order")
    func dashboardForm() async throws {
        let harness = try await self.harness()
        try await harness.run { client in
            let html = try await client.send(.get, "/letters?search=ord-101&meta=tenant%3Dacme&sort=attempts").text
            #expect(html.contains(#"name="search" value="ord-101""#), "\(html)")
            #expect(html.contains(#"id="meta" name="meta" placeholder="tenant=acme" value="tenant=acme""#), "\(html)")
            #expect(html.contains(#"id="meta-2" name="meta""#), "an empty field for one more pair")
            #expect(html.contains(#"<option value="attempts" selected>"#), "\(html)")
            let want = Self.letters().filter(DeadLetterFilter(search: "ord-101", metadata: ["tenant": "acme"]).matches)
            #expect(want.allSatisfy { html.contains($0.id) } && html.contains(">\(want.count)<"))
            // The filter-wide actions carry the metadata pair.
            #expect(html.contains("action=redrive&amp;search=ord-101&amp;meta=tenant%3Dacme"), "\(html)")
        }
    }
}
