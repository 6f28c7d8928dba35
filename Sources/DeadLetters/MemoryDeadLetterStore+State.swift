#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension MemoryDeadLetterStore {
    /// A letter's id, packed into 16 bytes when it is a lower-case UUID (as every id this package makes),
    /// so that ids compare as integers and cost no allocation. Keys order as their id strings do.
    enum Key: Hashable, Comparable {
        case uuid(UInt64, UInt64)
        case other(String)

        init(_ id: String) {
            var id = id
            self = id.withUTF8 { Self.packUUID($0) } ?? .other(id)
        }

        var string: String {
            switch self {
            case .uuid(let high, let low): return Self.uuidString(high, low)
            case .other(let string): return string
            }
        }

        static func < (lhs: Key, rhs: Key) -> Bool {
            switch (lhs, rhs) {
            case (.uuid(let h1, let l1), .uuid(let h2, let l2)): return h1 != h2 ? h1 < h2 : l1 < l2
            case (.other(let a), .other(let b)): return a < b
            default: return lhs.string < rhs.string
            }
        }

        private static func packUUID(_ bytes: UnsafeBufferPointer<UInt8>) -> Key? {
            guard bytes.count == 36 else { return nil }
            var high: UInt64 = 0
            var low: UInt64 = 0
            var nibbles = 0
            for (index, byte) in bytes.enumerated() {
                if index == 8 || index == 13 || index == 18 || index == 23 {
                    guard byte == UInt8(ascii: "-") else { return nil }
                    continue
                }
                guard let value = hexValue(byte) else { return nil }
                if nibbles < 16 { high = high << 4 | value } else { low = low << 4 | value }
                nibbles += 1
            }
            return .uuid(high, low)
        }

        private static func uuidString(_ high: UInt64, _ low: UInt64) -> String {
            String(unsafeUninitializedCapacity: 36) { buffer in
                var position = 0
                for nibble in 0..<32 {
                    if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                        buffer[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    let word = nibble < 16 ? high : low
                    let shift = UInt64(60 - 4 * (nibble % 16))
                    buffer[position] = hexDigit(word >> shift & 0xF)
                    position += 1
                }
                return 36
            }
        }
    }

    /// A fingerprint of 16 lower-case hex digits (as ``Fingerprint`` makes them) packed into 8 bytes.
    static func packFingerprint(_ fingerprint: String) -> UInt64? {
        var fingerprint = fingerprint
        return fingerprint.withUTF8 { bytes -> UInt64? in
            guard bytes.count == 16 else { return nil }
            var value: UInt64 = 0
            for byte in bytes {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | digit
            }
            return value
        }
    }

    static func fingerprintString(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 { buffer[index] = hexDigit(value >> UInt64(60 - 4 * index) & 0xF) }
            return 16
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt64? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(byte - UInt8(ascii: "a") + 10)
        default: return nil
        }
    }

    private static func hexDigit(_ value: UInt64) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + UInt8(value) : UInt8(ascii: "a") + UInt8(value - 10)
    }

    /// One stored letter. To keep memory low, a packed id or fingerprint is not kept in `letter` too.
    struct Record {
        var key: Key
        var letter: DeadLetter
        var fingerprint: UInt64
        var flags: UInt8

        static let removed: UInt8 = 1
        static let packedFingerprint: UInt8 = 2

        init(_ letter: DeadLetter, key: Key? = nil) {
            self.key = key ?? Key(letter.id)
            self.letter = letter
            self.flags = 0
            self.fingerprint = 0
            if case .uuid = self.key { self.letter.id = "" }
            if let packed = MemoryDeadLetterStore.packFingerprint(letter.fingerprint) {
                self.fingerprint = packed
                self.flags = Self.packedFingerprint
                self.letter.fingerprint = ""
            }
        }

        var isRemoved: Bool { self.flags & Self.removed != 0 }

        /// The letter as it was stored, id and fingerprint included.
        var fullLetter: DeadLetter {
            var letter = self.letter
            if case .uuid = self.key { letter.id = self.key.string }
            if self.flags & Self.packedFingerprint != 0 {
                letter.fingerprint = MemoryDeadLetterStore.fingerprintString(self.fingerprint)
            }
            return letter
        }

        /// Removes the letter, keeping its key for ordering, and frees what it held.
        mutating func markRemoved() {
            self.flags = Self.removed
            self.letter = DeadLetter(
                id: "",
                source: "",
                reason: .unknown,
                errorType: "",
                errorMessage: "",
                firstFailedAt: self.letter.firstFailedAt,
                fingerprint: "",
                payload: .init()
            )
        }
    }

    /// Who holds a letter and until when (milliseconds since 1970).
    struct Lease {
        var owner: String
        var until: Int64
    }

    /// A filter prepared for records: ids and fingerprints compare packed.
    struct Matcher {
        let filter: DeadLetterFilter
        let keys: Set<Key>?
        let packedFingerprints: Set<UInt64>
        let fingerprints: Set<String>?
        let selectsAll: Bool

        init(_ filter: DeadLetterFilter) {
            self.selectsAll = filter.isEmpty
            self.keys = filter.ids.isEmpty ? nil : Set(filter.ids.map(Key.init))
            self.fingerprints = filter.fingerprints.isEmpty ? nil : Set(filter.fingerprints)
            self.packedFingerprints = Set(filter.fingerprints.compactMap(MemoryDeadLetterStore.packFingerprint))
            var rest = filter
            rest.ids = []
            rest.fingerprints = []
            self.filter = rest
        }

        func matches(_ record: Record) -> Bool {
            if record.isRemoved { return false }
            if self.selectsAll { return true }
            if let keys = self.keys, !keys.contains(record.key) { return false }
            if let fingerprints = self.fingerprints {
                if record.flags & Record.packedFingerprint != 0 {
                    if !self.packedFingerprints.contains(record.fingerprint) { return false }
                } else if !fingerprints.contains(record.letter.fingerprint) {
                    return false
                }
            }
            return self.filter.matches(record.letter)
        }
    }
}
