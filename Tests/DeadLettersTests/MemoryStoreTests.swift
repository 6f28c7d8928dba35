import DeadLetters
import DeadLettersTesting
import Testing

@Suite("MemoryStore")
struct MemoryStoreTests {
    @Test(arguments: DeadLetterStoreConformance.checks)
    func conformance(_ check: String) async throws {
        try await DeadLetterStoreConformance.run(check) { MemoryDeadLetterStore() }
    }

    @Test func staticFactoryMakesAnEmptyStore() async throws {
        let store: MemoryDeadLetterStore = .memory
        #expect(try await store.count(DeadLetterFilter()) == 0)
        try await store.append([DeadLetterFixtures.letter()])
        #expect(try await store.count(DeadLetterFilter()) == 1)
        let other: MemoryDeadLetterStore = .memory
        #expect(try await other.count(DeadLetterFilter()) == 0, "each use makes a new store")
    }

    @Test func unknownCheckThrows() async throws {
        let error = await #expect(throws: DeadLetterError.self) {
            try await DeadLetterStoreConformance.run("noSuchCheck") { MemoryDeadLetterStore() }
        }
        #expect(error?.code == .invalidConfiguration)
    }
}
