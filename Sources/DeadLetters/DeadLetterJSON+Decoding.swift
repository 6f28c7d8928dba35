#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterJSON {
    /// A strict JSON parser for one object of the stored format, reading straight into a ``DeadLetter``.
    struct Parser {
        typealias Key = DeadLetter.CodingKeys

        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            self.b = bytes
        }

        // MARK: The letter

        mutating func letter() throws -> DeadLetter {
            var version: Int?
            var id: String?
            var source: String?
            var reason: String?
            var errorType: String?
            var errorMessage: String?
            var causes: [String]?
            var attempts: Int?
            var firstFailedAt: Date?
            var lastFailedAt: Date?
            var nextAttemptAt: Date?
            var expiresAt: Date?
            var status: DeadLetterStatus?
            var fingerprint: String?
            var replayCount: Int?
            var metadata: [String: String]?
            var contentType: String?
            var payload: Data?
            var history: [DeadLetter.HistoryEntry]?
            var historyOmitted: Int?
            var abandonedClaims: Int?
            var seen: UInt32 = 0

            skipSpaces()
            try expect(UInt8(ascii: "{"))
            skipSpaces()
            if peek() == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    skipSpaces()
                    let found = try objectKey()
                    if let (key, index) = found {
                        let bit = UInt32(1) << UInt32(index)
                        guard seen & bit == 0 else { throw fieldError("duplicate field", key) }
                        seen |= bit
                        switch key {
                        case .v: version = try requiredInt(key)
                        case .id: id = try requiredString(key)
                        case .source: source = try requiredString(key)
                        case .reason: reason = try requiredString(key)
                        case .errorType: errorType = try optionalString(key)
                        case .errorMessage: errorMessage = try requiredString(key)
                        case .causes: causes = try stringArray(key)
                        case .attempts: attempts = try requiredInt(key)
                        case .firstFailedAt: firstFailedAt = try timestamp(key, required: true)
                        case .lastFailedAt: lastFailedAt = try timestamp(key, required: true)
                        case .nextAttemptAt: nextAttemptAt = try timestamp(key, required: false)
                        case .expiresAt: expiresAt = try timestamp(key, required: false)
                        case .status: status = try statusValue()
                        case .fingerprint: fingerprint = try optionalString(key)
                        case .replayCount: replayCount = try optionalInt(key)
                        case .metadata: metadata = try stringObject(key)
                        case .contentType: contentType = try optionalString(key)
                        case .payload: payload = try base64(key)
                        case .history: history = try historyEntries()
                        case .historyOmitted: historyOmitted = try optionalInt(key)
                        case .abandonedClaims: abandonedClaims = try optionalInt(key)
                        }
                    } else {
                        try skipValue()
                    }
                    skipSpaces()
                    if peek() == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    try expect(UInt8(ascii: "}"))
                    break
                }
            }
            skipSpaces()
            guard i == b.count else { throw syntaxError("trailing characters after the object") }

            guard let version else { throw missing(.v) }
            guard version <= DeadLetter.formatVersion else {
                throw fieldError(
                    "format version \(version) is newer than this version (\(DeadLetter.formatVersion)) reads",
                    .v
                )
            }
            guard version >= 1 else { throw fieldError("format version \(version) is not valid", .v) }
            guard let id else { throw missing(.id) }
            guard let source else { throw missing(.source) }
            guard let reason else { throw missing(.reason) }
            guard let errorMessage else { throw missing(.errorMessage) }
            guard let attempts else { throw missing(.attempts) }
            guard let firstFailedAt else { throw missing(.firstFailedAt) }
            guard let lastFailedAt else { throw missing(.lastFailedAt) }
            guard let payload else { throw missing(.payload) }
            try DeadLetter.validate(
                id: id,
                source: source,
                reason: reason,
                attempts: attempts,
                replayCount: replayCount ?? 0
            )
            try DeadLetter.validate(historyOmitted: historyOmitted ?? 0, abandonedClaims: abandonedClaims ?? 0)
            return DeadLetter(
                id: id,
                source: source,
                reason: FailureReason(rawValue: reason),
                errorType: errorType ?? DeadLetter.defaultErrorType,
                errorMessage: errorMessage,
                causes: causes ?? [],
                attempts: attempts,
                firstFailedAt: firstFailedAt,
                lastFailedAt: lastFailedAt,
                nextAttemptAt: nextAttemptAt,
                expiresAt: expiresAt,
                status: status ?? .dead,
                fingerprint: fingerprint,
                replayCount: replayCount ?? 0,
                metadata: metadata ?? [:],
                contentType: contentType,
                payload: payload,
                history: history ?? [],
                historyOmitted: historyOmitted ?? 0,
                abandonedClaims: abandonedClaims ?? 0
            )
        }

        /// The format's keys as bytes, with their position (the bit that marks them seen).
        static let keys: [(bytes: [UInt8], key: Key)] = Key.allCases.map { (Array($0.rawValue.utf8), $0) }

        /// Reads `"key":` and returns the known key and its position, or `nil` for a key the format does not
        /// define.
        private mutating func objectKey() throws -> (key: Key, index: Int)? {
            guard peek() == UInt8(ascii: "\"") else { throw syntaxError("expected a field name") }
            let key: (Key, Int)? = try withString { bytes in
                let keys = Parser.keys
                for index in 0..<keys.count where keys[index].bytes.count == bytes.count {
                    let matched = keys[index].bytes.withUnsafeBufferPointer { candidate in
                        for offset in 0..<candidate.count where candidate[offset] != bytes[offset] { return false }
                        return true
                    }
                    if matched { return (keys[index].key, index) }
                }
                return nil
            }
            skipSpaces()
            try expect(UInt8(ascii: ":"))
            skipSpaces()
            return key
        }

        // MARK: Typed values

        private mutating func requiredString(_ key: Key) throws -> String {
            guard peek() == UInt8(ascii: "\"") else { throw typeError(key, "a string") }
            return try string()
        }

        private mutating func optionalString(_ key: Key) throws -> String? {
            if try null() { return nil }
            return try requiredString(key)
        }

        private mutating func requiredInt(_ key: Key) throws -> Int {
            guard let c = peek(), c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) else {
                throw typeError(key, "an integer")
            }
            let start = i
            let negative = c == UInt8(ascii: "-")
            if negative { i += 1 }
            var value = 0
            var digits = 0
            var overflow = false
            while let d = peek(), d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") {
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(Int(d - UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                value = sum
                digits += 1
                i += 1
            }
            guard digits > 0 else { throw syntaxError("invalid number", at: start) }
            guard digits == 1 || b[negative ? start + 1 : start] != UInt8(ascii: "0") else {
                throw syntaxError("invalid number", at: start)
            }
            if let c = peek(), c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                i = start
                try skipValue()
                throw fieldError("expected an integer, found a number", key)
            }
            guard !overflow else { throw fieldError("integer out of range", key) }
            return negative ? -value : value
        }

        private mutating func optionalInt(_ key: Key) throws -> Int? {
            if try null() { return nil }
            return try requiredInt(key)
        }

        private mutating func timestamp(_ key: Key, required: Bool) throws -> Date? {
            if !required, try null() { return nil }
            guard peek() == UInt8(ascii: "\"") else { throw typeError(key, "a string") }
            let date = try withString { Timestamp.parse(utf8: $0) }
            guard let date else { throw fieldError("not an ISO 8601 timestamp", key) }
            return date
        }

        private mutating func statusValue() throws -> DeadLetterStatus? {
            guard let name = try optionalString(.status) else { return nil }
            guard let status = DeadLetterStatus(rawValue: name) else {
                throw fieldError("unknown status '\(name)'", .status)
            }
            return status
        }

        private mutating func stringArray(_ key: Key) throws -> [String]? {
            if try null() { return nil }
            guard peek() == UInt8(ascii: "[") else { throw typeError(key, "an array of strings") }
            i += 1
            var result: [String] = []
            skipSpaces()
            if peek() == UInt8(ascii: "]") {
                i += 1
                return result
            }
            while true {
                skipSpaces()
                guard peek() == UInt8(ascii: "\"") else { throw typeError(key, "an array of strings") }
                result.append(try string())
                skipSpaces()
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return result
            }
        }

        private mutating func stringObject(_ key: Key) throws -> [String: String]? {
            if try null() { return nil }
            guard peek() == UInt8(ascii: "{") else { throw typeError(key, "an object of strings") }
            i += 1
            var result: [String: String] = [:]
            skipSpaces()
            if peek() == UInt8(ascii: "}") {
                i += 1
                return result
            }
            while true {
                skipSpaces()
                guard peek() == UInt8(ascii: "\"") else { throw syntaxError("expected a field name") }
                let name = try string()
                skipSpaces()
                try expect(UInt8(ascii: ":"))
                skipSpaces()
                guard peek() == UInt8(ascii: "\"") else { throw typeError(key, "an object of strings") }
                result[name] = try string()
                skipSpaces()
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return result
            }
        }

        private mutating func base64(_ key: Key) throws -> Data {
            guard peek() == UInt8(ascii: "\"") else { throw typeError(key, "a string") }
            let data = try withString { DeadLetterJSON.decodeBase64($0) }
            guard let data else { throw fieldError("invalid base64", key) }
            return data
        }

        private mutating func historyEntries() throws -> [DeadLetter.HistoryEntry]? {
            if try null() { return nil }
            guard peek() == UInt8(ascii: "[") else { throw typeError(.history, "an array") }
            i += 1
            var result: [DeadLetter.HistoryEntry] = []
            skipSpaces()
            if peek() == UInt8(ascii: "]") {
                i += 1
                return result
            }
            while true {
                skipSpaces()
                result.append(try historyEntry())
                skipSpaces()
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return result
            }
        }

        private mutating func historyEntry() throws -> DeadLetter.HistoryEntry {
            guard peek() == UInt8(ascii: "{") else { throw typeError(.history, "an array of objects") }
            i += 1
            var event: String?
            var at: Date?
            var entry = DeadLetter.HistoryEntry(event: .failed, at: Date(timeIntervalSince1970: 0))
            skipSpaces()
            if peek() == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    skipSpaces()
                    guard peek() == UInt8(ascii: "\"") else { throw syntaxError("expected a field name") }
                    let name = try string()
                    skipSpaces()
                    try expect(UInt8(ascii: ":"))
                    skipSpaces()
                    switch name {
                    case "event": event = try historyString(name)
                    case "at":
                        guard peek() == UInt8(ascii: "\"") else { throw historyError("expected a string", name) }
                        at = try withString { Timestamp.parse(utf8: $0) }
                        if at == nil { throw historyError("not an ISO 8601 timestamp", name) }
                    case "outcome": entry.outcome = try optionalHistoryString(name).map { .init(rawValue: $0) }
                    case "errorType": entry.errorType = try optionalHistoryString(name)
                    case "errorMessage": entry.errorMessage = try optionalHistoryString(name)
                    case "causes": entry.causes = try stringArray(.history) ?? []
                    case "reason": entry.reason = try optionalHistoryString(name).map { FailureReason(rawValue: $0) }
                    case "fingerprint": entry.fingerprint = try optionalHistoryString(name)
                    case "actor": entry.actor = try optionalHistoryString(name)
                    case "operation": entry.operation = try optionalHistoryString(name)
                    case "message": entry.message = try optionalHistoryString(name)
                    default: try skipValue()
                    }
                    skipSpaces()
                    if peek() == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    try expect(UInt8(ascii: "}"))
                    break
                }
            }
            guard let event else { throw historyError("missing required field", "event") }
            guard let at else { throw historyError("missing required field", "at") }
            entry.event = .init(rawValue: event)
            entry.at = at.roundedToMilliseconds
            return entry
        }

        private mutating func historyString(_ name: String) throws -> String {
            guard peek() == UInt8(ascii: "\"") else { throw historyError("expected a string", name) }
            return try string()
        }

        private mutating func optionalHistoryString(_ name: String) throws -> String? {
            if try null() { return nil }
            return try historyString(name)
        }

        // MARK: Errors

        func syntaxError(_ what: String, at position: Int? = nil) -> DeadLetterError {
            let column = (position ?? i) + 1
            return DeadLetterError(code: .invalidFormat, message: "not valid JSON at column \(column): \(what)")
        }

        private func fieldError(_ message: String, _ key: Key) -> DeadLetterError {
            DeadLetterError(code: .invalidFormat, message: message, field: key.rawValue)
        }

        private func historyError(_ message: String, _ name: String) -> DeadLetterError {
            DeadLetterError(code: .invalidFormat, message: message, field: "history.\(name)")
        }

        private func missing(_ key: Key) -> DeadLetterError {
            fieldError("missing required field", key)
        }

        private func typeError(_ key: Key, _ expected: String) -> DeadLetterError {
            guard let next = peek() else { return syntaxError("unexpected end of line") }
            let found: String
            switch next {
            case UInt8(ascii: "\""): found = "a string"
            case UInt8(ascii: "{"): found = "an object"
            case UInt8(ascii: "["): found = "an array"
            case UInt8(ascii: "n"): found = "null"
            case UInt8(ascii: "t"), UInt8(ascii: "f"): found = "a boolean"
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): found = "a number"
            default: return syntaxError("unexpected character")
            }
            return fieldError("expected \(expected), found \(found)", key)
        }
    }
}
