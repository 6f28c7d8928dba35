import DeadLetters
import Foundation
import Testing

@Suite struct CodecTests {
    static let known = DeadLetter(
        id: "0193a0b4-5c2e-7000-8000-000000000001",
        source: "orders",
        reason: .validation,
        errorType: "DecodingError",
        errorMessage: "keyNotFound: total",
        causes: ["Underlying: \"quoted\"\n"],
        attempts: 3,
        firstFailedAt: Date(millisecondsSince1970: 1_795_428_000_123),
        lastFailedAt: Date(millisecondsSince1970: 1_795_428_007_456),
        expiresAt: Date(millisecondsSince1970: 1_796_032_807_456),
        fingerprint: "9f2c00000000abcd",
        metadata: ["tenant": "acme", "region": "eu"],
        contentType: "application/json",
        payload: Data("{\"total\":1}".utf8)
    )

    static let knownJSON =
        #"{"v":2,"id":"0193a0b4-5c2e-7000-8000-000000000001","source":"orders","reason":"validation","#
        + #""errorType":"DecodingError","errorMessage":"keyNotFound: total","causes":["Underlying: \"quoted\"\n"],"#
        + #""attempts":3,"firstFailedAt":"2026-11-23T10:00:00.123Z","lastFailedAt":"2026-11-23T10:00:07.456Z","#
        + #""nextAttemptAt":null,"expiresAt":"2026-11-30T10:00:07.456Z","status":"dead","#
        + #""fingerprint":"9f2c00000000abcd","replayCount":0,"metadata":{"region":"eu","tenant":"acme"},"#
        + #""contentType":"application/json","payload":"eyJ0b3RhbCI6MX0=","#
        + #""history":[{"event":"failed","at":"2026-11-23T10:00:00.123Z","errorType":"DecodingError","#
        + #""errorMessage":"keyNotFound: total","causes":["Underlying: \"quoted\"\n"],"reason":"validation","#
        + #""fingerprint":"9f2c00000000abcd"}]}"#

    static let escaped = DeadLetter(
        id: "id-2",
        source: "webhooks/\u{1F389}",
        reason: FailureReason("myOwnReason", retryable: true),
        errorType: "Err",
        errorMessage: "tab\there \u{01}\u{1F} \\ / \u{2028} \u{7F} é",
        attempts: 12_345,
        firstFailedAt: Date(millisecondsSince1970: 951_782_400_000),
        lastFailedAt: Date(millisecondsSince1970: 951_782_400_001),
        nextAttemptAt: Date(millisecondsSince1970: 951_782_460_010),
        status: .retrying,
        fingerprint: "f",
        replayCount: 2,
        payload: Data(),
        history: [
            .init(
                event: .replayed,
                at: Date(millisecondsSince1970: 951_782_400_999),
                outcome: .failed,
                errorMessage: "boom"
            ),
            .init(event: .redriven, at: Date(millisecondsSince1970: 951_782_401_000), outcome: .succeeded),
        ]
    )

    static let escapedJSON =
        #"{"v":2,"id":"id-2","source":"webhooks/🎉","reason":"myOwnReason","errorType":"Err","#
        + #""errorMessage":"tab\there \u0001\u001f \\ / "# + "\u{2028} \u{7F} é" + #"","causes":[],"attempts":12345,"#
        + #""firstFailedAt":"2000-02-29T00:00:00.000Z","lastFailedAt":"2000-02-29T00:00:00.001Z","#
        + #""nextAttemptAt":"2000-02-29T00:01:00.010Z","expiresAt":null,"status":"retrying","fingerprint":"f","#
        + #""replayCount":2,"metadata":{},"contentType":null,"payload":"","#
        + #""history":[{"event":"failed","at":"2000-02-29T00:00:00.000Z","errorType":"Err","#
        + #""errorMessage":"tab\there \u0001\u001f \\ / "# + "\u{2028} \u{7F} é"
        + #"","reason":"myOwnReason","fingerprint":"f"},"#
        + #"{"event":"replayed","at":"2000-02-29T00:00:00.999Z","outcome":"failed","errorMessage":"boom"},"#
        + #"{"event":"redriven","at":"2000-02-29T00:00:01.000Z","outcome":"succeeded"}]}"#

    @Test func writesTheExactStoredFormat() throws {
        #expect(DeadLetterJSON.string(Self.known) == Self.knownJSON)
        #expect(DeadLetterJSON.string(Self.escaped) == Self.escapedJSON)
        var buffer = Array("prefix ".utf8)
        DeadLetterJSON.encode(Self.known, into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "prefix " + Self.knownJSON)
    }

