import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@testable import DeadLettersPostgres

/// A replayed letter's outcome and its operation record commit together.
@Suite(
    "PostgreSQL outcome records",
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresOutcomeRecordTests {
    @Test("an outcome whose operation record cannot be written is not written either")
    func outcomeAndRecordCommitTogether() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            let schema = store.configuration.schema
            let letters = (0..<2).map { _ in DeadLetterFixtures.letter(source: "orders") }
            try await store.append(letters)
            let now = Date()
            let operation = DeadLetterOperation(id: "op-1", kind: .replay, actor: "test", createdAt: now)
            try await store.createOperation(
                operation,
                letters: letters.map {
                    DeadLetterOperationLetter(operation: "op-1", letterID: $0.id, outcome: .pending)
                }
            )
            let leaseUntil = now.addingTimeInterval(60)
            _ = try await store.claim(ids: letters.map(\.id), now: now, owner: "o", leaseUntil: leaseUntil)
            // Every change to an operation's set fails, as a crash between two separate writes would leave it.
            try await harness.sql(
                """
                CREATE FUNCTION "\(schema)".refuse() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'records refused'; END $$
                """
            )
            try await harness.sql(
                """
                CREATE TRIGGER refuse_records BEFORE UPDATE ON "\(schema)".operation_letters
                FOR EACH ROW EXECUTE FUNCTION "\(schema)".refuse()
                """
            )
            let records = letters.map {
                DeadLetterOperationLetter(operation: "op-1", letterID: $0.id, outcome: .succeeded, at: now)
            }
            let outcomes: [DeadLetterOutcome] = letters.map { .complete(id: $0.id) }
            for count in [1, 2] {
                await #expect(throws: DeadLetterError.self) {
                    _ = try await store.write(
                        Array(outcomes.prefix(count)),
                        owner: "o",
                        recording: Array(records.prefix(count))
                    )
                }
            }
            for letter in letters {
                #expect(try await store.letter(id: letter.id) != nil, "the removal was rolled back with its record")
            }
            try await harness.sql("DROP TRIGGER refuse_records ON \"\(schema)\".operation_letters")
            #expect(try await store.write(outcomes, owner: "o", recording: records) == [true, true])
            #expect(try await store.count(DeadLetterFilter()) == 0)
            #expect(try await store.operation(id: "op-1")?.counts.succeeded == 2)
        }
    }
}
