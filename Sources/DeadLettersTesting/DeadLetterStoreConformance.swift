public import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The conformance suite every ``DeadLetters/DeadLetterStore`` runs: the memory store, SQLite and PostgreSQL.
///
/// Each check takes a fresh, empty store from `makeStore` and asserts one part of the protocol's documented
/// semantics with `#expect` and `#require`, using ``DeadLetters/DeadLetterFilter/matches(_:)`` as the
/// reference for filters. A store's test target runs all of them:
///
/// ```swift
/// @Test(arguments: DeadLetterStoreConformance.checks)
/// func conformance(_ check: String) async throws {
///     try await DeadLetterStoreConformance.run(check) { try await makeFreshStore() }
/// }
/// ```
///
/// Where the protocol's documentation leaves a choice open, the check's doc comment states the decision.
public enum DeadLetterStoreConformance {
    typealias MakeStore = () async throws -> any DeadLetterStore
    typealias Check = @Sendable (MakeStore) async throws -> Void

    static let all: [(name: String, check: Check)] =
        [
            ("emptyStore", emptyStore),
            ("appendReadsBackEveryField", appendReadsBackEveryField),
            ("appendKeepsNilAndEmptyFields", appendKeepsNilAndEmptyFields),
            ("appendKeepsPayloadBytes", appendKeepsPayloadBytes),
            ("appendKeepsUnicodeExactly", appendKeepsUnicodeExactly),
            ("appendReturnsCounts", appendReturnsCounts),
            ("duplicateUnderFailStoresNothing", duplicateUnderFailStoresNothing),
            ("duplicateWithinBatch", duplicateWithinBatch),
            ("duplicateUnderSkipIsCounted", duplicateUnderSkipIsCounted),
            ("rejectNewMaxEntries", rejectNewMaxEntries),
            ("rejectNewMaxBytes", rejectNewMaxBytes),
            ("dropOldestMaxEntries", dropOldestMaxEntries),
            ("dropOldestWithinOneBatch", dropOldestWithinOneBatch),
            ("dropOldestMaxBytes", dropOldestMaxBytes),
            ("pagingAcrossManyPages", pagingAcrossManyPages),
            ("pagingExactMultipleEndsWithoutCursor", pagingExactMultipleEndsWithoutCursor),
            ("pageWithoutPayloads", pageWithoutPayloads),
            ("pagingCursorOfDeletedLetter", pagingCursorOfDeletedLetter),
            ("pagingWithFilter", pagingWithFilter),
            ("filterEachField", filterEachField),
            ("filterBoundaries", filterBoundaries),
            ("filterCombined", filterCombined),
            ("filterSearchIsASCIICaseInsensitive", filterSearchIsASCIICaseInsensitive),
            ("filterHostileValuesMatchLiterally", filterHostileValuesMatchLiterally),
            ("countMatchesFilter", countMatchesFilter),
            ("summaryEveryField", summaryEveryField),
            ("summaryAgeBuckets", summaryAgeBuckets),
            ("summaryWithFilter", summaryWithFilter),
            ("summaryOfEmptyStore", summaryOfEmptyStore),
            ("groupsCountsAndOrder", groupsCountsAndOrder),
            ("groupsLimitAndFilter", groupsLimitAndFilter),
            ("timelineCountsByLastFailure", timelineCountsByLastFailure),
            ("claimDueSelectsDueLetters", claimDueSelectsDueLetters),
            ("claimDueLimitEarliestFirst", claimDueLimitEarliestFirst),
            ("claimDueLeaseExcludesUntilExpiry", claimDueLeaseExcludesUntilExpiry),
            ("claimDueWithNoSources", claimDueWithNoSources),
            ("claimByIDs", claimByIDs),
            ("completeOnlyByOwner", completeOnlyByOwner),
            ("completeAfterLeaseTakenOver", completeAfterLeaseTakenOver),
            ("releaseOnlyByOwner", releaseOnlyByOwner),
            ("releaseWritesStateAndEndsLease", releaseWritesStateAndEndsLease),
            ("writeOutcomesEachByOwner", writeOutcomesEachByOwner),
            ("redriveMakesLettersDue", redriveMakesLettersDue),
            ("redriveSkipsLiveLeases", redriveSkipsLiveLeases),
            ("redriveLimitOldestFirst", redriveLimitOldestFirst),
            ("deleteRemovesLeasedOrNot", deleteRemovesLeasedOrNot),
            ("usageCountsBytes", usageCountsBytes),
            ("importIsAllOrNothing", importIsAllOrNothing),
            ("importSkipIsIdempotent", importSkipIsIdempotent),
            ("importFailOnDuplicateStoresNothing", importFailOnDuplicateStoresNothing),
            ("lettersSequenceStreamsEverything", lettersSequenceStreamsEverything),
            ("concurrentAppendsGiveExactCount", concurrentAppendsGiveExactCount),
            ("concurrentClaimsNeverOverlap", concurrentClaimsNeverOverlap),
        ] + lifecycleChecks + operationChecks + searchChecks + sortingChecks

