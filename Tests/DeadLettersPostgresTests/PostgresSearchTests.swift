import DeadLetters
import DeadLettersTesting
import Foundation
import PostgresNIO
import Testing

@testable import DeadLettersPostgres

@Suite(
    "PostgreSQL store: search, metadata and sorting indexes",
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresSearchTests {
    static func letters(_ count: Int) -> [DeadLetter] {
        DeadLetterFixtures.letters(count: count, interval: .milliseconds(10)) { index, letter in
            letter.source = ["orders", "emails", "payments"][index % 3]
            letter.attempts = 1 + index % 9
            letter.errorMessage = "failed \(index)"
            letter.metadata = ["tenant": "t\(index % 50)", "sku": "SKU-\(index)"]
            letter.payload = Data(#"{"order":"ord-\#(100_000 + index)"}"#.utf8)
        }
    }

    /// The plan PostgreSQL chooses for a sorted page of what `filter` selects.
    func explain(
        _ harness: Harness,
        _ schema: String,
        _ filter: DeadLetterFilter,
        _ sort: DeadLetterSort,
        cursor: String? = nil
    ) async throws -> String {
        var plan = DeadLetterQueryPlan(filter)
        try plan.after(sort, cursor: cursor)
        var dialect = PostgresDialect(schema: schema)
        let sql = """
            EXPLAIN SELECT id FROM \(schema).letters WHERE \(dialect.condition(plan))
            ORDER BY \(DeadLetterQueryPlan.orderBy(sort)) LIMIT 101
            """
        let rows = try await harness.client.query(PostgresQuery(unsafeSQL: sql, binds: dialect.binds)).collect()
        return try rows.map { try $0.decode(String.self) }.joined(separator: "\n")
    }

    @Test("a version-5 store migrates: its letters are found by search and metadata, each served by an index")
    func migratesFromVersionFiveAndUsesIndexes() async throws {
        try await PostgresTestServer.withHarness { harness in
            let schema = PostgresTestServer.freshSchema()
            harness.adopt(schema)
            let quoted = "\"\(schema)\""
            try await harness.sql("CREATE SCHEMA \(quoted)")
            try await harness.sql("CREATE TABLE \(quoted).schema_version (id int PRIMARY KEY, version bigint NOT NULL)")
            for migration in PostgresDeadLetterStore.migrations where migration.version <= 5 {
                for statement in migration.statements {
                    try await harness.sql(statement.replacing("$schema", with: quoted))
                }
            }
            try await harness.sql("INSERT INTO \(quoted).schema_version VALUES (1, 5)")
            let letters = Self.letters(3000)
            for chunk in stride(from: 0, to: letters.count, by: 500) {
                var columns = LetterColumns()
                for letter in letters[chunk..<min(chunk + 500, letters.count)] { try columns.append(letter) }
                _ = try await harness.client.query(columns.add(into: quoted)).collect()
            }

            let store = try harness.makeStore(schema: schema, migrate: false)
            #expect(try await store.migrate() == 5)
            #expect(try await store.searchIsIndexed(), "pg_trgm is there: the trigram index was built")
            // Its pending list, which every search reads whole, is kept small.
            let options = try await harness.client.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT array_to_string(c.reloptions, ',') FROM pg_class AS c
                        JOIN pg_namespace AS n ON n.oid = c.relnamespace
                        WHERE n.nspname = $1 AND c.relname = 'letters_search'
                        """,
                    binds: PostgresDeadLetterStore.binds(schema)
                )
            ).collect()
            #expect(try options.first?.decode(String?.self) == "gin_pending_list_limit=1024")
            let found = try await store.page(DeadLetterFilter(search: "ORD-101234"), after: nil, limit: 10)
            #expect(found.letters.map(\.id) == [letters[1234].id])
            #expect(try await store.count(DeadLetterFilter(metadata: ["tenant": "t7"])) == 60)
            #expect(try await store.count(DeadLetterFilter(search: "sku-123")) == 11)
            try await store.analyze()

            let search = try await self.explain(harness, quoted, DeadLetterFilter(search: "ord-101234"), .lastFailed)
            #expect(search.contains("letters_search"), "\(search)")
            let meta = try await self.explain(harness, quoted, DeadLetterFilter(metadata: ["sku": "SKU-77"]), .id)
            #expect(meta.contains("letters_metadata"), "\(meta)")
            let indexes: [(DeadLetterSort, String)] = [
                (.lastFailed, "letters_last_failed_at"), (.firstFailed, "letters_first_failed_at"),
                (.attempts, "letters_attempts"), (.source, "letters_source"),
            ]
            for (sort, index) in indexes {
                let first = try await store.page(DeadLetterFilter(), sortedBy: sort, after: nil, limit: 100)
                let plan = try await self.explain(harness, quoted, DeadLetterFilter(), sort, cursor: first.nextCursor)
                #expect(plan.contains(index) && !plan.contains("Sort "), "\(sort): \(plan)")
            }
        }
    }
}
