#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        Self.same(a.string, b.string)
    }

    /// Whether `a` and `b` are the same string value: the same 16 bytes (the same inline text, or the same
    /// storage with the same count), which implies the same bytes; `false` says nothing.
    package static func identical(_ a: String, _ b: String) -> Bool {
        unsafeBitCast(a, to: (UInt64, UInt64).self) == unsafeBitCast(b, to: (UInt64, UInt64).self)
    }

    /// Whether `a` and `b` hold the same UTF-8 bytes.
    ///
    /// The same string value twice (one literal, one interned string) is found by its 16 bytes alone, and
    /// others by one `memcmp`: comparing the two `utf8` views element by element was 6% of a memory `add`
    /// (perf, 300,000 letters), which compares its source, error type and metadata with the last ones stored.
    package static func same(_ a: String, _ b: String) -> Bool {
        if Self.identical(a, b) { return true }
        let (first, second) = (a.utf8, b.utf8)
        guard first.count == second.count else { return false }
        let equal = first.withContiguousStorageIfAvailable { x in
            second.withContiguousStorageIfAvailable { y in
                x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
            }
        }
        return (equal ?? nil) ?? first.elementsEqual(second)
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
