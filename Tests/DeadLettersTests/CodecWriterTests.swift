import Foundation
import Testing

@testable import DeadLetters

/// The stored format's writer takes shortcuts for export's sake (a timestamp composed in place, the first failure
/// written from the letter's fields); each is checked against the general path it stands for.
@Suite struct CodecWriterTests {
    private func written(_ body: (inout DeadLetterJSON.Writer) -> Void) -> String {
        var writer = DeadLetterJSON.Writer(buffer: [])
        body(&writer)
        return String(decoding: writer.buffer, as: UTF8.self)
    }

    @Test func aTimestampIsWhatTimestampFormatWrites() {
        var random = CodecRandom(seed: 11)
        // The edges of the four-digit years, the epoch, a leap day, and dates all over.
        var milliseconds: [Int64] = [
            -62_167_219_200_000, -62_167_219_199_999, -1, 0, 1, 951_782_400_000, 951_868_799_999,
            253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_001, .max / 2, .min / 2,
        ]
        for _ in 0..<2000 {
            milliseconds.append(Int64(truncatingIfNeeded: random.next() % 300_000_000_000_000) - 62_167_219_200_000)
        }
        for value in milliseconds {
            let date = Date(millisecondsSince1970: value)
            #expect(self.written { $0.timestamp(date) } == "\"" + Timestamp.format(date) + "\"", "\(value)")
        }
    }

    @Test func theFirstFailureIsWhatItsHistoryEntryWrites() {
        var random = CodecRandom(seed: 12)
        for index in 0..<500 {
            let letter = CodecTests.randomLetter(index: index, using: &random)
            let entry = DeadLetter.HistoryEntry(firstFailureOf: letter)
            #expect(self.written { $0.firstFailure(letter) } == self.written { $0.historyEntry(entry) }, "\(index)")
        }
    }

    @Test func theEightByteTestForEscapesMissesNone() {
        func reference(_ word: UInt64) -> Bool {
            (0..<8).contains { shift in
                let byte = UInt8(truncatingIfNeeded: word >> (8 * shift))
                return byte < 0x20 || byte == 0x22 || byte == 0x5C
            }
        }
        // Every byte value at every place among bytes that need nothing (ASCII and UTF-8 continuation bytes).
        for filler: UInt8 in [0x61, 0x20, 0x5D, 0x7F, 0x80, 0xFF] {
            for place in 0..<8 {
                for byte in 0...255 {
                    var word = UInt64(filler) &* 0x0101_0101_0101_0101
                    word &= ~(UInt64(0xFF) << (8 * place))
                    word |= UInt64(byte) << (8 * place)
                    #expect(DeadLetterJSON.Writer.mayNeedEscape(word) == reference(word), "\(word)")
                }
            }
        }
        var random = CodecRandom(seed: 13)
        for _ in 0..<100_000 {
            let word = random.next()
            #expect(DeadLetterJSON.Writer.mayNeedEscape(word) == reference(word))
        }
    }

    @Test func stringsAreEscapedWhereverTheSpecialBytesFall() {
        func reference(_ text: String) -> String {
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{8}": out += "\\b"
                case "\u{C}": out += "\\f"
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        for special in ["\"", "\\", "\n", "\u{1}", "\u{1F}", "\t"] {
            for filler in ["a", "é", "日", " "] {
                for length in [0, 1, 7, 8, 9, 16, 23] {
                    for place in 0...length {
                        var characters = Array(repeating: filler, count: length)
                        characters.insert(special, at: place)
                        let text = characters.joined()
                        #expect(self.written { $0.string(text) } == reference(text), "\(text.debugDescription)")
                    }
                }
            }
        }
    }

    @Test func payloadsAreStandardBase64() {
        var random = CodecRandom(seed: 14)
        for length in Array(0..<70) + [299, 300, 301, 4096] {
            let data = Data((0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            #expect(self.written { $0.base64(data) } == data.base64EncodedString(), "\(length)")
        }
    }
}
