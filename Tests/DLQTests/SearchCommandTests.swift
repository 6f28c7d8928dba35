import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq --search, --meta and --sort")
    struct SearchCommandTests {
        /// Three letters: an order id in a payload, a SKU in metadata, a timeout in a message.
        func seed(_ space: Workspace) throws -> (order: String, sku: String, timeout: String) {
            let order = try space.add(
                source: "orders",
                message: "keyNotFound: total",
                payload: #"{"order":"ord-10109","total":12}"#,
                extra: ["--metadata", "tenant=acme", "--metadata", "shop=s1", "--attempts", "2"]
            )
            let sku = try space.add(
                source: "inventory",
                message: "stock check failed",
                payload: #"{"n":1}"#,
                extra: ["--metadata", "tenant=acme", "--metadata", "sku=SKU-1079", "--attempts", "7"]
            )
            let timeout = try space.add(
                source: "emails",
                message: "Timeout after 30s",
                payload: "plain text body",
                extra: ["--metadata", "tenant=globex", "--attempts", "4"]
            )
            return (order, sku, timeout)
        }

        @Test("--search finds an order id in a payload, a SKU in metadata and a message, ignoring case")
        func searchEveryField() throws {
            let space = try Workspace()
            defer { space.remove() }
            let (order, sku, timeout) = try self.seed(space)
            #expect(try space.letters(["--search", "ord-10109"]).map(\.id) == [order])
            #expect(try space.letters(["--search", "sku-1079"]).map(\.id) == [sku])
            #expect(try space.letters(["--search", "TIMEOUT"]).map(\.id) == [timeout])
            #expect(try space.letters(["--search", "acme"]).map(\.id) == [order, sku])
            #expect(try space.letters(["--search", "tenant"]).isEmpty, "keys are not searched")
            let table = try space.ok(["list", "--search", "ord-10109"]).output
            #expect(table.contains(order) && table.contains("1 letter"))
            #expect(try space.ok(["stats", "--json", "--search", "acme"]).output.contains(#""total":2"#))
        }

        @Test("--meta pairs are ANDed on list, count, groups and purge; the operation records them")
        func metaPairs() throws {
            let space = try Workspace()
            defer { space.remove() }
            let (order, sku, timeout) = try self.seed(space)
            #expect(try space.letters(["--meta", "tenant=acme"]).map(\.id) == [order, sku])
            #expect(try space.letters(["--meta", "tenant=acme", "--meta", "shop=s1"]).map(\.id) == [order])
            #expect(try space.letters(["--meta", "tenant=ACME"]).isEmpty, "values match exactly")
            #expect(try space.letters(["--meta", "url=a=b"]).isEmpty, "the key is before the first '='")
            let groups = try space.ok(["groups", "--json", "--meta", "tenant=globex"]).output
            #expect(groups.contains(#""count":1"#), "\(groups)")
            let park = try space.ok(["park", "--meta", "tenant=globex"])
            #expect(park.status == 0)
            #expect(try space.letters(["--status", "parked"]).map(\.id) == [timeout])
            let redrive = try space.ok(["redrive", "--meta", "tenant=acme", "--search", "ord-", "--json"])
            let answer = try #require(try JSONSerialization.jsonObject(with: redrive.stdout) as? [String: Any])
            #expect(answer["matched"] as? Int == 1, "\(redrive)")
            let operations = try space.ok(["ops", "list", "--json"]).output
            #expect(operations.contains(#""meta":{"tenant":"acme"}"#), "\(operations)")
            #expect(operations.contains(#""search":"ord-""#), "\(operations)")
            _ = sku
        }

        @Test("--sort orders the list; ties by id; a mistyped order says the closest")
        func sortOrders() throws {
            let space = try Workspace()
            defer { space.remove() }
            let (order, sku, timeout) = try self.seed(space)
            #expect(try space.letters(["--sort", "attempts"]).map(\.id) == [sku, timeout, order])
            #expect(try space.letters(["--sort", "source"]).map(\.id) == [timeout, sku, order])
            #expect(try space.letters(["--sort", "last-failed"]).map(\.id) == [timeout, sku, order])
            #expect(try space.letters(["--sort", "first-failed", "--limit", "2"]).map(\.id) == [order, sku])
            #expect(try space.letters(["--sort", "attempts", "--meta", "tenant=acme"]).map(\.id) == [sku, order])
            let bad = try space.run(["list", "--sort", "atempts"])
            #expect(bad.status == 2 && bad.stderr.contains("did you mean 'attempts'?"), "\(bad)")
            #expect(bad.stderr.contains("id, last-failed, first-failed, attempts, source"), "\(bad)")
            let badMeta = try space.run(["list", "--meta", "novalue"])
            #expect(badMeta.status == 2 && badMeta.stderr.contains("key=value"), "\(badMeta)")
            let twice = try space.run(["list", "--meta", "a=1", "--meta", "a=2"])
            #expect(twice.status == 2 && twice.stderr.contains("two values"), "\(twice)")
        }
    }
}
