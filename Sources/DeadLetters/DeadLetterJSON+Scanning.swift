#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterJSON.Parser {
    /// How deeply unknown values may nest before the parser refuses them (hostile input).
    static let maximumDepth = 64

    func peek() -> UInt8? {
        i < b.count ? b[i] : nil
    }

    mutating func skipSpaces() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws {
        guard i < b.count else { throw syntaxError("unexpected end of line") }
        guard b[i] == byte else {
            throw syntaxError("expected '\(Character(Unicode.Scalar(byte)))'")
        }
        i += 1
    }

    /// Reads `null` if it comes next.
    mutating func null() throws -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func literal(_ word: StaticString) throws {
        let start = i
        let matched = word.withUTF8Buffer { expected -> Bool in
            guard b.count - i >= expected.count,
                UnsafeBufferPointer(rebasing: b[i..<(i + expected.count)]).elementsEqual(expected)
            else { return false }
            i += expected.count
            return true
        }
        guard matched else { throw syntaxError("invalid literal", at: start) }
    }

    /// Reads a string (at its opening quote) as a `String`, checking that it is valid UTF-8.
    mutating func string() throws -> String {
        let start = i
        let value = try withString { bytes -> String? in
            // ASCII is valid UTF-8; the general check costs more, so it runs only for the other strings.
            var index = 0
            if let base = UnsafeRawPointer(bytes.baseAddress) {
                while index + 8 <= bytes.count {
                    guard base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                    else { return String(validating: bytes, as: UTF8.self) }
                    index += 8
                }
            }
            while index < bytes.count {
                guard bytes[index] < 0x80 else { return String(validating: bytes, as: UTF8.self) }
                index += 1
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        guard let value else { throw syntaxError("a string is not valid UTF-8", at: start) }
        return value
    }

    /// Reads a string (at its opening quote) and hands its unescaped UTF-8 bytes to `body`: the input's own
    /// bytes when the string has no escapes, which is the common case.
    mutating func withString<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        i += 1  // the opening quote
        let start = i
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                let result = try body(UnsafeBufferPointer(rebasing: b[start..<i]))
                i += 1
                return result
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw syntaxError("control character in a string") }
            i += 1
        }
        guard i < b.count else { throw syntaxError("unterminated string") }
        var bytes = Array(UnsafeBufferPointer(rebasing: b[start..<i]))
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return try bytes.withUnsafeBufferPointer(body)
            }
            if c < 0x20 { throw syntaxError("control character in a string") }
            if c != UInt8(ascii: "\\") {
                bytes.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < b.count else { break }
            switch b[i] {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): bytes.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                let escapeStart = i - 1
                var scalar = try hex4()
                if scalar >= 0xD800, scalar < 0xDC00 {
                    guard i + 2 < b.count, b[i + 1] == UInt8(ascii: "\\"), b[i + 2] == UInt8(ascii: "u") else {
                        throw syntaxError("unpaired surrogate in a string", at: escapeStart)
                    }
                    i += 2
                    let low = try hex4()
                    guard low >= 0xDC00, low < 0xE000 else {
                        throw syntaxError("unpaired surrogate in a string", at: escapeStart)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00, scalar < 0xE000 {
                    throw syntaxError("unpaired surrogate in a string", at: escapeStart)
                }
                appendUTF8(scalar, to: &bytes)
            default:
                throw syntaxError("invalid escape", at: i - 1)
            }
            i += 1
        }
        throw syntaxError("unterminated string")
    }

    private func appendUTF8(_ scalar: UInt32, to bytes: inout [UInt8]) {
        switch scalar {
        case ..<0x80:
            bytes.append(UInt8(scalar))
        case ..<0x800:
            bytes.append(UInt8(0xC0 | scalar >> 6))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            bytes.append(UInt8(0xE0 | scalar >> 12))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | scalar >> 18))
            bytes.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Reads the four hex digits after `\u` (at the `u`), leaving `i` on the last digit.
    private mutating func hex4() throws -> UInt32 {
        guard b.count - i > 4 else { throw syntaxError("invalid escape", at: i - 1) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            i += 1
            let c = b[i]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw syntaxError("invalid escape", at: i)
            }
            value = value << 4 | digit
        }
        return value
    }

    /// Skips any JSON value, checking its syntax: an unknown field's value.
    mutating func skipValue(depth: Int = 0) throws {
        guard depth < Self.maximumDepth else { throw syntaxError("values nested too deeply") }
        guard let c = peek() else { throw syntaxError("unexpected end of line") }
        switch c {
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = c == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            i += 1
            skipSpaces()
            if peek() == close {
                i += 1
                return
            }
            while true {
                skipSpaces()
                if close == UInt8(ascii: "}") {
                    guard peek() == UInt8(ascii: "\"") else { throw syntaxError("expected a field name") }
                    _ = try string()
                    skipSpaces()
                    try expect(UInt8(ascii: ":"))
                    skipSpaces()
                }
                try skipValue(depth: depth + 1)
                skipSpaces()
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(close)
                return
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try skipNumber()
        default:
            throw syntaxError("unexpected character")
        }
    }

    private mutating func skipNumber() throws {
        let start = i
        func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ?? false }
        if peek() == UInt8(ascii: "-") { i += 1 }
        if peek() == UInt8(ascii: "0") {
            i += 1
        } else {
            guard isDigit(peek()) else { throw syntaxError("invalid number", at: start) }
            while isDigit(peek()) { i += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            i += 1
            guard isDigit(peek()) else { throw syntaxError("invalid number", at: start) }
            while isDigit(peek()) { i += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            i += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { i += 1 }
            guard isDigit(peek()) else { throw syntaxError("invalid number", at: start) }
            while isDigit(peek()) { i += 1 }
        }
    }
}

extension DeadLetterJSON {
    /// The offset of the first byte of `bytes` that does not start or continue a well-formed UTF-8 sequence
    /// (Unicode's table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or `nil` when all of
    /// `bytes` is valid UTF-8.
    static func invalidUTF8Offset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let count = bytes.count
        var index = 0
        while index < count {
            // ASCII eight bytes at a time: most of a line (base64 payloads, ids, times) is ASCII.
            if let base = UnsafeRawPointer(bytes.baseAddress) {
                while index + 8 <= count,
                    base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                {
                    index += 8
                }
            }
            guard index < count else { return nil }
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var second: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                second = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                second = 0x80...0x9F
            case 0xF0:
                length = 4
                second = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                second = 0x80...0x8F
            default: return index
            }
            guard index + 1 < count, second.contains(bytes[index + 1]) else { return index }
            for offset in 2..<length {
                guard index + offset < count, (0x80...0xBF).contains(bytes[index + offset]) else { return index }
            }
            index += length
        }
        return nil
    }

    /// Standard base64 with padding, as `Data(base64Encoded:)` reads it; `nil` when `text` is not base64.
    static func decodeBase64(_ text: UnsafeBufferPointer<UInt8>) -> Data? {
        let count = text.count
        guard count % 4 == 0 else { return nil }
        guard count > 0 else { return Data() }
        var padding = 0
        if text[count - 1] == UInt8(ascii: "=") { padding += 1 }
        if text[count - 2] == UInt8(ascii: "=") { padding += 1 }
        var data = Data(count: count / 4 * 3 - padding)
        let valid = data.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) -> Bool in
            base64Values.withUnsafeBufferPointer { table -> Bool in
                var o = 0
                var index = 0
                let fullQuads = padding > 0 ? count - 4 : count
                while index < fullQuads {
                    let a = table[Int(text[index])]
                    let b = table[Int(text[index + 1])]
                    let c = table[Int(text[index + 2])]
                    let d = table[Int(text[index + 3])]
                    guard (a | b | c | d) & 0x80 == 0 else { return false }
                    let n = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    out[o] = UInt8(truncatingIfNeeded: n >> 16)
                    out[o + 1] = UInt8(truncatingIfNeeded: n >> 8)
                    out[o + 2] = UInt8(truncatingIfNeeded: n)
                    o += 3
                    index += 4
                }
                guard padding > 0 else { return true }
                let a = table[Int(text[index])]
                let b = table[Int(text[index + 1])]
                let c = padding == 2 ? 0 : table[Int(text[index + 2])]
                guard (a | b | c) & 0x80 == 0 else { return false }
                let n = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                out[o] = UInt8(truncatingIfNeeded: n >> 16)
                if padding == 1 { out[o + 1] = UInt8(truncatingIfNeeded: n >> 8) }
                return true
            }
        }
        return valid ? data : nil
    }

    /// The value of each base64 character, or 0xFF.
    static let base64Values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in base64Alphabet.enumerated() { table[Int(character)] = UInt8(value) }
        return table
    }()
}
