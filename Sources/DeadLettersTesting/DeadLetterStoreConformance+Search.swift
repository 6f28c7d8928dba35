import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    static let searchChecks: [(name: String, check: Check)] = [
        ("searchFindsMessageMetadataAndPayload", searchFindsMessageMetadataAndPayload),
        ("searchSkipsSealedAndBinaryPayloads", searchSkipsSealedAndBinaryPayloads),
        ("metadataPairsAreANDed", metadataPairsAreANDed),
        ("searchFollowsEveryChange", searchFollowsEveryChange),
    ]

    /// Whether the store under test seals payloads (its payloads are then never searched).
    static var sealsPayloads: Bool { Self.payloadOverhead > 0 }

    /// What the store must select for `filter`: ``expected(_:_:)`` over the letters as the store keeps them,
    /// whose payloads are sealed (so never searched) when the store seals them.
    static func expectedAsStored(_ letters: [DeadLetter], _ filter: DeadLetterFilter) -> [DeadLetter] {
        guard Self.sealsPayloads else { return self.expected(letters, filter) }
        let selected = Set(
            letters.filter { letter in
                var sealed = letter
                sealed.payload = Data([0x00, 0x64, 0x6C, 0x71, 0x01])
                return filter.matches(sealed)
            }.map(\.id)
        )
        return self.expected(letters, DeadLetterFilter()).filter { selected.contains($0.id) }
    }

    static func expectSelectsAsStored(
        _ store: any DeadLetterStore,
        _ filter: DeadLetterFilter,
        in letters: [DeadLetter],
        count expectedCount: Int? = nil,
        _ comment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let want = self.expectedAsStored(letters, filter)
        if let expectedCount {
            #expect(want.count == expectedCount, "the fixture selects \(expectedCount): \(comment)")
        }
        let got = try await self.everything(store, filter)
        #expect(got.map(\.id) == want.map(\.id), "page: \(comment)", sourceLocation: sourceLocation)
        #expect(try await store.count(filter) == want.count, "count: \(comment)", sourceLocation: sourceLocation)
    }

    /// 60 letters with order ids in their payloads, SKUs and tenants in their metadata, and a few binary
    /// payloads that hold the same text among invalid UTF-8.
    static func searchFixture() -> [DeadLetter] {
        make(60, seed: 23) { index, letter in
            letter.errorMessage = index % 10 == 0 ? "Timeout talking to inventory" : "order rejected"
            letter.metadata = [
                "tenant": ["acme", "globex", "Acme"][index % 3],
                "shop": "shop-\(index % 4)",
                "sku": "SKU-\(1070 + index % 12)",
            ]
            // Characters that JSON text or an escape encoding write otherwise: a value with quotes and a
            // backslash, a payload with two backslashes.
            if index % 5 == 0 { letter.metadata["note"] = #"say "hi" at C:\temp ✓"# }
            if index % 7 == 6 {
                // Binary: the order id's bytes among bytes that are not UTF-8.
                letter.payload = Data([0xFF, 0xFE]) + Data("ord-\(10100 + index)".utf8)
            } else if index % 11 == 0 {
                letter.payload = Data(#"{"order":"ORD-\#(10100 + index)","note":"größe ✓","path":"a\\b"}"#.utf8)
            } else {
                letter.payload = Data(#"{"order":"ORD-\#(10100 + index)","note":"größe ✓"}"#.utf8)
            }
        }
    }

    /// `search` finds a substring of the error message, of a metadata value, or of a text payload, folding
    /// ASCII letters; not a metadata key, and never text that spans two fields. Needles of one or two
    /// characters (too short for a trigram index) select the same.
    static func searchFindsMessageMetadataAndPayload(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = searchFixture()
        try await store.append(letters)
        let cases: [(String, Int?)] = [
            ("ord-10109", 1), ("ORD-1011", nil), ("sku-1079", 5), ("SKU-107", nil), ("inventory", 6),
            ("TIMEOUT talking", 6), ("acme", 40), ("ACME", 40), ("tenant", 0), ("größe", nil), ("GRÖSSE", 0),
            ("✓", nil), ("ö", nil), ("x", nil), ("42", nil), ("\"order\":\"ORD-10101\"", 1),
            ("rejected ORD", 0), ("shop-3", 15), ("zzzz", 0), ("'; --", 0), ("%", 0), ("_", 0),
            (#""hi""#, 12), (#"C:\TEMP"#, 12), (#"hi" at c:\t"#, 12), ("\"", nil), ("\\", nil),
            (#"a\\b"#, 5), (#"A\\B"#, 5), (#"a\b"#, 0), ("temp ✓", 12),
        ]
        for (search, count) in cases {
            try await expectSelectsAsStored(
                store,
                DeadLetterFilter(search: search),
                in: letters,
                count: Self.sealsPayloads ? nil : count,
                "search \(search.debugDescription)"
            )
        }
        try await expectSelectsAsStored(
            store,
            DeadLetterFilter(sources: ["orders"], search: "ord-1012", metadata: ["tenant": "acme"]),
            in: letters,
            "search with other fields"
        )
    }

    /// Sealed payloads (and payloads that are not UTF-8, or hold a NUL) are never searched; the message and
    /// metadata of the same letters still are.
    static func searchSkipsSealedAndBinaryPayloads(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let plain = DeadLetterFixtures.letter(errorMessage: "plain", payload: Data("invoice INV-778".utf8))
        let sealed = DeadLetterFixtures.letter(
            errorMessage: "sealed",
            metadata: ["invoice": "INV-991"],
            payload: Data([0x00, 0x64, 0x6C, 0x71, 0x01]) + Data("INV-778 INV-779".utf8)
        )
        let binary = DeadLetterFixtures.letter(errorMessage: "binary", payload: Data([0xC3]) + Data("INV-778".utf8))
        let withNUL = DeadLetterFixtures.letter(errorMessage: "nul", payload: Data("INV-778\u{0}".utf8))
        let letters = [plain, sealed, binary, withNUL]
        try await store.append(letters)
        #expect(DeadLetterFilter.searchablePayloadText(sealed.payload) == nil)
        try await expectSelectsAsStored(
            store,
            DeadLetterFilter(search: "inv-778"),
            in: letters,
            count: Self.sealsPayloads ? 0 : 1,
            "only the text payload"
        )
        try await expectSelectsAsStored(store, DeadLetterFilter(search: "INV-779"), in: letters, count: 0, "sealed")
        try await expectSelectsAsStored(store, DeadLetterFilter(search: "inv-991"), in: letters, count: 1, "metadata")
    }

    /// Metadata pairs select letters whose metadata has every pair, exactly (case and all).
    static func metadataPairsAreANDed(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = searchFixture()
        try await store.append(letters)
        let cases: [([String: String], Int)] = [
            (["tenant": "acme"], 20), (["tenant": "Acme"], 20), (["tenant": "ACME"], 0),
            (["tenant": "acme", "shop": "shop-0"], 5), (["tenant": "acme", "shop": "shop-0", "sku": "SKU-1070"], 5),
            (["tenant": "acme", "shop": "shop-1"], 5), (["tenant": "acme", "sku": "SKU-1071"], 0),
            (["shop": "acme"], 0), (["nope": "acme"], 0), (["tenant": ""], 0), (["tenant": "acme\u{0}"], 0),
            (["tenant": "' OR 1=1 --"], 0),
        ]
        for (pairs, count) in cases {
            try await expectSelects(
                store,
                DeadLetterFilter(metadata: pairs),
                in: letters,
                count: count,
                "metadata \(pairs.sorted { $0.key < $1.key })"
            )
        }
        try await expectSelects(
            store,
            DeadLetterFilter(statuses: [.dead], metadata: ["tenant": "globex"]),
            in: letters,
            "metadata with status"
        )
        #expect(
            try await store.groups(DeadLetterFilter(metadata: ["tenant": "acme"]), limit: 10).map(\.count).reduce(0, +)
                == 20
        )
        #expect(try await store.summary(DeadLetterFilter(metadata: ["tenant": "acme"]), now: now).total == 20)
    }

    /// Search and metadata follow every change: an edited payload and metadata (written by release) are
    /// found and the old ones no longer; removed letters (delete, complete, dropped as oldest) are found no
    /// more; imported letters are found.
    static func searchFollowsEveryChange(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        var letters = searchFixture()
        try await store.append(letters)
        // Edit: claim, change payload and metadata, release.
        let edited = letters[9]
        var next = try #require(
            try await store.claim(ids: [edited.id], now: now, owner: "ed", leaseUntil: now.adding(.seconds(60))).first
        )
        next.payload = Data(#"{"order":"ORD-55555"}"#.utf8)
        next.metadata = ["tenant": "initech", "sku": "SKU-9"]
        next.errorMessage = "edited by hand"
        #expect(try await store.release(next, owner: "ed"))
        letters[9] = next
        try await expectSelectsAsStored(store, DeadLetterFilter(search: "ord-55555"), in: letters, "edited payload")
        try await expectSelectsAsStored(
            store,
            DeadLetterFilter(search: "ord-10109"),
            in: letters,
            count: 0,
            "old payload"
        )
        try await expectSelects(
            store,
            DeadLetterFilter(metadata: ["tenant": "initech"]),
            in: letters,
            count: 1,
            "new metadata"
        )
        try await expectSelects(
            store,
            DeadLetterFilter(metadata: ["sku": "SKU-1079"]),
            in: letters,
            count: 4,
            "old metadata"
        )
        try await expectSelects(store, DeadLetterFilter(search: "by hand"), in: letters, count: 1, "edited message")
        // Write outcomes: one completed, one released with new metadata.
        let claimed = try await store.claim(
            ids: [letters[1].id, letters[2].id],
            now: now,
            owner: "w",
            leaseUntil: now.adding(.seconds(60))
        )
        #expect(claimed.count == 2)
        var second = claimed[1]
        second.metadata = ["tenant": "hooli"]
        #expect(try await store.write([.complete(id: letters[1].id), .release(second)], owner: "w") == [true, true])
        letters.remove(at: 1)
        letters[1] = second
        try await expectSelects(
            store,
            DeadLetterFilter(metadata: ["tenant": "hooli"]),
            in: letters,
            count: 1,
            "outcome"
        )
        try await expectSelectsAsStored(
            store,
            DeadLetterFilter(search: "ord-10101"),
            in: letters,
            count: 0,
            "completed"
        )
        // Delete.
        #expect(try await store.delete(ids: [letters[0].id, letters[3].id]) == 2)
        letters.remove(at: 3)
        letters.remove(at: 0)
        for filter in [
            DeadLetterFilter(search: "ord-10100"), DeadLetterFilter(search: "ord-10104"),
            DeadLetterFilter(metadata: ["shop": "shop-0"]), DeadLetterFilter(search: "acme"),
        ] {
            try await expectSelectsAsStored(store, filter, in: letters, "after delete")
        }
        // Dropped as oldest.
        let extra = DeadLetterFixtures.letter(
            id: DeadLetterFixtures.nextID(at: now),
            metadata: ["tenant": "umbrella"],
            payload: Data("ORD-77777".utf8)
        )
        let result = try await store.append(
            [extra],
            onConflict: .fail,
            limits: DeadLetterLimits(maxEntries: letters.count - 5, overflow: .dropOldest)
        )
        let evicted = Set(result.evicted.map(\.id))
        #expect(evicted.count == 6)
        letters = letters.filter { !evicted.contains($0.id) } + [extra]
        for filter in [
            DeadLetterFilter(search: "ord-77777"), DeadLetterFilter(metadata: ["tenant": "umbrella"]),
            DeadLetterFilter(search: "acme"), DeadLetterFilter(metadata: ["tenant": "acme"]),
            DeadLetterFilter(search: "ord-1010"),
        ] {
            try await expectSelectsAsStored(store, filter, in: letters, "after dropping the oldest")
        }
        // Import.
        let imported = make(3, seed: 91, start: now) { index, letter in
            letter.metadata = ["tenant": "imported"]
            letter.payload = Data("ORD-8888\(index)".utf8)
        }
        _ = try await store.importLetters(ThrowingLetters(letters: imported, failAfter: nil), onConflict: .skip)
        letters += imported
        try await expectSelects(
            store,
            DeadLetterFilter(metadata: ["tenant": "imported"]),
            in: letters,
            count: 3,
            "import"
        )
        try await expectSelectsAsStored(store, DeadLetterFilter(search: "ORD-8888"), in: letters, "import search")
    }
}