    @Test func readsTheExactStoredFormat() throws {
        #expect(try DeadLetterJSON.decode(Self.knownJSON) == Self.known)
        #expect(try DeadLetterJSON.decode(Array(Self.escapedJSON.utf8)) == Self.escaped)
        #expect(try DeadLetterJSON.decode(Data(Self.escapedJSON.utf8)) == Self.escaped)
        // The reason keeps its identity by name; a name this process does not know is not retryable.
        #expect(try DeadLetterJSON.decode(Self.escapedJSON).reason.rawValue == "myOwnReason")
        #expect(try DeadLetterJSON.decode(Self.knownJSON).reason.isRetryable == false)
    }

    @Test func roundTripsVariedLetters() throws {
        var random = CodecRandom(seed: 42)
        for index in 0..<500 {
            let letter = Self.randomLetter(index: index, using: &random)
            let bytes = DeadLetterJSON.encode(letter)
            let back = try DeadLetterJSON.decode(bytes)
            #expect(back == letter, "letter \(index)")
            // Canonical: the same letter always gives the same bytes.
            #expect(DeadLetterJSON.encode(back) == bytes)
            #expect(!bytes.contains(UInt8(ascii: "\n")))
        }
    }

    @Test func codableAgreesWithTheFastCodec() throws {
        var random = CodecRandom(seed: 7)
        let encoder = JSONEncoder()
        let decoder = JSONDecoder()
        for index in 0..<200 {
            let letter = Self.randomLetter(index: index, using: &random)
            let fast = DeadLetterJSON.encode(letter)
            let viaCodable = try encoder.encode(letter)
            #expect(try decoder.decode(DeadLetter.self, from: Data(fast)) == letter)
            #expect(try DeadLetterJSON.decode(viaCodable) == letter)
            #expect(try decoder.decode(DeadLetter.self, from: viaCodable) == letter)
            // The same keys, whatever the order JSONEncoder picks.
            let a = try JSONSerialization.jsonObject(with: Data(fast)) as? [String: Any]
            let b = try JSONSerialization.jsonObject(with: viaCodable) as? [String: Any]
            #expect(a.map { Set($0.keys) } == b.map { Set($0.keys) }, "letter \(index)")
        }
    }

