import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    /// `rejectNew` with `maxEntries`: a batch that would go beyond the limit throws `capacityExceeded` and
    /// stores none of its letters; a batch that fits is stored. Skipped duplicates take no room.
    static func rejectNewMaxEntries(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(5)
        let limits = DeadLetterLimits(maxEntries: 3, overflow: .rejectNew)
        #expect(try await store.append([letters[0], letters[1]], onConflict: .fail, limits: limits).inserted == 2)
        let error = await #expect(throws: DeadLetterError.self) {
            _ = try await store.append([letters[2], letters[3]], onConflict: .fail, limits: limits)
        }
        #expect(error?.code == .capacityExceeded)
        #expect(try await everything(store) == [letters[0], letters[1]])
        let fits = try await store.append([letters[0], letters[2]], onConflict: .skip, limits: limits)
        #expect(fits == DeadLetterAppendResult(inserted: 1, skipped: 1, evicted: []))
        await #expect(throws: DeadLetterError.self) {
            _ = try await store.append([letters[4]], onConflict: .fail, limits: limits)
        }
        #expect(try await store.count(DeadLetterFilter()) == 3)
        #expect(try await store.usage() == usageOf(Array(letters[0..<3])))
    }

    /// `rejectNew` with `maxBytes`: a batch whose ``DeadLetters/DeadLetter/storageSize`` would take the store
    /// beyond the limit throws `capacityExceeded` and stores nothing; the limit itself is allowed.
    static func rejectNewMaxBytes(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(4) { index, letter in letter.payload = Data(repeating: UInt8(index), count: 100) }
        let size = storedSize(letters[0])
        #expect(letters.allSatisfy { storedSize($0) == size })
        let limits = DeadLetterLimits(maxBytes: 2 * size, overflow: .rejectNew)
        _ = try await store.append([letters[0]], onConflict: .fail, limits: limits)
        let error = await #expect(throws: DeadLetterError.self) {
            _ = try await store.append([letters[1], letters[2]], onConflict: .fail, limits: limits)
        }
        #expect(error?.code == .capacityExceeded)
        #expect(try await everything(store) == [letters[0]])
        #expect(try await store.append([letters[1]], onConflict: .fail, limits: limits).inserted == 1)
        #expect(try await store.usage() == DeadLetterUsage(count: 2, bytes: 2 * size))
    }

    /// `dropOldest` with `maxEntries`: the oldest letters by id are removed in the same append and returned,
    /// oldest first, exactly as they were stored.
    static func dropOldestMaxEntries(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(6)
        let limits = DeadLetterLimits(maxEntries: 3, overflow: .dropOldest)
        let first = try await store.append(Array(letters[0..<3]), onConflict: .fail, limits: limits)
        #expect(first == DeadLetterAppendResult(inserted: 3, skipped: 0, evicted: []))
        // Append newer letters in reverse order: eviction goes by id, not by arrival.
        let second = try await store.append([letters[4], letters[3]], onConflict: .fail, limits: limits)
        #expect(second.inserted == 2)
        #expect(second.evicted == [letters[0], letters[1]])
        #expect(try await everything(store) == [letters[2], letters[3], letters[4]])
        #expect(try await store.usage() == usageOf([letters[2], letters[3], letters[4]]))
        let third = try await store.append([letters[5]], onConflict: .fail, limits: limits)
        #expect(third.evicted == [letters[2]])
        #expect(try await store.count(DeadLetterFilter()) == 3)
    }

    /// Decision: a `dropOldest` batch larger than the room is inserted whole, then the oldest letters by id
    /// (which may be letters of the same batch) are evicted; `inserted` counts every new letter and `evicted`
    /// returns them all, oldest first.
    static func dropOldestWithinOneBatch(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(6)
        let limits = DeadLetterLimits(maxEntries: 3, overflow: .dropOldest)
        _ = try await store.append([letters[1]], onConflict: .fail, limits: limits)
        let result = try await store.append(
            [letters[0], letters[2], letters[3], letters[4], letters[5]],
            onConflict: .fail,
            limits: limits
        )
        #expect(result.inserted == 5)
        #expect(result.evicted == [letters[0], letters[1], letters[2]])
        #expect(try await everything(store) == [letters[3], letters[4], letters[5]])
    }

    /// `dropOldest` with `maxBytes`, and with both limits: letters are evicted oldest first until the store
    /// is within every limit.
    static func dropOldestMaxBytes(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(6) { index, letter in
            letter.payload = Data(repeating: UInt8(index), count: index == 5 ? 300 : 100)
        }
        let size = storedSize(letters[0])
        let limits = DeadLetterLimits(maxBytes: 3 * size, overflow: .dropOldest)
        _ = try await store.append(Array(letters[0..<3]), onConflict: .fail, limits: limits)
        let one = try await store.append([letters[3]], onConflict: .fail, limits: limits)
        #expect(one.evicted == [letters[0]])
        #expect(try await store.usage() == usageOf(Array(letters[1...3])))
        // Letter 5 is 200 bytes larger than the others: with letter 4 it leaves room for no other.
        let both = DeadLetterLimits(maxEntries: 10, maxBytes: 2 * size + 200, overflow: .dropOldest)
        let big = try await store.append([letters[4], letters[5]], onConflict: .fail, limits: both)
        #expect(big.evicted == [letters[1], letters[2], letters[3]])
        #expect(try await everything(store) == [letters[4], letters[5]])
    }

    /// Pages walk every letter in id order with no gap and no repeat, whatever the append order; the last
    /// page has no cursor.
    static func pagingAcrossManyPages(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(250, interval: .milliseconds(1))
        var random = SeededRandom(seed: 3)
        let shuffled = letters.shuffled(using: &random)
        for start in stride(from: 0, to: shuffled.count, by: 50) {
            _ = try await store.append(Array(shuffled[start..<min(start + 50, shuffled.count)]))
        }
        var seen: [DeadLetter] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try await store.page(DeadLetterFilter(), after: cursor, limit: 7)
            #expect(page.letters.count <= 7)
            #expect(!page.letters.isEmpty, "a page before the end is never empty")
            if page.nextCursor != nil {
                #expect(page.letters.count == 7)
                #expect(page.nextCursor == page.letters.last?.id, "the cursor is the id of the page's last letter")
            }
            seen += page.letters
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil && pages < 100
        #expect(pages == 36)
        #expect(seen == letters)
        let one = try await store.page(DeadLetterFilter(), after: letters[10].id, limit: 1)
        #expect(one.letters == [letters[11]])
        let end = try await store.page(DeadLetterFilter(), after: letters[249].id, limit: 5)
        #expect(end.letters.isEmpty)
        #expect(end.nextCursor == nil)
    }

    /// A page without payloads is the same page (letters, order, cursor), every payload empty.
    static func pageWithoutPayloads(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(9)
        #expect(letters.allSatisfy { !$0.payload.isEmpty })
        _ = try await store.append(letters)
        let filter = DeadLetterFilter(statuses: [.dead, .retrying, .parked])
        var cursor: String?
        var read: [DeadLetter] = []
        repeat {
            let bare = try await store.pageWithoutPayloads(filter, after: cursor, limit: 4)
            let full = try await store.page(filter, after: cursor, limit: 4)
            #expect(bare.nextCursor == full.nextCursor)
            #expect(bare.letters.allSatisfy { $0.payload.isEmpty })
            #expect(bare.letters.map(\.id) == full.letters.map(\.id))
            read += bare.letters
            cursor = bare.nextCursor
        } while cursor != nil && read.count <= letters.count
        var emptied = letters
        for index in emptied.indices { emptied[index].payload = Data() }
        #expect(read == emptied)
    }

    /// Decision: `nextCursor` is `nil` on the last page even when that page is full.
    static func pagingExactMultipleEndsWithoutCursor(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(21)
        _ = try await store.append(letters)
        let first = try await store.page(DeadLetterFilter(), after: nil, limit: 7)
        let second = try await store.page(DeadLetterFilter(), after: first.nextCursor, limit: 7)
        let third = try await store.page(DeadLetterFilter(), after: second.nextCursor, limit: 7)
        #expect(first.letters + second.letters + third.letters == letters)
        #expect(first.nextCursor != nil && second.nextCursor != nil)
        #expect(third.nextCursor == nil)
        let whole = try await store.page(DeadLetterFilter(), after: nil, limit: 21)
        #expect(whole.letters == letters)
        #expect(whole.nextCursor == nil)
    }

    /// A cursor is an id: paging continues correctly after a letter that was deleted since.
    static func pagingCursorOfDeletedLetter(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(10)
        _ = try await store.append(letters)
        let first = try await store.page(DeadLetterFilter(), after: nil, limit: 4)
        #expect(first.letters == Array(letters[0..<4]))
        #expect(try await store.delete(ids: [letters[3].id, letters[4].id]) == 2)
        let second = try await store.page(DeadLetterFilter(), after: first.nextCursor, limit: 4)
        #expect(second.letters == Array(letters[5..<9]))
        let between = try await store.page(DeadLetterFilter(), after: letters[4].id, limit: 100)
        #expect(between.letters == Array(letters[5...]))
    }

    /// Pages of a filter hold only its letters, in id order, across pages.
    static func pagingWithFilter(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(60) { index, letter in
            letter.source = index % 3 == 0 ? "payments" : "orders"
        }
        _ = try await store.append(letters)
        let filter = DeadLetterFilter(sources: ["payments"])
        var seen: [DeadLetter] = []
        var cursor: String?
        repeat {
            let page = try await store.page(filter, after: cursor, limit: 6)
            seen += page.letters
            cursor = page.nextCursor
        } while cursor != nil && seen.count <= 60
        #expect(seen == letters.filter { $0.source == "payments" })
        #expect(seen.count == 20)
    }
}
