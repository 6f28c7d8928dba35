import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import Testing

/// Letters that a store already holds with counters far beyond ``DeadLetter/maximumCount`` (stored before the
/// bound, or appended straight to the store): totals, summaries and imports must not overflow.
@Suite("SQLite counters at the edge")
struct SQLiteCountersTests {
    static let huge = Int.max

    @Test("Two letters of Int.max attempts in one append: the totals saturate, stats and the list still work")
    func oneAppend() async throws {
        let store = try makeFreshStore()
        let letters = [
            DeadLetterFixtures.letter(attempts: Self.huge, replayCount: Self.huge),
            DeadLetterFixtures.letter(attempts: Self.huge, replayCount: Self.huge),
        ]
        try await store.append(letters)
        try await self.expectSummaries(store, count: 2)
        #expect(
            try await store.page(DeadLetterFilter(), after: nil, limit: 10).letters.map(\.attempts) == [.max, .max]
        )
    }

    @Test("Letters of Int.max attempts appended one by one, then one deleted: stats still work")
    func separateAppends() async throws {
        let store = try makeFreshStore()
        let letters = (0..<3).map { _ in DeadLetterFixtures.letter(attempts: Self.huge) }
        for letter in letters { try await store.append([letter]) }
        try await self.expectSummaries(store, count: 3)
        _ = try await store.delete(ids: [letters[0].id])
        let summary = try await store.summary(DeadLetterFilter(), now: DeadLetterFixtures.epoch)
        #expect(summary.total == 2)
        #expect(summary.averageAttempts.isFinite)
    }

    @Test("An import of letters of Int.max attempts (straight to the store) does not overflow its totals")
    func importStraightToTheStore() async throws {
        let store = try makeFreshStore()
        let letters = (0..<4).map { _ in DeadLetterFixtures.letter(attempts: Self.huge) }
        let result = try await store.importLetters(AsyncLetters(letters: letters), onConflict: .skip)
        #expect(result.inserted == 4)
        try await self.expectSummaries(store, count: 4)
    }

    func expectSummaries(_ store: SQLiteDeadLetterStore, count: Int) async throws {
        for filter in [DeadLetterFilter(), DeadLetterFilter(sources: ["orders"]), DeadLetterFilter(minAttempts: 0)] {
            let summary = try await store.summary(filter, now: DeadLetterFixtures.epoch)
            #expect(summary.total == count)
            // In floating point: close to Int.max, whatever the sum's rounding.
            #expect(abs(summary.averageAttempts / Double(Int.max) - 1) < 1e-9, "\(summary.averageAttempts)")
        }
    }
}

/// Letters as an `AsyncSequence`, for `importLetters`.
struct AsyncLetters: AsyncSequence, Sendable {
    typealias Element = DeadLetter
    let letters: [DeadLetter]

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: ArraySlice<DeadLetter>
        mutating func next() async throws -> DeadLetter? { self.remaining.popFirst() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: self.letters[...]) }
}
