/// JSON text for the small collections a row keeps (causes, metadata), written and read by hand: this runs
/// for every letter written and read, and `JSONEncoder` / `JSONDecoder` cost several times more.
///
/// The reader accepts exactly JSON arrays of strings and objects of string values (any whitespace, every
/// escape); anything else returns `nil`.
enum SQLiteJSON {
    static func encode(_ strings: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, string) in strings.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            self.append(string, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The object's keys are written sorted, so equal dictionaries give equal text.
    static func encode(_ dictionary: [String: String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (index, key) in dictionary.keys.sorted().enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            self.append(key, to: &out)
            out.append(UInt8(ascii: ":"))
            self.append(dictionary[key] ?? "", to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func decodeArray(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { bytes -> [String]? in
            var reader = Reader(bytes: bytes)
            guard reader.consume(UInt8(ascii: "[")) else { return nil }
            var result: [String] = []
            if reader.consume(UInt8(ascii: "]")) { return reader.atEnd ? result : nil }
            repeat {
                guard let string = reader.string() else { return nil }
                result.append(string)
            } while reader.consume(UInt8(ascii: ","))
            return reader.consume(UInt8(ascii: "]")) && reader.atEnd ? result : nil
        }
    }

    /// Read in place, each string made once from its bytes when it holds no escape, and the dictionary made
    /// with room for its pairs. Measured (`dlq-benchmarks --profile-export all`, two metadata pairs a letter):
    /// reading from a copy of the text into a growing byte array per string, and growing the dictionary, were
    /// 40% of decoding a row.
    static func decodeObject(_ text: String) -> [String: String]? {
        var text = text
        return text.withUTF8 { bytes -> [String: String]? in
            var reader = Reader(bytes: bytes)
            guard reader.consume(UInt8(ascii: "{")) else { return nil }
            if reader.consume(UInt8(ascii: "}")) { return reader.atEnd ? [:] : nil }
            // At most one pair per colon.
            var colons = 0
            for byte in bytes where byte == UInt8(ascii: ":") { colons += 1 }
            var result = [String: String](minimumCapacity: colons)
            repeat {
                guard let key = reader.string(), reader.consume(UInt8(ascii: ":")), let value = reader.string() else {
                    return nil
                }
                result[key] = value
            } while reader.consume(UInt8(ascii: ","))
            return reader.consume(UInt8(ascii: "}")) && reader.atEnd ? result : nil
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        var atEnd: Bool {
            mutating get {
                self.skipSpace()
                return self.index == self.bytes.count
            }
        }

        mutating func skipSpace() {
            while self.index < self.bytes.count {
                switch self.bytes[self.index] {
                case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
                default: return
                }
            }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            self.skipSpace()
            guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
            self.index += 1
            return true
        }

        mutating func string() -> String? {
            guard self.consume(UInt8(ascii: "\"")) else { return nil }
            // Most strings hold no escape: made from their bytes at once.
            let start = self.index
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                if byte == UInt8(ascii: "\"") {
                    self.index += 1
                    return String(
                        decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index - 1]),
                        as: UTF8.self
                    )
                }
                if byte == UInt8(ascii: "\\") { break }
                self.index += 1
            }
            guard self.index < self.bytes.count else { return nil }
            var out = Array(self.bytes[start..<self.index])
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                self.index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard self.index < self.bytes.count else { return nil }
                    let escape = self.bytes[self.index]
                    self.index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = self.hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard self.consumeRaw(UInt8(ascii: "\\")), self.consumeRaw(UInt8(ascii: "u")),
                                let low = self.hex4(), (0xDC00..<0xE000).contains(low)
                            else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { return nil }
                        UTF8.encode(unicode) { out.append($0) }
                    default:
                        return nil
                    }
                default:
                    out.append(byte)
                }
            }
            return nil
        }

        private mutating func consumeRaw(_ byte: UInt8) -> Bool {
            guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
            self.index += 1
            return true
        }

        private mutating func hex4() -> UInt32? {
            guard self.index + 4 <= self.bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = self.bytes[self.index]
                self.index += 1
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
    }
}
