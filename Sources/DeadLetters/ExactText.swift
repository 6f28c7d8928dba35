/// A string compared and hashed by its UTF-8 bytes, as the stores' databases compare text (SQLite's `BINARY`,
/// PostgreSQL's "C" collation). Swift's `==` takes canonically equivalent strings for one ("é" composed, and
/// "e" followed by a combining accent), where a table keeps two rows: running totals counted in Swift must
/// key them as the table does.
package struct ExactText: Hashable, Sendable {
    package var string: String

    package init(_ string: String) {
        self.string = string
    }

    package static func == (a: ExactText, b: ExactText) -> Bool {
        a.string.utf8.elementsEqual(b.string.utf8)
    }

    /// The bytes in one call (imports and appends hash several of these per letter for their running totals;
    /// a call per byte cost more than the rest of the lookup).
    package func hash(into hasher: inout Hasher) {
        let utf8 = self.string.utf8
        hasher.combine(utf8.count)
        let done: Void? = utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }
}
