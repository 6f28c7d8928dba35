import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite("MemoryStore: letters sharing their metadata")
struct MemoryStoreMetadataTests {
    @Test("letters with the same metadata read back their own; equal-looking text keeps its bytes")
    func sharedMetadataKeepsEachLettersBytes() async throws {
        let store = MemoryDeadLetterStore()
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        #expect(composed == decomposed, "Swift takes them for one string")
        let metadata: [[String: String]] = [
            ["tenant": "acme"], ["tenant": "acme"], ["tenant": composed], ["tenant": decomposed],
            [composed: "x"], [decomposed: "x"], ["tenant": "acme", "region": "eu"], [:],
        ]
        let letters = metadata.map { DeadLetterFixtures.letter(metadata: $0) }
        try await store.append(letters)
        for letter in letters {
            let stored = try #require(try await store.letter(id: letter.id))
            #expect(stored == letter)
            #expect(stored.metadata.count == letter.metadata.count)
            for (key, value) in letter.metadata {
                let index = try #require(stored.metadata.index(forKey: key))
                #expect(Array(stored.metadata[index].key.utf8) == Array(key.utf8))
                #expect(Array(stored.metadata[index].value.utf8) == Array(value.utf8))
            }
        }
    }

    @Test("sources, reasons, error types and content types that Swift takes for one string keep their own bytes")
    func internedTextKeepsEachLettersBytes() async throws {
        let store = MemoryDeadLetterStore()
        let spellings = ["caf\u{E9}", "cafe\u{301}", "caf\u{E9}", "cafe\u{301}"]
        let letters = spellings.map { text in
            DeadLetterFixtures.letter(
                source: text,
                reason: FailureReason(rawValue: "reason-" + text),
                errorType: "Error" + text,
                contentType: "text/" + text
            )
        }
        try await store.append(letters)
        for letter in letters {
            let stored = try #require(try await store.letter(id: letter.id))
            #expect(Array(stored.source.utf8) == Array(letter.source.utf8))
            #expect(Array(stored.errorType.utf8) == Array(letter.errorType.utf8))
            #expect(Array(stored.reason.rawValue.utf8) == Array(letter.reason.rawValue.utf8))
            #expect(stored.contentType.map { Array($0.utf8) } == letter.contentType.map { Array($0.utf8) })
        }
    }
}
