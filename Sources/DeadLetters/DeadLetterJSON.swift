#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The fast, canonical JSON codec of the stored format, version 2: what export, import and the archive use.
///
/// ``encode(_:into:)`` writes one letter as one compact JSON object, byte for byte the same for the same
/// letter: the keys in the format's order (`v`, `id`, `source`, `reason`, `errorType`, `errorMessage`,
/// `causes`, `attempts`, `firstFailedAt`, `lastFailedAt`, `nextAttemptAt`, `expiresAt`, `status`,
/// `fingerprint`, `replayCount`, `metadata`, `contentType`, `payload`, `history`, then `historyOmitted` and
/// `abandonedClaims` when not 0), no
/// spaces, `null` for an absent `nextAttemptAt`, `expiresAt` or `contentType`, metadata keys sorted, the
/// payload in standard base64, and strings escaped as JSON requires (quotes, backslashes and control
/// characters; everything else, `/` and U+2028 included, is written as its UTF-8 bytes).
///
/// ``decode(_:line:)`` reads one object with a strict parser and the rules of the `Codable` conformance
/// (required fields, defaults, unknown keys ignored); what the `Codable` conformance reads, this reads to the
/// same letter, and the other way around. Neither uses Foundation's `JSONEncoder` or `JSONDecoder`.
public enum DeadLetterJSON {
    /// Appends the canonical JSON of `letter` to `buffer`, without a line break.
    public static func encode(_ letter: DeadLetter, into buffer: inout [UInt8]) {
        var w = Writer(buffer: buffer)
        buffer = []
        w.letter(letter)
        buffer = w.buffer
    }

    /// The canonical JSON of `letter`, without a line break.
    public static func encode(_ letter: DeadLetter) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(400 + letter.payload.count * 4 / 3)
        encode(letter, into: &buffer)
        return buffer
    }

    /// The canonical JSON of `letter` as a string, without a line break.
    public static func string(_ letter: DeadLetter) -> String {
        String(decoding: encode(letter), as: UTF8.self)
    }

    /// Reads one letter from the UTF-8 bytes of one JSON object (surrounding spaces and a final `\r` are
    /// allowed, nothing else).
    /// - Parameters:
    ///   - bytes: the object's bytes, a line of a JSON Lines file without its line break.
    ///   - line: the line number to put in errors, if any.
    /// - Throws: ``DeadLetterError`` with code `invalidFormat` naming the line (when given), the field and the
    ///   problem: bytes that are not valid UTF-8 (anywhere, field names included) or not valid JSON at a
    ///   column, a missing required field, a value of the wrong type, a timestamp that is not ISO 8601, invalid
    ///   base64, a format version newer than ``DeadLetter/formatVersion``, an empty id or one holding a control
    ///   character, or `attempts` or `replayCount` negative or above ``DeadLetter/maximumCount``.
    public static func decode(_ bytes: UnsafeRawBufferPointer, line: Int? = nil) throws -> DeadLetter {
        do {
            let bytes = bytes.assumingMemoryBound(to: UInt8.self)
            // Checked whole first: a field name the parser does not know is skipped unread, and must not hide
            // a known one whose name was damaged ("expi\xC4esAt").
            if let offset = invalidUTF8Offset(bytes) {
                throw DeadLetterError(code: .invalidFormat, message: "not valid UTF-8 at column \(offset + 1)")
            }
            var parser = Parser(bytes)
            return try parser.letter()
        } catch var error as DeadLetterError {
            error.line = line
            throw error
        }
    }

    /// Reads one letter from the UTF-8 bytes of one JSON object; see ``decode(_:line:)-(UnsafeRawBufferPointer,_)``.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, line: Int? = nil) throws -> DeadLetter {
        if let letter = try bytes.withContiguousStorageIfAvailable({
            try decode(UnsafeRawBufferPointer($0), line: line)
        }) {
            return letter
        }
        return try Array(bytes).withUnsafeBytes { try decode($0, line: line) }
    }

    /// Reads one letter from a JSON object in a string; see ``decode(_:line:)-(UnsafeRawBufferPointer,_)``.
    public static func decode(_ string: String, line: Int? = nil) throws -> DeadLetter {
        var string = string
        return try string.withUTF8 { try decode(UnsafeRawBufferPointer($0), line: line) }
    }
}

// MARK: - Encoding

