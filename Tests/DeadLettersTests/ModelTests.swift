import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

@Suite("The model: reasons, fingerprints, ids, errors")
struct ModelTests {
    @Test(
        "normalization replaces what changes from item to item",
        arguments: [
            ("order 123 not found", "order <n> not found"),
            ("took 12.5s", "took <n>s"),
            ("user 0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b missing", "user <uuid> missing"),
            ("object deadbeef42 gone", "object <hex> gone"),
            ("pointer 0x7ffe1234", "pointer <hex>"),
            ("key 'total' invalid", "key <q> invalid"),
            ("field \"sku\" and `x`", "field <q> and <q>"),
            ("decoder failed", "decoder failed"),
            ("abcdefgh is a word", "abcdefgh is a word"),
            ("unterminated 'quote", "unterminated 'quote"),
        ]
    )
    func normalization(_ input: String, _ expected: String) {
        #expect(Fingerprint.normalize(input) == expected)
    }

    @Test("the same failure on different items has one fingerprint; another failure has another")
    func fingerprints() {
        let a = Fingerprint.compute(errorType: "NotFound", message: "order 123 not found")
        let b = Fingerprint.compute(errorType: "NotFound", message: "order 98765 not found")
        let c = Fingerprint.compute(errorType: "Timeout", message: "order 123 not found")
        let d = Fingerprint.compute(errorType: "NotFound", message: "customer 123 not found")
        #expect(a == b)
        #expect(a != c)
        #expect(a != d)
        #expect(a.count == 16)
        #expect(a.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        // Stable across processes and platforms: FNV-1a 64 of "NotFound\0order <n> not found".
        #expect(a == Self.fnv1a("NotFound\u{0}order <n> not found"))
    }

