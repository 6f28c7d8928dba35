import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

/// ``DeadLetterStore/letters(matching:batchSize:)``: every letter once in id order, the next page read while
/// the caller works on this one, the read ahead cancelled when the iteration is left or its task cancelled.
@Suite("Letters read page by page, the next page ahead")
struct DeadLetterSequenceTests {
    /// A store holding 25 letters, whose page reads run `onPage` first.
    private func store(
        onPage: (@Sendable (_ cursor: String?) async throws -> Void)? = nil
    ) async throws
        -> (CancellationRefusingStore, [String])
    {
        var store = CancellationRefusingStore()
        store.onPage = onPage
        let letters = (0..<25).map { DeadLetterFixtures.letter(errorMessage: "failed \($0)") }
        try await store.base.append(letters)
        return (store, letters.map(\.id).sorted())
    }

    /// The first value of `events`, or a failure after `seconds` (so that a missing event fails the test instead
    /// of hanging it).
    private func first(_ events: AsyncStream<String>, within seconds: Int) async throws -> String {
        try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                for await event in events { return event }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            let event = try await group.next() ?? nil
            return try #require(event, "nothing happened within \(seconds) s")
        }
    }

    @Test func everyLetterComesOnceInIDOrderAndNoPageIsReadPastTheLast() async throws {
        let reads = PThreadLock<[String?]>([])
        let (store, ids) = try await self.store { cursor in reads.withLock { $0.append(cursor) } }
        for batchSize in [1, 10, 25, 1000] {
            reads.withLock { $0 = [] }
            var seen: [String] = []
            for try await letter in store.letters(batchSize: batchSize) { seen.append(letter.id) }
            #expect(seen == ids, "batch size \(batchSize)")
            // One read per page, the first without a cursor, each next one after the page before it.
            let pages = stride(from: 0, to: ids.count, by: batchSize).map { $0 == 0 ? nil : ids[$0 - 1] }
            #expect(reads.withLock { $0 } == pages, "batch size \(batchSize)")
        }
        var filtered: [String] = []
        let filter = DeadLetterFilter(search: "failed 1")
        for try await letter in store.letters(matching: filter, batchSize: 3) { filtered.append(letter.errorMessage) }
        #expect(filtered.sorted() == (["failed 1"] + (10..<20).map { "failed \($0)" }).sorted())
    }

    @Test func theNextPageIsReadWhileThisOneIsHandedOut() async throws {
        let (events, continuation) = AsyncStream.makeStream(of: String.self)
        let (store, ids) = try await self.store { cursor in
            if let cursor { continuation.yield(cursor) }
        }
        var iterator = store.letters(batchSize: 10).makeAsyncIterator()
        #expect(try await iterator.next()?.id == ids[0])
        // Nine letters of the first page are still to be handed out, and the second page is being read.
        #expect(try await self.first(events, within: 10) == ids[9])
        var rest = 0
        while try await iterator.next() != nil { rest += 1 }
        #expect(rest == 24)
    }

    @Test func leavingTheIterationCancelsTheReadAhead() async throws {
        let (events, continuation) = AsyncStream.makeStream(of: String.self)
        let (store, ids) = try await self.store { cursor in
            guard cursor != nil else { return }
            do {
                // Held until cancelled.
                try await Task.sleep(for: .seconds(3600))
            } catch {
                continuation.yield("cancelled")
                throw error
            }
        }
        do {
            var iterator = store.letters(batchSize: 10).makeAsyncIterator()
            #expect(try await iterator.next()?.id == ids[0])
        }
        #expect(try await self.first(events, within: 10) == "cancelled")
    }

    @Test func aCopiedIteratorGoesOnByItself() async throws {
        let (store, ids) = try await self.store()
        var first = store.letters(batchSize: 10).makeAsyncIterator()
        for _ in 0..<10 { _ = try await first.next() }
        // Both copies share the read of the second page under way; each still gets every letter after.
        var second = first
        var fromFirst: [String] = []
        while let letter = try await first.next() { fromFirst.append(letter.id) }
        var fromSecond: [String] = []
        while let letter = try await second.next() { fromSecond.append(letter.id) }
        #expect(fromFirst == Array(ids.dropFirst(10)))
        #expect(fromSecond == fromFirst)
    }

    @Test func aCancelledTaskStopsAtItsNextPage() async throws {
        let (store, ids) = try await self.store()
        let seen = PThreadLock<[String]>([])
        let task = Task {
            for try await letter in store.letters(batchSize: 10) {
                seen.withLock { $0.append(letter.id) }
                if letter.id == ids[4] { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        // The page at hand is handed out whole; the next one is not.
        #expect(seen.withLock { $0 } == Array(ids.prefix(10)))
    }
}