extension DeadLetterJSON {
    struct Writer {
        var buffer: [UInt8]
        /// Also escape `<`, `>`, `&`, U+2028 and U+2029, for JSON that may end up inside HTML.
        var escapesHTML = false

        mutating func raw(_ text: StaticString) {
            text.withUTF8Buffer { self.buffer.append(contentsOf: $0) }
        }

        /// A JSON array of `elements`, each written by `element`, separated by commas.
        mutating func array<Elements: Sequence>(
            _ elements: Elements,
            _ element: (inout Writer, Elements.Element) -> Void
        ) {
            raw("[")
            var first = true
            for item in elements {
                if !first { raw(",") }
                first = false
                element(&self, item)
            }
            raw("]")
        }

        mutating func letter(_ l: DeadLetter) {
            raw(#"{"v":"#)
            int(DeadLetter.formatVersion)
            raw(#","id":"#)
            string(l.id)
            raw(#","source":"#)
            string(l.source)
            raw(#","reason":"#)
            string(l.reason.rawValue)
            raw(#","errorType":"#)
            string(l.errorType)
            raw(#","errorMessage":"#)
            string(l.errorMessage)
            raw(#","causes":"#)
            strings(l.causes)
            raw(#","attempts":"#)
            int(l.attempts)
            raw(#","firstFailedAt":"#)
            timestamp(l.firstFailedAt)
            raw(#","lastFailedAt":"#)
            timestamp(l.lastFailedAt)
            raw(#","nextAttemptAt":"#)
            if let date = l.nextAttemptAt { timestamp(date) } else { raw("null") }
            raw(#","expiresAt":"#)
            if let date = l.expiresAt { timestamp(date) } else { raw("null") }
            raw(#","status":"#)
            string(l.status.rawValue)
            raw(#","fingerprint":"#)
            string(l.fingerprint)
            raw(#","replayCount":"#)
            int(l.replayCount)
            raw(#","metadata":{"#)
            if l.metadata.count == 1, let (key, value) = l.metadata.first {
                string(key)
                buffer.append(UInt8(ascii: ":"))
                string(value)
            } else if !l.metadata.isEmpty {
                for (index, entry) in l.metadata.sorted(by: { $0.key < $1.key }).enumerated() {
                    if index > 0 { buffer.append(UInt8(ascii: ",")) }
                    string(entry.key)
                    buffer.append(UInt8(ascii: ":"))
                    string(entry.value)
                }
            }
            raw(#"},"contentType":"#)
            if let contentType = l.contentType { string(contentType) } else { raw("null") }
            raw(#","payload":""#)
            base64(l.payload)
            buffer.append(UInt8(ascii: "\""))
            raw(#","history":["#)
            // `history` without its array: the first failure, when only the letter's own fields hold it,
            // written from them.
            var first = true
            if l.recordedHistory.first?.event != .failed {
                firstFailure(l)
                first = false
            }
            for entry in l.recordedHistory {
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                historyEntry(entry)
            }
            buffer.append(UInt8(ascii: "]"))
            if l.historyOmitted != 0 {
                raw(#","historyOmitted":"#)
                int(l.historyOmitted)
            }
            if l.abandonedClaims != 0 {
                raw(#","abandonedClaims":"#)
                int(l.abandonedClaims)
            }
            buffer.append(UInt8(ascii: "}"))
        }

        /// What ``historyEntry(_:)`` writes for `HistoryEntry(firstFailureOf: l)`, without making the entry (its
        /// fields retained and released for each letter exported). A test compares the two.
        mutating func firstFailure(_ l: DeadLetter) {
            raw(#"{"event":"failed","at":"#)
            timestamp(l.firstFailedAt)
            raw(#","errorType":"#)
            string(l.errorType)
            raw(#","errorMessage":"#)
            string(l.errorMessage)
            if !l.causes.isEmpty {
                raw(#","causes":"#)
                strings(l.causes)
            }
            raw(#","reason":"#)
            string(l.reason.rawValue)
            raw(#","fingerprint":"#)
            string(l.fingerprint)
            buffer.append(UInt8(ascii: "}"))
        }

        /// One history entry: `event`, `at`, then each other field that is set, in the format's order.
        mutating func historyEntry(_ entry: DeadLetter.HistoryEntry) {
            raw(#"{"event":"#)
            string(entry.event.rawValue)
            raw(#","at":"#)
            timestamp(entry.at)
            if let outcome = entry.outcome {
                raw(#","outcome":"#)
                string(outcome.rawValue)
            }
            optional(#","errorType":"#, entry.errorType)
            optional(#","errorMessage":"#, entry.errorMessage)
            if !entry.causes.isEmpty {
                raw(#","causes":"#)
                strings(entry.causes)
            }
            optional(#","reason":"#, entry.reason?.rawValue)
            optional(#","fingerprint":"#, entry.fingerprint)
            optional(#","actor":"#, entry.actor)
            optional(#","operation":"#, entry.operation)
            optional(#","message":"#, entry.message)
            buffer.append(UInt8(ascii: "}"))
        }

        private mutating func optional(_ key: StaticString, _ value: String?) {
            guard let value else { return }
            raw(key)
            string(value)
        }

        mutating func int(_ value: Int) {
            if value >= 0, value < 10 {
                buffer.append(UInt8(ascii: "0") &+ UInt8(value))
                return
            }
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 24 digits
            var magnitude = value.magnitude
            var count = 0
            withUnsafeMutableBytes(of: &digits) { raw in
                repeat {
                    raw[23 - count] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
                    magnitude /= 10
                    count += 1
                } while magnitude > 0
                if value < 0 { buffer.append(UInt8(ascii: "-")) }
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
            }
        }

        mutating func string(_ value: String) {
            buffer.append(UInt8(ascii: "\""))
            if let done: Void = value.utf8.withContiguousStorageIfAvailable({ escaped($0) }) {
                _ = done
            } else {
                escaped(Array(value.utf8))
            }
            buffer.append(UInt8(ascii: "\""))
        }

        private mutating func escaped(_ bytes: [UInt8]) {
            bytes.withUnsafeBufferPointer { escaped($0) }
        }

        private mutating func escaped(_ bytes: UnsafeBufferPointer<UInt8>) {
            let html = self.escapesHTML
            var start = 0
            var index = 0
            while index < bytes.count {
                let c = bytes[index]
                // Eight bytes at a time while none of them needs an escape (none below 0x20, no quote, no
                // backslash), unless HTML's characters are escaped too.
                if !html, index + 8 <= bytes.count, let base = bytes.baseAddress,
                    !Self.mayNeedEscape(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
                {
                    index += 8
                    continue
                }
                defer { index += 1 }
                guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else {
                    if html { self.escapeForHTML(bytes, at: index, start: &start) }
                    continue
                }
                if index > start { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index])) }
                start = index + 1
                buffer.append(UInt8(ascii: "\\"))
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): buffer.append(c)
                case 0x0A: buffer.append(UInt8(ascii: "n"))
                case 0x0D: buffer.append(UInt8(ascii: "r"))
                case 0x09: buffer.append(UInt8(ascii: "t"))
                case 0x08: buffer.append(UInt8(ascii: "b"))
                case 0x0C: buffer.append(UInt8(ascii: "f"))
                default:
                    raw("u00")
                    buffer.append(hexDigits[Int(c >> 4)])
                    buffer.append(hexDigits[Int(c & 0xF)])
                }
            }
            if start < bytes.count { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }

        /// Whether one of the eight bytes of `word` is below 0x20, a quote or a backslash (exact: a `false`
        /// means none is; the usual tests for a zero byte, on the word and on its XOR with each byte looked for).
        @inline(__always)
        static func mayNeedEscape(_ word: UInt64) -> Bool {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let high: UInt64 = 0x8080_8080_8080_8080
            let below = (word &- ones &* 0x20) & ~word & high
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let quotes = (quote &- ones) & ~quote & high
            let backslashes = (backslash &- ones) & ~backslash & high
            return below | quotes | backslashes != 0
        }

        /// Writes `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`, and U+2028 and U+2029 (the bytes E2 80 A8/A9)
        /// as `\u2028`, `\u2029`, when `bytes[index]` starts one of them.
        private mutating func escapeForHTML(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, start: inout Int) {
            let c = bytes[index]
            let escape: StaticString
            var length = 1
            switch c {
            case UInt8(ascii: "<"): escape = "\\u003c"
            case UInt8(ascii: ">"): escape = "\\u003e"
            case UInt8(ascii: "&"): escape = "\\u0026"
            case 0xE2
            where index + 2 < bytes.count && bytes[index + 1] == 0x80
                && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                escape = bytes[index + 2] == 0xA8 ? "\\u2028" : "\\u2029"
                length = 3
            default: return
            }
            if index > start { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index])) }
            raw(escape)
            start = index + length
        }

        /// Writes `"yyyy-MM-ddTHH:mm:ss.SSSZ"` as ``Timestamp/format(_:)`` does, without a `String`.
        mutating func timestamp(_ date: Date) {
            let total = date.millisecondsSince1970
            // 0000-01-01 to 9999-12-31; Timestamp clamps what is outside.
            guard total >= -62_167_219_200_000, total < 253_402_300_800_000 else {
                buffer.append(UInt8(ascii: "\""))
                buffer.append(contentsOf: Timestamp.format(date).utf8)
                buffer.append(UInt8(ascii: "\""))
                return
            }
            let days = total >= 0 ? total / 86_400_000 : (total - 86_399_999) / 86_400_000
            let msOfDay = Int(total - days * 86_400_000)
            // Howard Hinnant's civil-from-days.
            let z = days + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            let day = Int(doy - (153 * mp + 2) / 5 + 1)
            let month = Int(mp < 10 ? mp + 3 : mp - 9)
            let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
            // Composed in place and appended once: an append a digit was most of the time of a timestamp.
            var text: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &text) { out in
                func put(_ value: Int, _ count: Int, at offset: Int) {
                    var value = value
                    for index in (0..<count).reversed() {
                        out[offset + index] = UInt8(ascii: "0") &+ UInt8(value % 10)
                        value /= 10
                    }
                }
                // "YYYY-MM-DDTHH:MM:SS.mmmZ", quoted: 26 bytes.
                out[0] = UInt8(ascii: "\"")
                put(year, 4, at: 1)
                out[5] = UInt8(ascii: "-")
                put(month, 2, at: 6)
                out[8] = UInt8(ascii: "-")
                put(day, 2, at: 9)
                out[11] = UInt8(ascii: "T")
                put(msOfDay / 3_600_000, 2, at: 12)
                out[14] = UInt8(ascii: ":")
                put(msOfDay / 60_000 % 60, 2, at: 15)
                out[17] = UInt8(ascii: ":")
                put(msOfDay / 1000 % 60, 2, at: 18)
                out[20] = UInt8(ascii: ".")
                put(msOfDay % 1000, 3, at: 21)
                out[24] = UInt8(ascii: "Z")
                out[25] = UInt8(ascii: "\"")
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: out[0..<26]))
            }
        }

        /// `data` in standard base64, encoded into memory of its own and appended at once (zero-filling the
        /// buffer's room first, element by element, cost as much as the encoding).
        mutating func base64(_ data: Data) {
            let count = data.count
            guard count > 0 else { return }
            let outCount = (count + 2) / 3 * 4
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: outCount) { out in
                data.withUnsafeBytes { input in
                    DeadLetterJSON.base64Alphabet.withUnsafeBufferPointer { alphabet in
                        var o = 0
                        var i = 0
                        // Twelve bits a lookup: two characters from one table entry.
                        DeadLetterJSON.base64Pairs.withUnsafeBufferPointer { pairs in
                            let raw = UnsafeMutableRawPointer(out.baseAddress!)
                            while i + 3 <= count {
                                let n = Int(input[i]) << 16 | Int(input[i + 1]) << 8 | Int(input[i + 2])
                                raw.storeBytes(of: pairs[n >> 12], toByteOffset: o, as: UInt16.self)
                                raw.storeBytes(of: pairs[n & 0xFFF], toByteOffset: o + 2, as: UInt16.self)
                                i += 3
                                o += 4
                            }
                        }
                        let rest = count - i
                        if rest > 0 {
                            let n = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                            out[o] = alphabet[Int(n >> 18)]
                            out[o + 1] = alphabet[Int(n >> 12 & 63)]
                            out[o + 2] = rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "=")
                            out[o + 3] = UInt8(ascii: "=")
                        }
                    }
                }
                self.buffer.append(contentsOf: UnsafeBufferPointer(out))
            }
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    static let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    /// The two base64 characters of each 12-bit value, as the bytes of a `UInt16` in memory order (8 KiB).
    static let base64Pairs: [UInt16] = (0..<4096).map { value in
        let first = UInt16(base64Alphabet[value >> 6])
        let second = UInt16(base64Alphabet[value & 63])
        return (first | second << 8).littleEndian
    }
}