    @Test func readsOnlyTheRequiredFieldsWithDefaults() throws {
        let json =
            #"{"v":1,"id":"a","source":"s","reason":"timeout","errorMessage":"took 30 s","attempts":2,"#
            + #""firstFailedAt":"2026-11-23T10:00:00Z","lastFailedAt":"2026-11-23T10:00:01.5Z","payload":"AAEC"}"#
        for letter in [
            try DeadLetterJSON.decode(json), try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8)),
        ] {
            #expect(letter.errorType == DeadLetter.defaultErrorType)
            #expect(letter.errorType == "Error")
            #expect(letter.causes.isEmpty)
            #expect(letter.status == .dead)
            #expect(letter.nextAttemptAt == nil && letter.expiresAt == nil && letter.contentType == nil)
            #expect(letter.replayCount == 0)
            #expect(letter.metadata.isEmpty && letter.history == [DeadLetter.HistoryEntry(firstFailureOf: letter)])
            #expect(letter.fingerprint == Fingerprint.compute(errorType: "Error", message: "took 30 s"))
            #expect(letter.payload == Data([0, 1, 2]))
            #expect(letter.reason == .timeout && letter.reason.isRetryable)
            #expect(letter.lastFailedAt.millisecondsSince1970 == 1_795_428_001_500)
        }
    }

    @Test func nullMeansTheDefaultForOptionalFields() throws {
        let json =
            #"{"v":1,"id":"a","source":"s","reason":"r","errorMessage":"m","attempts":1,"#
            + #""firstFailedAt":"2026-11-23T10:00:00.000Z","lastFailedAt":"2026-11-23T10:00:00.000Z","payload":"","#
            + #""errorType":null,"causes":null,"nextAttemptAt":null,"expiresAt":null,"status":null,"#
            + #""fingerprint":null,"replayCount":null,"metadata":null,"contentType":null,"history":null}"#
        let fast = try DeadLetterJSON.decode(json)
        let codable = try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8))
        #expect(fast == codable)
        #expect(fast.status == .dead && fast.errorType == "Error" && fast.storedHistory.isEmpty)
        #expect(
            fast.history == [DeadLetter.HistoryEntry(firstFailureOf: fast)],
            "a version-1 letter gets a first failed entry"
        )
    }

    @Test func ignoresUnknownFields() throws {
        var json = Self.knownJSON
        json.removeLast()
        json += #","future":{"nested":[1,-2.5e+3,true,false,null,"x\"y",{"a":[]}]},"v2field":0}"#
        #expect(try DeadLetterJSON.decode(json) == Self.known)
        #expect(try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8)) == Self.known)
        // Spaces between tokens and around the object are fine.
        let spaced = "  " + Self.knownJSON.replacingOccurrences(of: #"",""#, with: "\" ,\t\"") + " \r"
        #expect(try DeadLetterJSON.decode(spaced) == Self.known)
    }

    @Test func readsEscapesOtherEncodersWrite() throws {
        var json = Self.knownJSON
        json = json.replacingOccurrences(of: #""source":"orders""#, with: #""source":"\u00e9\ud83c\udf89\/\b\f\r""#)
        json = json.replacingOccurrences(of: #""payload":"eyJ0b3RhbCI6MX0=""#, with: #""payload":"\/\/8=""#)
        let letter = try DeadLetterJSON.decode(json)
        #expect(letter.source == "é🎉/\u{8}\u{C}\r")
        #expect(letter.payload == Data([0xFF, 0xFF]))
    }

    @Test func base64OfEveryLength() throws {
        var random = CodecRandom(seed: 3)
        for count in 0..<70 {
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            var letter = Self.known
            letter.payload = Data(bytes)
            let json = DeadLetterJSON.string(letter)
            #expect(json.contains(#""payload":"\#(Data(bytes).base64EncodedString())""#))
            #expect(try DeadLetterJSON.decode(json).payload == Data(bytes))
        }
    }

    // MARK: Fixtures

    static func randomLetter(index: Int, using random: inout CodecRandom) -> DeadLetter {
        let alphabet: [String] = [
            "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1B}", "\u{7F}", "é", "ß", "中",
            "🎉", "\u{2028}", "\u{2029}", "\u{FEFF}", "{", "}", "[", "]", ":", ",", "'", "%",
        ]
        func text(_ maxLength: Int) -> String {
            let length = Int(random.next() % UInt64(maxLength + 1))
            return String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }.joined())
        }
        func date() -> Date {
            // 1970 to about 2100, at millisecond precision.
            Date(millisecondsSince1970: Int64(random.next() % 4_102_444_800_000))
        }
        func maybe<T>(_ make: () -> T) -> T? { random.next() % 3 == 0 ? nil : make() }
        let reasons = FailureReason.allKnown.map(\.rawValue) + ["custom-\(index % 5)"]
        var metadata: [String: String] = [:]
        for _ in 0..<Int(random.next() % 4) { metadata[text(8)] = text(12) }
        let history: [DeadLetter.HistoryEntry] = (0..<Int(random.next() % 3)).map { _ in
            DeadLetter.HistoryEntry(
                event: .init(rawValue: text(6)),
                at: date(),
                outcome: maybe { .init(rawValue: text(4)) },
                errorType: maybe { text(5) },
                errorMessage: maybe { text(10) },
                causes: maybe { [text(4)] } ?? [],
                reason: maybe { FailureReason(rawValue: text(5)) },
                fingerprint: maybe { text(16) },
                actor: maybe { text(7) },
                operation: maybe { text(9) },
                message: maybe { text(12) }
            )
        }
        return DeadLetter(
            // Any character but a control character, which ids may not hold.
            id: "id-\(index)-"
                + text(3).filter { !$0.unicodeScalars.contains { $0.properties.generalCategory == .control } },
            source: "source-" + text(10),
            reason: FailureReason(rawValue: reasons[Int(random.next() % UInt64(reasons.count))]),
            errorType: text(10),
            errorMessage: text(40),
            causes: (0..<Int(random.next() % 3)).map { _ in text(20) },
            attempts: Int(random.next() % 1000),
            firstFailedAt: date(),
            lastFailedAt: date(),
            nextAttemptAt: maybe(date),
            expiresAt: maybe(date),
            status: DeadLetterStatus.allCases[Int(random.next() % 3)],
            fingerprint: maybe { text(16) },
            replayCount: Int(random.next() % 10),
            metadata: metadata,
            contentType: maybe { text(10) },
            payload: Data((0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }),
            history: history
        )
    }
}

/// A tiny deterministic random source for the codec tests.
struct CodecRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { self.state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
