#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterJSON {
    /// A JSON value read whole, for the small documents stores keep beside the letters (operations,
    /// instances); letters are read field by field instead.
    package enum Node: Sendable, Equatable {
        case null
        case bool(Bool)
        /// A number, as written.
        case number(String)
        case string(String)
        case array([Node])
        case object([String: Node])

        package subscript(_ key: String) -> Node? {
            if case .object(let fields) = self { return fields[key] }
            return nil
        }

        package var string: String? {
            if case .string(let value) = self { return value }
            return nil
        }

        package var int64: Int64? {
            if case .number(let text) = self { return Int64(text) }
            return nil
        }

        package var int: Int? { self.int64.flatMap { Int(exactly: $0) } }

        package var double: Double? {
            if case .number(let text) = self { return Double(text) }
            return nil
        }

        package var bool: Bool? {
            if case .bool(let value) = self { return value }
            return nil
        }

        /// An object's string fields (other fields left out).
        package var stringObject: [String: String]? {
            guard case .object(let fields) = self else { return nil }
            return fields.compactMapValues(\.string)
        }

        package var strings: [String]? {
            guard case .array(let items) = self else { return nil }
            return items.compactMap(\.string)
        }
    }

    /// Reads one JSON value.
    /// - Throws: ``DeadLetterError/Code/invalidFormat`` naming what is wrong.
    package static func node(_ text: String) throws -> Node {
        var text = text
        return try text.withUTF8 { bytes in
            var parser = Parser(bytes)
            parser.skipSpaces()
            let node = try parser.node()
            parser.skipSpaces()
            guard parser.peek() == nil else { throw parser.syntaxError("text after the value") }
            return node
        }
    }
}

extension DeadLetterJSON.Parser {
    mutating func node(depth: Int = 0) throws -> DeadLetterJSON.Node {
        guard depth < Self.maximumDepth else { throw syntaxError("values nested too deeply") }
        guard let c = peek() else { throw syntaxError("unexpected end of line") }
        switch c {
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "{"):
            i += 1
            var fields: [String: DeadLetterJSON.Node] = [:]
            skipSpaces()
            if peek() == UInt8(ascii: "}") {
                i += 1
                return .object(fields)
            }
            while true {
                skipSpaces()
                guard peek() == UInt8(ascii: "\"") else { throw syntaxError("expected a field name") }
                let key = try string()
                skipSpaces()
                try expect(UInt8(ascii: ":"))
                skipSpaces()
                fields[key] = try node(depth: depth + 1)
                skipSpaces()
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return .object(fields)
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [DeadLetterJSON.Node] = []
            skipSpaces()
            if peek() == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                skipSpaces()
                items.append(try node(depth: depth + 1))
                skipSpaces()
                if peek() == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return .array(items)
            }
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            let start = i
            try skipValue(depth: depth)
            return .bool(i - start == 4)
        case UInt8(ascii: "n"):
            try skipValue(depth: depth)
            return .null
        default:
            let start = i
            try skipValue(depth: depth)
            return .number(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self))
        }
    }
}
