import Foundation
import Testing

@testable import DeadLettersSQLite

/// The hand-written JSON of a row's causes and metadata (``SQLiteJSON``): what it writes reads back exactly,
/// it reads what `JSONEncoder` writes, and it refuses what is not an array of strings or an object of strings
/// (the store then falls back to `JSONDecoder`).
@Suite("SQLite row JSON")
struct SQLiteJSONTests {
    /// Texts with every kind of byte the reader treats apart: quotes, backslashes, slashes, control characters,
    /// multi-byte scalars and one outside the Basic Multilingual Plane.
    static let texts: [String] = [
        "", "plain", "tenant", "eu-west-1", "a \"quoted\" value", #"back\slash"#, "a/b", "line\nbreak\r\ttab",
        "\u{0}\u{1}\u{1F}", "café", "日本語", "emoji 😀 here", "\u{2028}\u{2029}", #"\u0041 is not an escape here"#,
        String(repeating: "long ", count: 200),
    ]

    @Test func whatItWritesReadsBackExactly() throws {
        for text in Self.texts {
            for other in Self.texts.shuffled().prefix(3) {
                let dictionary = [text: other, "k-" + other: text]
                #expect(SQLiteJSON.decodeObject(SQLiteJSON.encode(dictionary)) == dictionary)
                let array = [text, other, ""]
                #expect(SQLiteJSON.decodeArray(SQLiteJSON.encode(array)) == array)
            }
        }
        #expect(SQLiteJSON.decodeObject("{}") == [:])
        #expect(SQLiteJSON.decodeArray("[]") == [])
    }

    @Test func itReadsWhatJSONEncoderWrites() throws {
        let encoder = JSONEncoder()
        for text in Self.texts {
            let dictionary = ["key \(text)": text, "second": text + text]
            let object = String(decoding: try encoder.encode(dictionary), as: UTF8.self)
            #expect(SQLiteJSON.decodeObject(object) == dictionary, "\(object)")
            let array = [text, "x"]
            let json = String(decoding: try encoder.encode(array), as: UTF8.self)
            #expect(SQLiteJSON.decodeArray(json) == array, "\(json)")
        }
    }

    @Test func escapesWhitespaceAndSurrogatePairsAreRead() {
        #expect(
            SQLiteJSON.decodeObject(#" { "a" : "\u00e9\n\"\\\/" , "b":"\ud83d\ude00" } "#) == [
                "a": "é\n\"\\/", "b": "😀",
            ]
        )
        #expect(SQLiteJSON.decodeArray(#"[ "\t" ,"\b\f\r" ]"#) == ["\t", "\u{8}\u{C}\r"])
        // A later duplicate key wins, as in the writer's sorted form it never occurs.
        #expect(SQLiteJSON.decodeObject(#"{"a":"1","a":"2"}"#) == ["a": "2"])
        // A colon inside a string is not a pair.
        #expect(SQLiteJSON.decodeObject(#"{"a:b":"c:d:e"}"#) == ["a:b": "c:d:e"])
    }

    @Test func whatIsNotAnArrayOrObjectOfStringsIsRefused() {
        let refused = [
            #"{"a":1}"#, #"{"a":"b""#, #"{"a":"b"} x"#, #"{"a" "b"}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#,
            #"{"a":"\ud83d"}"#, #"{"a":"\ude00"}"#, #"{"a":"\ud83d\u0041"}"#, #"{"a":"unterminated"#, #"{"a":"b\"#,
            #"{"a":"b",}"#, #"["a",]"#, #"["a""#, #"[1]"#, "", "null", #""a""#, #"{"a":null}"#,
        ]
        for text in refused {
            #expect(SQLiteJSON.decodeObject(text) == nil, "\(text)")
            #expect(SQLiteJSON.decodeArray(text) == nil, "\(text)")
        }
    }
}
