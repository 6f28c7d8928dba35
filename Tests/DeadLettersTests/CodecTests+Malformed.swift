import DeadLetters
import Foundation
import Testing

extension CodecTests {
    /// The fields of a valid line, in order, as raw JSON values, so a test can drop or replace one.
    static let validFields: [(String, String)] = [
        ("v", "1"), ("id", #""a""#), ("source", #""s""#), ("reason", #""timeout""#), ("errorType", #""E""#),
        ("errorMessage", #""m""#), ("causes", "[]"), ("attempts", "1"),
        ("firstFailedAt", #""2026-11-23T10:00:00.000Z""#), ("lastFailedAt", #""2026-11-23T10:00:00.000Z""#),
        ("nextAttemptAt", "null"), ("expiresAt", "null"), ("status", #""dead""#), ("fingerprint", #""f""#),
        ("replayCount", "0"), ("metadata", "{}"), ("contentType", "null"), ("payload", #""AA==""#),
    ]

    static func line(without removed: String? = nil, replacing replaced: [String: String] = [:]) -> String {
        let fields = validFields.filter { $0.0 != removed }.map { "\"\($0.0)\":\(replaced[$0.0] ?? $0.1)" }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func formatError(_ json: String, line: Int? = nil) -> DeadLetterError? {
        do {
            _ = try DeadLetterJSON.decode(json, line: line)
            return nil
        } catch let error as DeadLetterError {
            return error
        } catch {
            return nil
        }
    }

    @Test func theValidFieldsAreValid() throws {
        #expect(try DeadLetterJSON.decode(Self.line()).id == "a")
    }

    static let requiredFields = [
        "v", "id", "source", "reason", "errorMessage", "attempts", "firstFailedAt", "lastFailedAt", "payload",
    ]

    @Test(arguments: requiredFields)
    func eachMissingRequiredFieldIsNamed(field: String) throws {
        let json = Self.line(without: field)
        let error = try #require(Self.formatError(json, line: 4))
        #expect(error.code == .invalidFormat)
        #expect(error.field == field)
        #expect(error.line == 4)
        #expect(error.message == "missing required field")
        #expect(error.description == "line 4: field '\(field)': missing required field")
        // The Codable conformance says the same.
        #expect(throws: DeadLetterError(code: .invalidFormat, message: "missing required field", field: field)) {
            try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8))
        }
    }

    @Test(arguments: [
        "errorType", "causes", "nextAttemptAt", "expiresAt", "status", "fingerprint", "replayCount",
        "metadata", "contentType",
    ])
    func eachOptionalFieldMayBeMissing(field: String) throws {
        #expect(try DeadLetterJSON.decode(Self.line(without: field)).id == "a")
    }

    static let wrongTypes: [(field: String, value: String, message: String)] = [
        ("v", #""1""#, "expected an integer, found a string"),
        ("v", "1.0", "expected an integer, found a number"),
        ("id", "7", "expected a string, found a number"),
        ("id", "null", "expected a string, found null"),
        ("source", "{}", "expected a string, found an object"),
        ("reason", "[]", "expected a string, found an array"),
        ("errorType", "true", "expected a string, found a boolean"),
        ("errorMessage", "false", "expected a string, found a boolean"),
        ("causes", #""x""#, "expected an array of strings, found a string"),
        ("causes", "[1]", "expected an array of strings, found a number"),
        ("attempts", #""3""#, "expected an integer, found a string"),
        ("attempts", "2.5", "expected an integer, found a number"),
        ("attempts", "1e3", "expected an integer, found a number"),
        ("attempts", "-1", "must not be negative"),
        ("attempts", "99999999999999999999", "integer out of range"),
        ("firstFailedAt", "1700000000", "expected a string, found a number"),
        ("lastFailedAt", #""yesterday""#, "not an ISO 8601 timestamp"),
        ("firstFailedAt", #""2026-13-01T00:00:00Z""#, "not an ISO 8601 timestamp"),
        ("nextAttemptAt", #""2026-02-30T00:00:00Z""#, "not an ISO 8601 timestamp"),
        ("expiresAt", #""2026-11-23""#, "not an ISO 8601 timestamp"),
        ("status", #""zombie""#, "unknown status 'zombie'"),
        ("status", "1", "expected a string, found a number"),
        ("fingerprint", "[]", "expected a string, found an array"),
        ("replayCount", #""0""#, "expected an integer, found a string"),
        ("metadata", "[]", "expected an object of strings, found an array"),
        ("metadata", #"{"k":1}"#, "expected an object of strings, found a number"),
        ("contentType", "5", "expected a string, found a number"),
        ("payload", #""not base64!""#, "invalid base64"),
        ("payload", #""AAA""#, "invalid base64"),
        ("payload", #""A===""#, "invalid base64"),
        ("payload", "null", "expected a string, found null"),
        ("id", #""""#, "must not be empty"),
        ("source", #""""#, "must not be empty"),
    ]

    @Test(arguments: wrongTypes)
    func eachWrongTypeIsNamed(field: String, value: String, message: String) throws {
        let json = Self.line(replacing: [field: value])
        let error = try #require(Self.formatError(json, line: 9))
        #expect(error.code == .invalidFormat)
        #expect(error.field == field)
        #expect(error.line == 9)
        #expect(error.message == message)
        // The Codable conformance refuses it too, naming the same field (it reads `1.0` and `1e3` as integers).
        if value == "1.0" || value == "1e3" { return }
        do {
            _ = try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8))
            Issue.record("JSONDecoder accepted \(field): \(value)")
        } catch let error as DeadLetterError {
            #expect(error.field == field)
        } catch {
            // A value JSONDecoder cannot even read as JSON (an out-of-range integer) is its own error.
            #expect(value == "99999999999999999999")
        }
    }

    @Test func anIntegralNumberWithAFractionOrExponentIsNotAnInteger() throws {
        // JSONDecoder reads `1.0` and `1e3` as integers; the stored format writes integers as integers, and
        // the fast codec keeps to that.
        #expect(Self.formatError(Self.line(replacing: ["attempts": "1.0"]))?.field == "attempts")
        #expect(
            try JSONDecoder().decode(DeadLetter.self, from: Data(Self.line(replacing: ["attempts": "1e3"]).utf8))
                .attempts == 1000
        )
    }

    @Test func aNewerFormatVersionIsRefused() throws {
        let error = try #require(Self.formatError(Self.line(replacing: ["v": "3"]), line: 1))
        #expect(error.field == "v")
        #expect(error.message == "format version 3 is newer than this version (2) reads")
        #expect(
            throws: DeadLetterError(
                code: .invalidFormat,
                message: "format version 3 is newer than this version (2) reads",
                field: "v"
            )
        ) {
            try JSONDecoder().decode(DeadLetter.self, from: Data(Self.line(replacing: ["v": "3"]).utf8))
        }
        #expect(Self.formatError(Self.line(replacing: ["v": "0"]))?.field == "v")
    }

    static let notJSON: [(json: String, column: Int)] = [
        ("", 1),
        ("not json", 1),
        ("[]", 1),
        (#"{"v":1,"id":"a""#, 16),  // truncated: the column after the end
        (String(line().dropLast(5)), line().utf8.count - 4),  // truncated inside a string
        (line() + " x", line().utf8.count + 2),  // trailing garbage
        (line() + "{}", line().utf8.count + 1),
        (#"{"v":1,,"id":"a"}"#, 8),
        (#"{"v":1 "id":"a"}"#, 8),
        (#"{v:1}"#, 2),
        (#"{"v":1,"extra":tru}"#, 16),
        (#"{"v":1,"extra":01}"#, 17),
        (#"{"v":1,"extra":-}"#, 16),
        (#"{"v":1,"extra":"a\qb"}"#, 18),
        (#"{"v":1,"extra":"\ud800"}"#, 17),
        (#"{"v":1,"extra":"\udc00x"}"#, 17),
        (#"{"v":1,"extra":"\u12"}"#, 21),
        ("{\"v\":1,\"extra\":\"a\u{1}b\"}", 18),
        (#"{"v":1,"#, 8),
        (#"{"v":01}"#, 6),
    ]

    @Test(arguments: notJSON)
    func notJSONNamesTheColumn(json: String, column: Int) throws {
        let error = try #require(Self.formatError(json, line: 3))
        #expect(error.code == .invalidFormat)
        #expect(error.line == 3)
        #expect(error.field == nil)
        #expect(error.message.hasPrefix("not valid JSON at column \(column):"), "\(error.message)")
    }

    @Test func duplicateFieldsAreRefused() throws {
        let json = String(Self.line().dropLast()) + #","id":"b"}"#
        #expect(Self.formatError(json)?.field == "id")
        #expect(Self.formatError(json)?.message == "duplicate field")
    }

    @Test func deeplyNestedUnknownValuesAreRefused() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let json = String(Self.line().dropLast()) + #","extra":"# + deep + "}"
        #expect(Self.formatError(json)?.message.contains("nested too deeply") == true)
        let shallow = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
        #expect(try DeadLetterJSON.decode(String(Self.line().dropLast()) + #","extra":"# + shallow + "}").id == "a")
    }

    @Test func invalidUTF8IsRefused() throws {
        var bytes = Array(Self.line(replacing: ["source": #""ab""#]).utf8)
        let index = try #require(bytes.firstIndex(of: UInt8(ascii: "b")))
        bytes[index] = 0xFF
        let error = try #require(throws: DeadLetterError.self) { try DeadLetterJSON.decode(bytes) }
        #expect(error.message.contains("not valid UTF-8"))
    }

    @Test func historyEntriesAreChecked() throws {
        let good = #"[{"event":"replayed","at":"2026-11-23T10:00:00.000Z","outcome":"failed","future":1}]"#
        #expect(
            try DeadLetterJSON.decode(Self.line(replacing: ["payload": #""AA==","history":"# + good])).history.count
                == 2
        )
        let cases: [(String, String, String)] = [
            (#"{}"#, "history", "expected an array, found an object"),
            (#"[1]"#, "history", "expected an array of objects, found a number"),
            (#"[{"at":"2026-11-23T10:00:00Z","outcome":"x"}]"#, "history.event", "missing required field"),
            (#"[{"event":"e","outcome":"x"}]"#, "history.at", "missing required field"),
            (#"[{"event":"e","at":"noon","outcome":"x"}]"#, "history.at", "not an ISO 8601 timestamp"),
            (#"[{"event":5,"at":"2026-11-23T10:00:00Z","outcome":"x"}]"#, "history.event", "expected a string"),
        ]
        for (history, field, message) in cases {
            let json = Self.line(replacing: ["payload": #""AA==","history":"# + history])
            let error = Self.formatError(json)
            #expect(error?.field == field, "\(history)")
            #expect(error?.message == message, "\(history)")
            #expect(throws: (any Error).self) { try JSONDecoder().decode(DeadLetter.self, from: Data(json.utf8)) }
        }
    }
}