    /// The normalization rules written plainly, a character class at a time, to check the table-driven one.
    static func plainNormalize(_ message: String) -> String {
        let b = Array(message.utf8)
        func isHex(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) }
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        func isWord(_ c: UInt8) -> Bool { isDigit(c) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 }
        func isUUID(at start: Int) -> Bool {
            (0..<36).allSatisfy { k in [8, 13, 18, 23].contains(k) ? b[start + k] == 45 : isHex(b[start + k]) }
        }
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == 39 || c == 34 || c == 96, let close = b[(i + 1)...].firstIndex(where: { $0 == c || $0 == 10 }),
                b[close] == c
            {
                out += Array("<q>".utf8)
                i = close + 1
                continue
            }
            if i == 0 || !isWord(b[i - 1]), isHex(c) {
                if i + 36 <= b.count, isUUID(at: i), i + 36 == b.count || !isWord(b[i + 36]) {
                    out += Array("<uuid>".utf8)
                    i += 36
                    continue
                }
                if c == 48, i + 2 < b.count, b[i + 1] == 120 || b[i + 1] == 88, isHex(b[i + 2]) {
                    let end = b[(i + 2)...].firstIndex { !isHex($0) } ?? b.count
                    if end == b.count || !isWord(b[end]) {
                        out += Array("<hex>".utf8)
                        i = end
                        continue
                    }
                }
                let end = b[i...].firstIndex { !isHex($0) } ?? b.count
                if end - i >= 8, b[i..<end].contains(where: isDigit), end == b.count || !isWord(b[end]) {
                    out += Array("<hex>".utf8)
                    i = end
                    continue
                }
            }
            if isDigit(c) {
                var end = b[i...].firstIndex { !isDigit($0) } ?? b.count
                if end + 1 < b.count, b[end] == 46, isDigit(b[end + 1]) {
                    end = b[(end + 1)...].firstIndex { !isDigit($0) } ?? b.count
                }
                out += Array("<n>".utf8)
                i = end
                continue
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test("normalization agrees with the rules written plainly, on generated messages")
    func normalizationMatchesPlainRules() {
        let pieces = [
            "0", "7", "42", "3.14", "1.", "a", "f", "F", "deadbeef", "DEADBEEF12", "beef", "g", "zz", "_", "-", " ",
            "'", "\"", "`", "\n", ".", "x", "0x", "0x1F", "0xg", "é", "🚀", "order", "failed",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
        ]
        var random = SeededRandom(seed: 20_261_207)
        for _ in 0..<3000 {
            let message = (0..<Int(random.next() % 12)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }
                .joined()
            #expect(Fingerprint.normalize(message) == Self.plainNormalize(message), "\(message.debugDescription)")
            let hash = Self.fnv1a("Type\u{0}" + Self.plainNormalize(message))
            #expect(Fingerprint.compute(errorType: "Type", message: message) == hash)
        }
    }

    static func fnv1a(_ string: String) -> String {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in string.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 1_099_511_628_211
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    @Test("ids are UUIDv7, unique and ordered by time, also within one millisecond")
    func ids() {
        let generator = DeadLetterIDGenerator(random: SeededRandom(seed: 3))
        let start = Date(timeIntervalSince1970: 1_767_225_600)
        var ids: [String] = []
        for index in 0..<5000 {
            ids.append(generator.next(at: start.addingTimeInterval(Double(index / 1000) / 1000)))
        }
        #expect(Set(ids).count == 5000)
        #expect(ids == ids.sorted())
        for id in ids.prefix(10) {
            #expect(id.count == 36)
            let characters = Array(id)
            #expect(characters[14] == "7")
            #expect("89ab".contains(characters[19]))
        }
        // The first 48 bits are the millisecond timestamp.
        let hex = ids[0].replacingOccurrences(of: "-", with: "").prefix(12)
        #expect(UInt64(hex, radix: 16) == 1_767_225_600_000)
        // The same seed gives the same ids.
        let again = DeadLetterIDGenerator(random: SeededRandom(seed: 3))
        #expect(again.next(at: start) == ids[0])
        // Every digit is where it belongs: the first id is the text of the bits drawn from the same seed.
        var random = SeededRandom(seed: 3)
        let counter = UInt64(UInt16.random(in: 0..<0x800, using: &random))
        let tail = UInt64.random(in: 0...UInt64.max, using: &random)
        let high = 1_767_225_600_000 << 16 | 0x7000 | counter
        let low = tail & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        let digits = [high, low].map {
            String(repeating: "0", count: 16 - String($0, radix: 16).count) + String($0, radix: 16)
        }
        .joined()
        let expected = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(digits.utf8.dropFirst(range.lowerBound).prefix(range.count))!
        }.joined(separator: "-")
        #expect(ids[0] == expected)
    }

    @Test("a clock that goes back still gives ordered ids")
    func clockGoesBack() {
        let generator = DeadLetterIDGenerator(random: SeededRandom(seed: 4))
        let later = generator.next(at: Date(timeIntervalSince1970: 1_767_225_600))
        let earlier = generator.next(at: Date(timeIntervalSince1970: 1_767_225_000))
        #expect(earlier > later)
    }

    @Test("reasons: built-ins keep their retryability, unknown names are permanent, custom ones say theirs")
    func reasons() {
        #expect(FailureReason(rawValue: "timeout").isRetryable)
        #expect(!FailureReason(rawValue: "validation").isRetryable)
        #expect(!FailureReason(rawValue: "somethingNew").isRetryable)
        let custom = FailureReason("paymentDeclined", retryable: true)
        #expect(custom.isRetryable)
        #expect(custom == FailureReason(rawValue: "paymentDeclined"))
        #expect(FailureReason.allKnown.count == 13)
        #expect(
            FailureReason.allKnown.filter(\.isRetryable).map(\.rawValue).sorted() == [
                "cancelled", "conflict", "dependency", "processing", "rateLimited", "resourceExhausted", "timeout",
                "unknown",
            ]
        )
    }

