import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

/// The memory store records the operation outcomes of the writes that succeeded, read where they lie in the
/// array it is given (optional records, runs of several operations).
@Suite("MemoryStore outcome records")
struct MemoryOutcomeRecordTests {
    @Test("records of two operations, a missing record and an unwritten outcome in one write")
    func recordsOfOneWrite() async throws {
        let store = MemoryDeadLetterStore()
        let letters = (0..<6).map { _ in DeadLetterFixtures.letter(source: "orders") }
        try await store.append(letters)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for (id, range) in [("op-a", 0..<3), ("op-b", 3..<6)] {
            try await store.createOperation(
                DeadLetterOperation(id: id, kind: .replay, actor: "test", createdAt: now),
                letters: letters[range].map {
                    DeadLetterOperationLetter(operation: id, letterID: $0.id, outcome: .pending)
                }
            )
        }
        // Letter 2 is not claimed by this owner: its outcome is not written, and its record must not count.
        let owned = letters.indices.filter { $0 != 2 }.map { letters[$0].id }
        _ = try await store.claim(ids: owned, now: now, owner: "o", leaseUntil: now.addingTimeInterval(60))
        let later = now.addingTimeInterval(60)
        _ = try await store.claim(ids: [letters[2].id], now: now, owner: "other", leaseUntil: later)
        var failed = letters[4]
        failed.replayCount += 1
        let outcomes: [DeadLetterOutcome] = [
            .complete(id: letters[0].id), .release(letters[1]), .complete(id: letters[2].id),
            .complete(id: letters[3].id), .release(failed), .release(letters[5]),
        ]
        let records: [DeadLetterOperationLetter?] = [
            DeadLetterOperationLetter(operation: "op-a", letterID: letters[0].id, outcome: .succeeded, at: now),
            nil,  // handed back: no outcome for its operation
            DeadLetterOperationLetter(operation: "op-a", letterID: letters[2].id, outcome: .succeeded, at: now),
            DeadLetterOperationLetter(operation: "op-b", letterID: letters[3].id, outcome: .succeeded, at: now),
            DeadLetterOperationLetter(
                operation: "op-b",
                letterID: letters[4].id,
                outcome: .failed,
                at: now,
                errorType: "HandlerError",
                errorMessage: "still failing: order 4"
            ),
            nil,
        ]
        let written = try await store.write(outcomes, owner: "o", recording: records)
        #expect(written == [true, true, false, true, true, true])

        let a = try await store.operationLetters(id: "op-a", outcomes: [], after: nil, limit: 10)
        #expect(a.map(\.outcome) == [.succeeded, .pending, .pending])
        #expect(a[0].at == now && a[0].errorType == nil && a[0].errorMessage == nil)
        let b = try await store.operationLetters(id: "op-b", outcomes: [], after: nil, limit: 10)
        #expect(b.map(\.outcome) == [.succeeded, .failed, .pending])
        #expect(b[1].errorType == "HandlerError" && b[1].errorMessage == "still failing: order 4")
        #expect(try await store.operation(id: "op-a")?.counts.succeeded == 1)
        #expect(try await store.operation(id: "op-b")?.counts.failed == 1)
        #expect(try await store.operation(id: "op-b")?.counts.pending == 1)
    }

    @Test("records and outcomes of different counts: extra records are not recorded, missing ones are none")
    func mismatchedCounts() async throws {
        let store = MemoryDeadLetterStore()
        let letters = (0..<3).map { _ in DeadLetterFixtures.letter(source: "orders") }
        try await store.append(letters)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.createOperation(
            DeadLetterOperation(id: "op", kind: .replay, actor: "test", createdAt: now),
            letters: letters.map { DeadLetterOperationLetter(operation: "op", letterID: $0.id, outcome: .pending) }
        )
        _ = try await store.claim(ids: letters.map(\.id), now: now, owner: "o", leaseUntil: now.addingTimeInterval(60))
        let records = letters.map {
            DeadLetterOperationLetter(operation: "op", letterID: $0.id, outcome: .succeeded, at: now)
        }
        // One outcome, three records: the two records without an outcome are not recorded.
        #expect(try await store.write([.complete(id: letters[0].id)], owner: "o", recording: records) == [true])
        // Two outcomes, no record: both are written, nothing more is recorded.
        let written = try await store.write(
            [.complete(id: letters[1].id), .complete(id: letters[2].id)],
            owner: "o",
            recording: []
        )
        #expect(written == [true, true])
        let set = try await store.operationLetters(id: "op", outcomes: [], after: nil, limit: 10)
        #expect(set.map(\.outcome) == [.succeeded, .pending, .pending])
        #expect(try await store.count(DeadLetterFilter()) == 0)
    }
}
