import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite("stats and groups JSON")
struct JSONDocumentsTests {
    @Test("strings are escaped as the stored format escapes them, and for HTML on request")
    func quoting() throws {
        let text = "a \"b\" \\ <script>&\n\u{1}\u{2028}é"
        #expect(DeadLetterJSON.quoted(text) == #""a \"b\" \\ <script>&\n\u0001"# + "\u{2028}é\"")
        #expect(
            DeadLetterJSON.quoted(text, escapingHTML: true)
                == #""a \"b\" \\ \u003cscript\u003e\u0026\n\u0001\u2028é""#
        )
        for escaping in [false, true] {
            let decoded = try JSONDecoder().decode(
                String.self,
                from: Data(DeadLetterJSON.quoted(text, escapingHTML: escaping).utf8)
            )
            #expect(decoded == text)
        }
    }

    @Test("stats has every key in order, every status and age bucket, and null times when empty")
    func summary() async throws {
        let empty = DeadLetterJSON.summary(
            DeadLetterSummary(
                total: 0,
                byReason: [:],
                bySource: [:],
                byErrorType: [:],
                byStatus: [:],
                byAge: [:],
                oldestFailedAt: nil,
                newestFailedAt: nil,
                averageAttempts: 0
            )
        )
        #expect(
            empty == #"{"total":0,"byReason":{},"bySource":{},"byErrorType":{},"#
                + #""byStatus":{"dead":0,"parked":0,"retrying":0},"byAge":{"<1h":0,"1h-6h":0,"6h-24h":0,">24h":0},"#
                + #""oldestFailedAt":null,"newestFailedAt":null,"averageAttempts":0}"#
        )
        let store = MemoryDeadLetterStore()
        try await store.append(DeadLetterFixtures.letters(count: 3) { index, letter in letter.attempts = index + 1 })
        let summary = try await store.summary(DeadLetterFilter(), now: DeadLetterFixtures.epoch)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(DeadLetterJSON.summary(summary).utf8)) as? [String: Any]
        )
        #expect(object["total"] as? Int == 3)
        #expect(object["averageAttempts"] as? Int == 2)
        #expect(object["oldestFailedAt"] as? String == "2026-01-01T00:00:00.000Z")
    }

    @Test("a group with a hostile message stays one JSON object")
    func group() throws {
        let group = DeadLetterGroup(
            fingerprint: "0123456789abcdef",
            count: 2,
            errorType: "E",
            sampleMessage: "</script><b>\"",
            sources: ["a", "b"],
            firstFailedAt: DeadLetterFixtures.epoch,
            lastFailedAt: DeadLetterFixtures.epoch.addingTimeInterval(1.5)
        )
        let text = DeadLetterJSON.group(group, escapingHTML: true)
        #expect(!text.contains("<"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["sampleMessage"] as? String == "</script><b>\"")
        #expect(object["sources"] as? [String] == ["a", "b"])
        #expect(object["lastFailedAt"] as? String == "2026-01-01T00:00:01.500Z")
    }
}
