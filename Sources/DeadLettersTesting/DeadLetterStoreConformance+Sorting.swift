import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    static let sortingChecks: [(name: String, check: Check)] = [
        ("sortedPagingVisitsEveryLetterOnce", sortedPagingVisitsEveryLetterOnce),
        ("sortedPagingWithFilterAndBadCursor", sortedPagingWithFilterAndBadCursor),
    ]

    /// 250 letters with many ties in every sort key (5 sources, 4 attempt counts, 7 failure times).
    static func sortFixture() -> [DeadLetter] {
        make(250, seed: 31) { index, letter in
            letter.source = ["orders", "emails", "Zeta", "payments", "ä-source"][index % 5]
            letter.attempts = 1 + (index * 7) % 4
            letter.firstFailedAt = DeadLetterFixtures.epoch.adding(.seconds(60 * ((index * 3) % 7)))
            letter.lastFailedAt = letter.firstFailedAt.adding(.seconds(10 * ((index * 5) % 7)))
            letter.metadata = ["tenant": index % 2 == 0 ? "acme" : "globex"]
        }
    }

    /// Paging through 250 letters by every order, 7 at a time, visits each letter exactly once, in the order's
    /// sequence (ties by id, in the same direction).
    static func sortedPagingVisitsEveryLetterOnce(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = sortFixture()
        try await store.append(letters)
        for sort in DeadLetterSort.all {
            let want = letters.sorted { sort.orders($0, before: $1) }.map(\.id)
            var got: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await store.page(DeadLetterFilter(), sortedBy: sort, after: cursor, limit: 7)
                #expect(page.letters.count == 7 || page.nextCursor == nil, "\(sort): full pages until the last")
                got += page.letters.map(\.id)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages < 100
            #expect(got.count == 250 && Set(got).count == 250, "\(sort): no letter skipped or repeated")
            #expect(got == want, "\(sort): the order's sequence")
            let bare = try await store.pageWithoutPayloads(DeadLetterFilter(), sortedBy: sort, after: nil, limit: 5)
            #expect(bare.letters.map(\.id) == Array(want.prefix(5)) && bare.letters.allSatisfy(\.payload.isEmpty))
        }
    }

    /// A sorted page applies the filter; a letter deleted at the cursor does not disturb the next page; a
    /// cursor of another order is refused.
    static func sortedPagingWithFilterAndBadCursor(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = sortFixture()
        try await store.append(letters)
        let filter = DeadLetterFilter(sources: ["orders", "Zeta"], metadata: ["tenant": "acme"])
        for sort in [DeadLetterSort.lastFailed, .attempts, .source, .firstFailed] {
            let want = letters.filter(filter.matches).sorted { sort.orders($0, before: $1) }.map(\.id)
            var got: [String] = []
            var cursor: String?
            repeat {
                let page = try await store.page(filter, sortedBy: sort, after: cursor, limit: 9)
                got += page.letters.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(got == want, "\(sort) with a filter")
        }
        let first = try await store.page(DeadLetterFilter(), sortedBy: .attempts, after: nil, limit: 10)
        let cursor = try #require(first.nextCursor)
        #expect(try await store.delete(ids: [try #require(first.letters.last).id]) == 1)
        let second = try await store.page(DeadLetterFilter(), sortedBy: .attempts, after: cursor, limit: 10)
        let want = letters.sorted { DeadLetterSort.attempts.orders($0, before: $1) }.map(\.id)
        #expect(second.letters.map(\.id) == Array(want[10..<20]), "a deleted cursor letter")
        await #expect(throws: DeadLetterError.self) {
            _ = try await store.page(DeadLetterFilter(), sortedBy: .source, after: "not a cursor", limit: 10)
        }
    }
}