    @Test("the classifier: an error's own reason, then rules, then the built-in mapping")
    func classifier() {
        struct Own: Error, DeadLetterReasonProviding { var failureReason: FailureReason { .rateLimited } }
        struct Mapped: Error {}
        struct Other: Error {}
        var classifier = FailureClassifier()
        classifier.map(Mapped.self, to: .notFound)
        #expect(classifier.classify(Own()) == .rateLimited)
        #expect(classifier.classify(Mapped()) == .notFound)
        #expect(classifier.classify(CancellationError()) == .cancelled)
        #expect(
            classifier.classify(DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "x"))) == .decoding
        )
        #expect(classifier.classify(Other()) == .unknown)
        #expect(FailureClassifier(fallback: .processing).classify(Other()) == .processing)
    }

    @Test("captured errors: decoding messages name the path; huge messages are cut")
    func capturedErrors() throws {
        struct Order: Decodable { var lines: [Line] }
        struct Line: Decodable { var sku: String }
        do {
            _ = try JSONDecoder().decode(Order.self, from: Data(#"{"lines":[{"sku":1}]}"#.utf8))
            Issue.record("expected a decoding error")
        } catch {
            let captured = CapturedError(error)
            #expect(captured.type == "DecodingError")
            #expect(captured.message == "typeMismatch: expected String at lines.[0].sku")
        }
        let huge = CapturedError(type: "E", message: "")
        #expect(huge.message.isEmpty)
        struct Long: Error, CustomStringConvertible { var description: String { String(repeating: "é", count: 5000) } }
        let cut = CapturedError(Long())
        #expect(cut.message.utf8.count <= CapturedError.maxMessageLength + 3)
        #expect(cut.message.hasSuffix("…"))
    }

    class BaseFailure: Error, CustomStringConvertible, @unchecked Sendable {
        var description: String { "base failure" }
    }
    final class SubFailure: BaseFailure, @unchecked Sendable {
        let order: Int
        init(order: Int) { self.order = order }
        override var description: String { "sub failure for order \(self.order)" }
    }
    struct Wide: Error, CustomStringConvertible {
        var a = "first", b = 2, c = [3, 4], d = "fourth"
        var description: String { "\(self.a) \(self.b) \(self.c) \(self.d)" }
    }

    @Test("captured errors: each value's own description, for classes thrown as their superclass too")
    func capturedDescriptions() {
        for order in 0..<3 {
            let thrown: BaseFailure = SubFailure(order: order)
            let captured = CapturedError(thrown)
            #expect(captured.type == "SubFailure")
            #expect(captured.message == "sub failure for order \(order)")
        }
        #expect(CapturedError(BaseFailure()).message == "base failure")
        #expect(CapturedError(Wide()).message == "first 2 [3, 4] fourth")
        let boxed: any Error = Wide(a: "x", b: 9, c: [], d: "y")
        #expect(CapturedError(boxed).message == "x 9 [] y")
    }

    /// `String(describing:)` prints what `write(to:)` writes for a streamable type, not its `description`.
    struct Streamed: Error, CustomStringConvertible, TextOutputStreamable {
        var description: String { "the description" }
        func write<Target: TextOutputStream>(to target: inout Target) { target.write("the stream") }
    }
    enum Plain: Error { case refused(code: Int) }

    @Test("captured errors: the message is what String(describing:) prints, streamable, described or plain")
    func capturedMessagesMatchDescribing() {
        let errors: [any Error] = [Streamed(), Wide(), Plain.refused(code: 7), SubFailure(order: 2)]
        // Twice over: the first capture of a type finds its facts, the second reads them.
        for error in errors + errors {
            #expect(CapturedError(error).message == String(describing: error))
        }
        #expect(CapturedError(Streamed()).message == "the stream")
        #expect(CapturedError(Plain.refused(code: 7)).message == "refused(code: 7)")
    }

    struct Generic<Value>: Error {}
    enum Namespace {
        enum Nested: Error { case failed }
    }

    @Test("captured errors: the type's name is what String(describing:) prints for it, whatever its kind")
    func capturedTypeNames() {
        struct Local: Error {}
        let errors: [any Error] = [
            Generic<Int>(), Generic<[String: Namespace.Nested]>(), Generic<(Int, String?)>(), Namespace.Nested.failed,
            Local(), SubFailure(order: 1), BaseFailure(), CancellationError(), CocoaError(.fileNoSuchFile),
            DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "bad")),
            NSError(domain: "d", code: 1),
        ]
        // Twice over, each twice in a row: a type met again is found by the last-type check, another by the table.
        for error in errors + errors {
            #expect(CapturedError(error).type == String(describing: type(of: error)))
            #expect(CapturedError(error).type == String(describing: type(of: error)))
        }
        #expect(CapturedError(Generic<Int>()).type == "Generic<Int>")
    }

    @Test("errors say what and where, never more")
    func errorDescriptions() {
        let error = DeadLetterError(
            code: .invalidFormat,
            message: "expected a string",
            file: "a.jsonl",
            line: 3,
            field: "source"
        )
        #expect(error.description == "a.jsonl:3: field 'source': expected a string")
        #expect(
            DeadLetterError(code: .notFound, message: "no such letter", id: "x").description
                == "letter x: no such letter"
        )
    }
}
