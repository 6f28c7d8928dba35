import DeadLetters
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterStoreConformance {
    /// An empty store reads as empty everywhere, and its write operations change nothing.
    static func emptyStore(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let page = try await store.page(DeadLetterFilter(), after: nil, limit: 10)
        #expect(page.letters.isEmpty)
        #expect(page.nextCursor == nil)
        #expect(try await store.count(DeadLetterFilter()) == 0)
        #expect(try await store.letter(id: DeadLetterFixtures.nextID()) == nil)
        #expect(try await store.groups(DeadLetterFilter(), limit: 10).isEmpty)
        #expect(try await store.usage() == DeadLetterUsage(count: 0, bytes: 0))
        let claimed = try await store.claimDue(
            now: now,
            limit: 10,
            owner: "w1",
            leaseUntil: now.adding(.seconds(30)),
            sources: ["orders"]
        )
        #expect(claimed.isEmpty)
        #expect(try await store.redrive(DeadLetterFilter(), now: now, limit: nil) == 0)
        #expect(try await store.delete(ids: [DeadLetterFixtures.nextID()]) == 0)
        #expect(try await store.complete(id: DeadLetterFixtures.nextID(), owner: "w1") == false)
        #expect(try await store.release(DeadLetterFixtures.letter(), owner: "w1") == false)
    }

    /// Every field of a letter reads back exactly as appended, by `letter(id:)` and by `page`.
    static func appendReadsBackEveryField(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let start = DeadLetterFixtures.epoch.adding(.milliseconds(123))
        let letter = DeadLetterFixtures.letter(
            source: "payments.eu-west",
            reason: FailureReason("customReason", retryable: true),
            errorType: "DecodingError",
            errorMessage: "keyNotFound: total at line 3",
            causes: ["URLError: timed out", "POSIXError: ECONNRESET"],
            attempts: 7,
            firstFailedAt: start,
            lastFailedAt: start.adding(.milliseconds(7_333)),
            status: .retrying,
            nextAttemptAt: start.adding(.milliseconds(60_001)),
            expiresAt: start.adding(.seconds(7 * 86_400)),
            fingerprint: "fp-custom",
            replayCount: 2,
            metadata: ["tenant": "acme", "trace.id": "abc-123", "empty": ""],
            contentType: "application/x-protobuf",
            payload: Data([0, 1, 2, 254, 255]),
            history: [
                DeadLetter.HistoryEntry(
                    event: .replayed,
                    at: start.adding(.seconds(10)),
                    outcome: .failed,
                    errorType: "ReplayError",
                    errorMessage: "still broken",
                    causes: ["IOError: reset", "é 🚀 \\u0000 as text"],
                    reason: .timeout,
                    fingerprint: "fp-replay",
                    actor: "alice@ops-1",
                    operation: "0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d",
                    message: "a message with \"quotes\" and\nlines"
                ),
                DeadLetter.HistoryEntry(event: .redriven, at: start.adding(.seconds(20)), outcome: .succeeded),
                DeadLetter.HistoryEntry(event: "somethingNew", at: start.adding(.seconds(30))),
            ]
        )
        let other = DeadLetterFixtures.letter(firstFailedAt: start.adding(.seconds(1)))
        try await store.append([letter, other])
        let read = try #require(try await store.letter(id: letter.id))
        #expect(read == letter)
        #expect(read.reason.rawValue == "customReason")
        #expect(read.metadata == letter.metadata)
        #expect(read.history == letter.history)
        #expect(read.causes == letter.causes)
        #expect(read.nextAttemptAt?.millisecondsSince1970 == letter.nextAttemptAt?.millisecondsSince1970)
        #expect(read.firstFailedAt.millisecondsSince1970 == start.millisecondsSince1970)
        let page = try await store.page(DeadLetterFilter(), after: nil, limit: 10)
        #expect(page.letters == [letter, other])
        #expect(try await store.letter(id: other.id) == other)
    }

    /// Optional fields stay `nil` (never `""` or a zero date) and empty collections stay empty.
    static func appendKeepsNilAndEmptyFields(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letter = DeadLetterFixtures.letter(
            errorMessage: "",
            status: .dead,
            metadata: [:],
            contentType: nil,
            payload: Data()
        )
        #expect(letter.nextAttemptAt == nil && letter.expiresAt == nil)
        try await store.append([letter])
        let read = try #require(try await store.letter(id: letter.id))
        #expect(read == letter)
        #expect(read.contentType == nil)
        #expect(read.nextAttemptAt == nil)
        #expect(read.expiresAt == nil)
        #expect(read.errorMessage == "")
        #expect(read.causes.isEmpty)
        #expect(read.metadata.isEmpty)
        #expect(read.storedHistory.isEmpty)
        #expect(read.history == [DeadLetter.HistoryEntry(firstFailureOf: letter)])
        #expect(read.payload.isEmpty)
    }

    /// Payloads are kept byte for byte: empty, every byte value (NUL and invalid UTF-8 included), and large.
    static func appendKeepsPayloadBytes(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        var random = SeededRandom(seed: 42)
        let large = Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) })
        let payloads = [Data(), Data((0...255).map { UInt8($0) }), Data([0xC3, 0x28, 0xFF, 0x00, 0xFE]), large]
        let letters = make(payloads.count) { index, letter in letter.payload = payloads[index] }
        try await store.append(letters)
        for letter in letters {
            let read = try #require(try await store.letter(id: letter.id))
            #expect(read.payload == letter.payload, "payload of \(letter.payload.count) bytes")
        }
        #expect(try await store.usage() == usageOf(letters))
    }

    /// Text fields keep their exact UTF-8 bytes: accents (composed and decomposed), CJK, emoji, quotes.
    ///
    /// Decision: stored text never contains NUL (PostgreSQL's `text` cannot hold it), so this check uses none.
    static func appendKeepsUnicodeExactly(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let texts = ["Ünïcødé", "e\u{301}té", "日本語のエラー", "🚀🔥 failed", #"it's "quoted" \ back"#, "tab\tand\nnewline"]
        let letters = make(texts.count) { index, letter in
            letter.source = "source-" + texts[index]
            letter.errorType = "Type" + texts[index]
            letter.errorMessage = texts[index]
            letter.causes = [texts[index]]
            letter.metadata = [texts[index]: texts[(index + 1) % texts.count]]
            letter.contentType = "text/plain; charset=\(texts[index])"
        }
        try await store.append(letters)
        for letter in letters {
            let read = try #require(try await store.letter(id: letter.id))
            #expect(read == letter)
            #expect(Array(read.errorMessage.utf8) == Array(letter.errorMessage.utf8))
            #expect(Array(read.source.utf8) == Array(letter.source.utf8))
            #expect(Array(read.errorType.utf8) == Array(letter.errorType.utf8))
            #expect(read.metadata.keys.map { Array($0.utf8) } == letter.metadata.keys.map { Array($0.utf8) })
        }
    }

    /// An append reports how many letters it inserted, none skipped and none evicted.
    static func appendReturnsCounts(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(10)
        let result = try await store.append(letters, onConflict: .fail, limits: .unbounded)
        #expect(result == DeadLetterAppendResult(inserted: 10, skipped: 0, evicted: []))
        let empty = try await store.append([], onConflict: .fail, limits: .unbounded)
        #expect(empty == DeadLetterAppendResult(inserted: 0))
        #expect(try await everything(store) == letters)
    }

    /// Under `.fail`, a batch holding one already-stored id throws `duplicateID` and stores none of the batch.
    static func duplicateUnderFailStoresNothing(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(3)
        try await store.append([letters[0]])
        var changed = letters[0]
        changed.errorMessage = "a different message"
        let error = await #expect(throws: DeadLetterError.self) {
            try await store.append([letters[1], changed, letters[2]], onConflict: .fail, limits: .unbounded)
        }
        #expect(error?.code == .duplicateID)
        #expect(try await everything(store) == [letters[0]])
        #expect(try await store.usage() == usageOf([letters[0]]))
    }

    /// Decision: two letters with the same id in one batch are a duplicate too: `.fail` throws `duplicateID`
    /// and stores nothing; `.skip` stores the first and counts the second as skipped.
    static func duplicateWithinBatch(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(2)
        var twin = letters[0]
        twin.errorMessage = "the second copy"
        let error = await #expect(throws: DeadLetterError.self) {
            try await store.append([letters[0], letters[1], twin], onConflict: .fail, limits: .unbounded)
        }
        #expect(error?.code == .duplicateID)
        #expect(try await store.count(DeadLetterFilter()) == 0)
        let result = try await store.append([letters[0], letters[1], twin], onConflict: .skip, limits: .unbounded)
        #expect(result.inserted == 2)
        #expect(result.skipped == 1)
        #expect(try await store.letter(id: letters[0].id) == letters[0])
    }

    /// Under `.skip`, stored ids keep their stored letter, the rest are inserted, and both are counted.
    static func duplicateUnderSkipIsCounted(_ makeStore: MakeStore) async throws {
        let store = try await makeStore()
        let letters = make(4)
        try await store.append([letters[0], letters[2]])
        var changed = letters[0]
        changed.errorMessage = "a different message"
        let result = try await store.append(
            letters.map { $0.id == changed.id ? changed : $0 },
            onConflict: .skip,
            limits: .unbounded
        )
        #expect(result == DeadLetterAppendResult(inserted: 2, skipped: 2, evicted: []))
        #expect(try await everything(store) == letters)
        let again = try await store.append(letters, onConflict: .skip, limits: .unbounded)
        #expect(again == DeadLetterAppendResult(inserted: 0, skipped: 4, evicted: []))
        #expect(try await store.count(DeadLetterFilter()) == 4)
    }
}
