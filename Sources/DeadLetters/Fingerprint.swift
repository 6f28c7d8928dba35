/// The fingerprint of a failure: a stable hash of the error type and the normalized message, so that the
/// same failure on different items groups together.
///
/// Normalization replaces what changes from item to item with placeholders: quoted values (`'…'`, `"…"`,
/// `` `…` ``) with `<q>`, UUIDs with `<uuid>`, hex ids (eight or more hex digits with a digit among them, or
/// `0x…`) with `<hex>`, and numbers with `<n>`. The hash is 64-bit FNV-1a, written as 16 lower-case hex
/// digits: the same on every platform and in every process.
public enum Fingerprint {
    /// The fingerprint of a failure.
    /// - Parameters:
    ///   - errorType: the error's type name.
    ///   - message: the error's message, normalized before hashing.
    public static func compute(errorType: String, message: String) -> String {
        Self.hex(Self.value(errorType: errorType, message: message))
    }

    /// The fingerprint as the number its 16 hex digits write (the memory store keeps it so).
    static func value(errorType: String, message: String) -> UInt64 {
        var hasher = FNV1a()
        // Read in place (a `var` copy for `withUTF8` cost a retain and a release of each string).
        let hashedInPlace: Void? = errorType.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes { hasher.append(byte) }
        }
        if hashedInPlace == nil {
            for byte in errorType.utf8 { hasher.append(byte) }
        }
        hasher.append(0)
        let normalizedInPlace: Void? = message.utf8.withContiguousStorageIfAvailable { bytes in
            Self.normalize(bytes, into: &hasher)
        }
        if normalizedInPlace == nil {
            var message = message
            message.withUTF8 { Self.normalize($0, into: &hasher) }
        }
        return hasher.hash
    }

    /// `value` as 16 lower-case hex digits, as fingerprints are written.
    static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF
                buffer[index] = nibble < 10 ? 48 + nibble : 87 + nibble
            }
            return 16
        }
    }

    /// The message with quoted values, UUIDs, hex ids and numbers replaced by placeholders.
    public static func normalize(_ message: String) -> String {
        var message = message
        var out = [UInt8]()
        message.withUTF8 { bytes in
            out.reserveCapacity(bytes.count)
            Self.normalize(bytes, into: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Normalizes `b`, appending each byte of the result to `sink` (so that hashing needs no copy).
    ///
    /// Bytes are classed by a table, and a byte that can begin no placeholder (neither a quote nor a hex digit)
    /// is passed on at once: most of a message. Measured on a 33-byte message (one million fingerprints): 112-126
    /// ns each when the hash lived in memory and the strings were copied to be read, 58 ns now. A test compares
    /// this with a plain form of the rules on generated messages.
    private static func normalize<Sink: ByteSink>(_ b: UnsafeBufferPointer<UInt8>, into sink: inout Sink) {
        Self.classes.withUnsafeBufferPointer { classes in
            func isHex(_ c: UInt8) -> Bool { classes[Int(c)] & Self.hex != 0 }
            func isDigit(_ c: UInt8) -> Bool { classes[Int(c)] & Self.digit != 0 }
            func isWord(_ c: UInt8) -> Bool { classes[Int(c)] & Self.word != 0 }
            // The sink is worked on in a local that nothing captures, so that a hash stays in a register: kept
            // in memory (a closure captured it), each byte's step waited for the last one's store.
            var out = sink
            defer { sink = out }
            func emit(_ s: StaticString, into out: inout Sink) {
                s.withUTF8Buffer { for byte in $0 { out.append(byte) } }
            }
            var i = 0
            while i < b.count {
                let c = b[i]
                let kind = classes[Int(c)]
                if kind & (Self.quote | Self.hex) == 0 {
                    out.append(c)
                    i += 1
                    continue
                }
                // Quoted values.
                if kind & Self.quote != 0 {
                    var j = i + 1
                    while j < b.count, b[j] != c, b[j] != 10 { j += 1 }
                    if j < b.count, b[j] == c {
                        emit("<q>", into: &out)
                        i = j + 1
                        continue
                    }
                }
                let atBoundary = i == 0 || !isWord(b[i - 1])
                if atBoundary, kind & Self.hex != 0 {
                    // A UUID: 8-4-4-4-12 hex digits.
                    if i + 36 <= b.count, isUUID(b, at: i), i + 36 == b.count || !isWord(b[i + 36]) {
                        emit("<uuid>", into: &out)
                        i += 36
                        continue
                    }
                    // 0x-prefixed hex.
                    if c == 48, i + 2 < b.count, b[i + 1] == 120 || b[i + 1] == 88, isHex(b[i + 2]) {
                        var j = i + 2
                        while j < b.count, isHex(b[j]) { j += 1 }
                        if j == b.count || !isWord(b[j]) {
                            emit("<hex>", into: &out)
                            i = j
                            continue
                        }
                    }
                    // A hex id: eight or more hex digits, at least one a digit, standing alone.
                    var j = i
                    var sawDigit = false
                    while j < b.count, isHex(b[j]) {
                        if isDigit(b[j]) { sawDigit = true }
                        j += 1
                    }
                    if j - i >= 8, sawDigit, j == b.count || !isWord(b[j]) {
                        emit("<hex>", into: &out)
                        i = j
                        continue
                    }
                }
                if kind & Self.digit != 0 {
                    var j = i
                    while j < b.count, isDigit(b[j]) { j += 1 }
                    if j + 1 < b.count, b[j] == 46, isDigit(b[j + 1]) {
                        j += 1
                        while j < b.count, isDigit(b[j]) { j += 1 }
                    }
                    emit("<n>", into: &out)
                    i = j
                    continue
                }
                out.append(c)
                i += 1
            }
        }
    }

    private static let digit: UInt8 = 1
    private static let hex: UInt8 = 2
    private static let word: UInt8 = 4
    private static let quote: UInt8 = 8

    /// The classes of each byte: a digit (also hex and word), a hex letter (also word), another letter or `_`
    /// (word), a quote (`'`, `"`, `` ` ``).
    private static let classes: [UInt8] = (0..<256).map { byte -> UInt8 in
        switch byte {
        case 48...57: return Self.digit | Self.hex | Self.word
        case 97...102, 65...70: return Self.hex | Self.word
        case 103...122, 71...90, 95: return Self.word
        case 39, 34, 96: return Self.quote
        default: return 0
        }
    }

    private static func isUUID(_ b: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        for k in 0..<36 {
            let c = b[start + k]
            if k == 8 || k == 13 || k == 18 || k == 23 {
                guard c == 45 else { return false }
            } else {
                guard (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) else { return false }
            }
        }
        return true
    }
}

/// Where ``Fingerprint`` writes a normalized message: an array, or the hash directly.
protocol ByteSink {
    mutating func append(_ byte: UInt8)
}

extension [UInt8]: ByteSink {}

/// 64-bit FNV-1a.
struct FNV1a: ByteSink {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        self.hash ^= UInt64(byte)
        self.hash = self.hash &* 0x0000_0100_0000_01b3
    }
}
