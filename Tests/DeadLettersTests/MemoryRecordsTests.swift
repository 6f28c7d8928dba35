import Testing

@testable import DeadLetters

/// The memory store's block of records, below the store: what happens when it cannot grow.
@Suite("MemoryStore records block")
struct MemoryRecordsTests {
    @Test("a block that cannot grow throws capacityExceeded and keeps its records")
    func blockThatCannotGrow() throws {
        let records = MemoryDeadLetterStore.Records()
        try records.reserve(1)
        records.append(.vacated)
        // More records than memory can address: the block's size overflows, as an allocation that fails would.
        let error = try #require(throws: DeadLetterError.self) { try records.reserve(Int.max / 2) }
        #expect(error.code == .capacityExceeded)
        #expect(error.message.contains("out of memory"))
        #expect(records.count == 1 && records[0].isRemoved)
        try records.reserve(3)
        records.append(.vacated)
        records.insert(.vacated, at: 0)
        #expect(records.count == 3)
    }
}