    /// The names of every check, to pass as the arguments of a parameterized test.
    public static let checks: [String] = all.map(\.name)

    /// Runs one check against a fresh store.
    /// - Parameters:
    ///   - check: one of ``checks``.
    ///   - payloadOverhead: bytes the store adds to every payload it keeps, which its ``DeadLetters/DeadLetterStore/usage()``
    ///     and byte limits count (37 for an ``DeadLetters/EncryptedDeadLetterStore`` with a key); 0 by default.
    ///   - makeStore: returns a new, empty store each time it is called.
    /// - Throws: what the store throws where the check does not expect it, or
    ///   ``DeadLetters/DeadLetterError/Code/invalidConfiguration`` for an unknown check name.
    public static func run(
        _ check: String,
        payloadOverhead: Int = 0,
        makeStore: () async throws -> any DeadLetterStore
    ) async throws {
        guard let entry = all.first(where: { $0.name == check }) else {
            throw DeadLetterError(code: .invalidConfiguration, message: "no conformance check named '\(check)'")
        }
        try await Self.$payloadOverhead.withValue(payloadOverhead) {
            try await entry.check(makeStore)
        }
    }
}

// MARK: - Helpers

extension DeadLetterStoreConformance {
    /// The `now` most checks use: one day after ``DeadLetterFixtures/epoch``.
    static let now = DeadLetterFixtures.epoch.adding(.seconds(86_400)).roundedToMilliseconds

    /// Every letter the store holds, read page by page, in id order.
    static func everything(
        _ store: any DeadLetterStore,
        _ filter: DeadLetterFilter = DeadLetterFilter()
    )
        async throws -> [DeadLetter]
    {
        var all: [DeadLetter] = []
        var cursor: String?
        repeat {
            let page = try await store.page(filter, after: cursor, limit: 1000)
            all += page.letters
            cursor = page.nextCursor
        } while cursor != nil
        return all
    }

    /// What the store must return for `filter`, per `DeadLetterFilter.matches`.
    static func expected(_ letters: [DeadLetter], _ filter: DeadLetterFilter) -> [DeadLetter] {
        letters.filter(filter.matches).sorted { $0.id < $1.id }
    }

    /// Checks that the store selects exactly what `matches` selects, by `page` and `count`.
    static func expectSelects(
        _ store: any DeadLetterStore,
        _ filter: DeadLetterFilter,
        in letters: [DeadLetter],
        count expectedCount: Int? = nil,
        _ comment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let want = self.expected(letters, filter)
        if let expectedCount {
            #expect(
                want.count == expectedCount,
                "the fixture should select \(expectedCount) for \(comment)",
                sourceLocation: sourceLocation
            )
        }
        let got = try await self.everything(store, filter)
        #expect(
            got.map(\.id) == want.map(\.id),
            "page selects what matches selects: \(comment)",
            sourceLocation: sourceLocation
        )
        let count = try await store.count(filter)
        #expect(count == want.count, "count: \(comment)", sourceLocation: sourceLocation)
    }

    /// Whether `error` is a `DeadLetterError` with `code`.
    static func isError(_ error: any Error, _ code: DeadLetterError.Code) -> Bool {
        (error as? DeadLetterError)?.code == code
    }

    /// Letters from `start`, `interval` apart, from a fresh seed.
    static func make(
        _ count: Int,
        seed: UInt64 = 7,
        start: Date = DeadLetterFixtures.epoch,
        interval: Duration = .seconds(1),
        configure: (Int, inout DeadLetter) -> Void = { _, _ in }
    ) -> [DeadLetter] {
        DeadLetterFixtures.letters(count: count, start: start, interval: interval, seed: seed, configure: configure)
    }

    static func usageOf(_ letters: [DeadLetter]) -> DeadLetterUsage {
        DeadLetterUsage(count: letters.count, bytes: letters.reduce(0) { $0 + storedSize($1) })
    }

    /// The bytes a store counts for `letter`: its ``DeadLetters/DeadLetter/storageSize`` and the store's
    /// payload overhead (see ``run(_:payloadOverhead:makeStore:)``).
    static func storedSize(_ letter: DeadLetter) -> Int {
        letter.storageSize + Self.payloadOverhead
    }

    @TaskLocal static var payloadOverhead = 0
}

/// The error ``ThrowingLetters`` throws.
struct ImportFailure: Error {}

/// An async sequence of letters that throws after `failAfter` letters, for import checks.
struct ThrowingLetters: AsyncSequence, Sendable {
    typealias Element = DeadLetter

    let letters: [DeadLetter]
    let failAfter: Int?

    struct AsyncIterator: AsyncIteratorProtocol {
        let letters: [DeadLetter]
        let failAfter: Int?
        var index = 0

        mutating func next() async throws -> DeadLetter? {
            if let failAfter, self.index >= failAfter { throw ImportFailure() }
            guard self.index < self.letters.count else { return nil }
            defer { self.index += 1 }
            return self.letters[self.index]
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(letters: self.letters, failAfter: self.failAfter)
    }
}
