#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The order of a page of letters (``DeadLetterStore/page(_:sortedBy:after:limit:)``). Ties are broken by id,
/// in the same direction, so every order is total and paging by cursor never skips or repeats a letter.
///
/// An extensible enum: more orders may be added.
public struct DeadLetterSort: Sendable, Hashable, CustomStringConvertible {
    package enum Key: String, Sendable, Hashable, CaseIterable {
        case id
        case lastFailed = "last-failed"
        case firstFailed = "first-failed"
        case attempts
        case source
    }

    package let key: Key

    private init(_ key: Key) {
        self.key = key
    }

    /// Id order, oldest first (ids are time-ordered): how ``DeadLetterStore/page(_:after:limit:)`` lists.
    public static let id = DeadLetterSort(.id)
    /// The latest last failure first.
    public static let lastFailed = DeadLetterSort(.lastFailed)
    /// The earliest first failure first: the letters that have waited longest.
    public static let firstFailed = DeadLetterSort(.firstFailed)
    /// The most attempts first.
    public static let attempts = DeadLetterSort(.attempts)
    /// By source, A to Z (by UTF-8 bytes).
    public static let source = DeadLetterSort(.source)

    /// Every order, in the order of its documentation.
    public static let all: [DeadLetterSort] = Key.allCases.map(DeadLetterSort.init)

    /// The order's name, as `dlq --sort` and the API's `sort=` take it: `id`, `last-failed`, `first-failed`,
    /// `attempts`, `source`.
    public var rawValue: String { self.key.rawValue }

    /// The order named `rawValue`, or `nil`.
    public init?(rawValue: String) {
        guard let key = Key(rawValue: rawValue) else { return nil }
        self.key = key
    }

    public var description: String { self.rawValue }

    /// Whether the order is descending (the latest, the most first).
    package var isDescending: Bool { self.key == .lastFailed || self.key == .attempts }

    /// The sort key of `letter`: text compared by UTF-8 bytes, or an integer.
    package func value(of letter: DeadLetter) -> SortValue {
        switch self.key {
        case .id: return .text(letter.id)
        case .lastFailed: return .integer(letter.lastFailedAt.millisecondsSince1970)
        case .firstFailed: return .integer(letter.firstFailedAt.millisecondsSince1970)
        case .attempts: return .integer(Int64(letter.attempts))
        case .source: return .text(letter.source)
        }
    }

    /// A sort key's value.
    package enum SortValue: Sendable, Hashable {
        case text(String)
        case integer(Int64)

        /// Strictly before `other` in ascending order (text by UTF-8 bytes, as SQL's "C" collation and SQLite).
        package func precedes(_ other: SortValue) -> Bool {
            switch (self, other) {
            case (.integer(let a), .integer(let b)): return a < b
            case (.text(let a), .text(let b)): return a.utf8.lexicographicallyPrecedes(b.utf8)
            case (.integer, .text): return true
            case (.text, .integer): return false
            }
        }
    }

    /// Whether `a` comes before `b` in this order (key, then id, in the same direction).
    package func orders(_ a: DeadLetter, before b: DeadLetter) -> Bool {
        let ka = self.value(of: a)
        let kb = self.value(of: b)
        let ascending: Bool
        if ka == kb {
            ascending = a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
            if a.id == b.id { return false }
        } else {
            ascending = ka.precedes(kb)
        }
        return self.isDescending ? !ascending : ascending
    }

    /// The cursor after `letter`: the order's name, its sort key and its id (`attempts~3~ID`,
    /// `source~6~ordersID`, the length of a text key in UTF-8 bytes first). For ``id`` the id alone, as
    /// ``DeadLetterStore/page(_:after:limit:)`` takes it.
    package func cursor(after letter: DeadLetter) -> String {
        switch self.value(of: letter) {
        case _ where self.key == .id: return letter.id
        case .integer(let value): return "\(self.rawValue)~\(value)~\(letter.id)"
        case .text(let text): return "\(self.rawValue)~\(text.utf8.count)~\(text)\(letter.id)"
        }
    }

    /// The sort key and id in `cursor`, as ``cursor(after:)`` wrote it.
    /// - Throws: ``DeadLetterError/Code/invalidFilter`` when it is not a cursor of this order.
    package func position(_ cursor: String) throws -> (value: SortValue, id: String) {
        if self.key == .id { return (.text(cursor), cursor) }
        let bad = DeadLetterError(
            code: .invalidFilter,
            message: "the cursor is not one of a page sorted by \(self.rawValue); pass the previous page's nextCursor"
        )
        guard cursor.hasPrefix(self.rawValue + "~") else { throw bad }
        let cursor = cursor.dropFirst(self.rawValue.count + 1)
        guard let tilde = cursor.firstIndex(of: "~"), let number = Int64(cursor[..<tilde]) else { throw bad }
        let rest = cursor[cursor.index(after: tilde)...]
        switch self.key {
        case .source:
            let bytes = Array(rest.utf8)
            guard number >= 0, number <= bytes.count,
                let text = String(validating: bytes[..<Int(number)], as: UTF8.self),
                let id = String(validating: bytes[Int(number)...], as: UTF8.self), !id.isEmpty
            else { throw bad }
            return (.text(text), id)
        default:
            guard !rest.isEmpty else { throw bad }
            return (.integer(number), String(rest))
        }
    }
}
