import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

/// What the core refuses at its edges: counters beyond ``DeadLetter/maximumCount``, ids with control
/// characters, lines that are not UTF-8; and sums that stay safe on what a store already holds.
@Suite("Input hardening")
struct InputHardeningTests {
    static func line(_ replacing: [String: String]) -> String {
        CodecTests.line(replacing: replacing)
    }

    static func decodeError(_ bytes: [UInt8], line: Int? = 7) -> DeadLetterError? {
        do {
            _ = try DeadLetterJSON.decode(bytes, line: line)
            return nil
        } catch {
            return error as? DeadLetterError
        }
    }

    // MARK: Counters (case 1)

    @Test("attempts and replayCount above 1,000,000 are refused by the decoder and Codable, naming line and field")
    func countersAreBounded() throws {
        #expect(DeadLetter.maximumCount == 1_000_000)
        for field in ["attempts", "replayCount"] {
            let atBound = Self.line([field: "1000000"])
            #expect(try DeadLetterJSON.decode(atBound).id == "a")
            for value in ["1000001", "9223372036854775807"] {
                let json = Self.line([field: value])
                let error = try #require(Self.decodeError(Array(json.utf8)))
                #expect(error.code == .invalidFormat)
                #expect(error.field == field)
                #expect(error.line == 7)
                #expect(error.description == "line 7: field '\(field)': must be at most 1000000, not \(value)")
                #expect(throws: DeadLetterError.self) {
                    try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8))
                }
            }
        }
    }

    @Test("A JSON Lines file with a letter of Int.max attempts is refused at its line")
    func readerNamesTheLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dlq-bounds-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = Self.line([:]) + "\n" + Self.line(["id": #""b""#, "attempts": "9223372036854775807"]) + "\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: DeadLetterError.self) { try JSONLinesReader.validate(path: path) }
        #expect(error.line == 2)
        #expect(error.file == path)
        #expect(error.field == "attempts")
    }

    @Test("The queue refuses attempts and replay counts above the bound, in add(payload:…) and add(_:)")
    func queueRefusesCounters() async throws {
        let harness = try QueueHarness()
        let refused = try await #require(throws: DeadLetterError.self) {
            try await harness.queue.add(
                payload: Data("x".utf8),
                source: "orders",
                reason: .validation,
                errorType: "E",
                errorMessage: "m",
                attempts: Int.max
            )
        }
        #expect(refused.code == .invalidFormat)
        #expect(refused.field == "attempts")
        let ok = try await harness.queue.add(
            payload: Data("x".utf8),
            source: "orders",
            reason: .validation,
            errorType: "E",
            errorMessage: "m",
            attempts: DeadLetter.maximumCount
        )
        #expect(try await harness.store.letter(id: ok)?.attempts == DeadLetter.maximumCount)

        let good = DeadLetterFixtures.letter()
        let tooManyReplays = DeadLetterFixtures.letter(replayCount: DeadLetter.maximumCount + 1)
        let error = try await #require(throws: DeadLetterError.self) {
            try await harness.queue.add([good, tooManyReplays])
        }
        #expect(error.field == "replayCount")
        #expect(error.id == tooManyReplays.id)
        #expect(try await harness.store.letter(id: good.id) == nil, "nothing of a refused batch is stored")
        let tooManyAttempts = DeadLetterFixtures.letter(attempts: Int.max)
        await #expect(throws: DeadLetterError.self) { try await harness.queue.add([tooManyAttempts]) }
    }

    @Test("The memory store sums attempts that a store already holds without overflowing")
    func memorySummaryDoesNotOverflow() async throws {
        let store = MemoryDeadLetterStore()
        try await store.append([
            DeadLetterFixtures.letter(attempts: Int.max),
            DeadLetterFixtures.letter(attempts: Int.max),
            DeadLetterFixtures.letter(attempts: Int.max),
        ])
        let summary = try await store.summary(DeadLetterFilter(), now: DeadLetterFixtures.epoch)
        #expect(summary.total == 3)
        #expect(summary.averageAttempts == Double(Int.max))
        let filtered = try await store.summary(DeadLetterFilter(sources: ["orders"]), now: DeadLetterFixtures.epoch)
        #expect(filtered.averageAttempts == Double(Int.max))
    }

    // MARK: Ids (case 4)

    static let controlIDs = [
        "\u{0}", "a\u{0}b", "a\u{0}c", "tab\there", "line\nbreak", "\u{1B}[31m", "del\u{7F}", "c1\u{85}",
    ]

    @Test("Ids holding a control character are refused by the decoder, Codable and add(_:)", arguments: controlIDs)
    func controlCharactersInIDsAreRefused(id: String) async throws {
        let json = Self.line(["id": DeadLetterJSON.quoted(id, escapingHTML: false)])
        let error = try #require(Self.decodeError(Array(json.utf8), line: 3))
        #expect(error.field == "id")
        #expect(error.line == 3)
        #expect(error.message.hasPrefix("must not contain a control character (U+"), "\(error.message)")
        #expect(throws: DeadLetterError.self) { try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8)) }

        let harness = try QueueHarness()
        let refused = try await #require(throws: DeadLetterError.self) {
            try await harness.queue.add([DeadLetterFixtures.letter(id: id)])
        }
        #expect(refused.field == "id")
        #expect(refused.id == nil, "an id with a control character is not repeated")
        #expect(try await harness.store.count(DeadLetterFilter()) == 0)
        #expect(throws: DeadLetterError.self) { try DeadLetter.validateID(id) }
    }

    @Test("Ids that need percent-encoding but hold no control character are accepted")
    func printableIDsAreAccepted() async throws {
        let harness = try QueueHarness()
        let ids = ["id with space", "é", "🎉", "a/b", "what?", "\"quoted\"", "100%", "a+b", "#frag"]
        for id in ids {
            #expect(DeadLetter.idProblem(id) == nil, "\(id)")
            #expect(
                try DeadLetterJSON.decode(Self.line(["id": DeadLetterJSON.quoted(id, escapingHTML: false)])).id == id
            )
        }
        try await harness.queue.add(ids.map { DeadLetterFixtures.letter(id: $0) })
        #expect(try await harness.store.count(DeadLetterFilter()) == ids.count)
        #expect(DeadLetter.idProblem("") == "must not be empty")
    }

    // MARK: Invalid UTF-8 (case 8)

    @Test("A line that is not valid UTF-8 in a field name is refused, not read without the field")
    func invalidUTF8InFieldNames() throws {
        let expiring = Self.line(["expiresAt": #""2026-12-01T00:00:00.000Z""#, "status": #""parked""#])
        #expect(try DeadLetterJSON.decode(expiring).status == .parked)
        for (name, damaged) in [
            ("expiresAt", [0x65, 0x78, 0x70, 0x69, 0xC4, 0x65, 0x73, 0x41, 0x74] as [UInt8]),
            ("status", [0x73, 0x74, 0x61, 0x74, 0xBC, 0x73]),
        ] {
            var bytes = Array(expiring.utf8)
            let key = Array("\"\(name)\"".utf8)
            let start = try #require(Self.find(key, in: bytes))
            bytes.replaceSubrange((start + 1)..<(start + key.count - 1), with: damaged)
            let error = try #require(Self.decodeError(bytes, line: 5), "\(name)")
            #expect(error.code == .invalidFormat)
            #expect(error.line == 5)
            #expect(error.message == "not valid UTF-8 at column \(start + 1 + damaged.firstIndex { $0 >= 0x80 }! + 1)")
        }
    }

    @Test("Bytes that are not UTF-8 anywhere in a line are refused: overlong, surrogates, truncated, above U+10FFFF")
    func invalidUTF8Anywhere() throws {
        let bad: [[UInt8]] = [
            [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF8], [0xC3],
            [0xE2, 0x82], [0x80],
        ]
        let template = Array((String(Self.line(["metadata": #"{"k":"v"}"#]).dropLast()) + #","unknown":"u"}"#).utf8)
        for sequence in bad {
            for target in [Array(#""k""#.utf8), Array(#""u""#.utf8)] {
                var bytes = template
                let start = try #require(Self.find(target, in: bytes))
                bytes.insert(contentsOf: sequence, at: start + 1)
                #expect(Self.decodeError(bytes)?.message == "not valid UTF-8 at column \(start + 2)", "\(sequence)")
            }
        }
        // Valid multi-byte characters still read.
        let good = Self.line(["source": #""é中🎉\u00e9""#])
        #expect(try DeadLetterJSON.decode(good).source == "é中🎉é")
    }

    @Test("The reader names the line that is not UTF-8")
    func readerNamesTheInvalidUTF8Line() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dlq-utf8-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var bytes = Array((Self.line([:]) + "\n").utf8)
        bytes += Array(Self.line(["id": #""b""#]).utf8).map { $0 == UInt8(ascii: "b") ? 0xFF : $0 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: DeadLetterError.self) { try JSONLinesReader.validate(path: path) }
        #expect(error.line == 2)
        #expect(error.message.hasPrefix("not valid UTF-8 at column"))
    }

    // MARK: Found by fuzzing

    @Test("A time whose offset takes it past 9999-12-31 or before 0000-01-01 in UTC is refused, not changed on export")
    func timestampsTheFormatCannotWrite() throws {
        for text in ["9999-12-31T23:59:59-23:59", "9999-12-31T20:00:00-04:00", "0000-01-01T00:00:00+00:01"] {
            #expect(Timestamp.parse(text) == nil, "\(text)")
            let error = try #require(
                Self.decodeError(Array(Self.line(["firstFailedAt": "\"\(text)\""]).utf8)),
                "\(text)"
            )
            #expect(error.field == "firstFailedAt")
        }
        // The edges themselves read and write back the same.
        for text in ["9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59+00:00", "0000-01-01T00:00:00.000Z"] {
            let date = try #require(Timestamp.parse(text), "\(text)")
            #expect(Timestamp.parse(Timestamp.format(date)) == date, "\(text)")
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }
}
