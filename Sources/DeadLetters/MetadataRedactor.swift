/// Replaces the values of secret metadata keys before anything is stored.
///
/// Keys match ignoring case, exactly otherwise: with the default keys, `Authorization` and `API-KEY` are
/// redacted, `authorization-hint` is not.
public struct MetadataRedactor: Sendable, Hashable {
    /// The keys redacted by default.
    public static let defaultKeys: Set<String> = ["password", "secret", "token", "authorization", "api-key", "cookie"]
    /// What a redacted value becomes.
    public static let placeholder = "[REDACTED]"

    /// The keys to redact, in lower case.
    public let keys: Set<String>

    /// Creates a redactor.
    /// - Parameter keys: the metadata keys whose values are replaced, matched ignoring case; default
    ///   ``defaultKeys``.
    public init(keys: Set<String> = MetadataRedactor.defaultKeys) {
        self.keys = Set(keys.map { $0.lowercased() })
        var shapes = [UInt32](repeating: 0, count: Self.shapeLengths)
        for key in self.keys {
            let utf8 = Array(key.utf8)
            if let first = utf8.first, utf8.count < Self.shapeLengths {
                shapes[utf8.count] |= Self.firstByteBit(first)
            } else {
                // A longer key is looked up whatever the shape.
                shapes = []
                break
            }
        }
        self.shapes = shapes
    }

    /// For each length below ``shapeLengths``, a bit for the first byte of every key of that length (``firstByteBit(_:)``);
    /// empty when some key is longer. An ASCII key whose length and first letter no secret key has is not
    /// one, and is passed without lowercasing and hashing it (that was 2% of a memory `add`).
    private let shapes: [UInt32]
    private static let shapeLengths = 64

    /// The bit of a lower-case first byte: one per letter, one for every other byte.
    private static func firstByteBit(_ byte: UInt8) -> UInt32 {
        let lower = byte | 0x20
        return lower >= 97 && lower <= 122 ? 1 << UInt32(lower - 97) : 1 << 26
    }

    /// Whether `key` surely is no secret key: ASCII (whose lowercasing keeps its length), and of a length and
    /// first letter that no secret key has.
    ///
    /// The key's bytes are read in place: through its `utf8` view (`first`, `count`, `allSatisfy`) this was a
    /// third of the redactor's time in a memory `add`.
    private func surelyPlain(_ key: String) -> Bool {
        guard !self.shapes.isEmpty else { return false }
        let plain: Bool? = key.utf8.withContiguousStorageIfAvailable { bytes in
            guard let first = bytes.first, bytes.count < Self.shapeLengths else { return false }
            var bits: UInt8 = 0
            for byte in bytes { bits |= byte }
            return bits < 0x80 && self.shapes[bytes.count] & Self.firstByteBit(first) == 0
        }
        return plain ?? false
    }

    /// `metadata` with the value of every configured key replaced by ``placeholder``.
    public func redact(_ metadata: [String: String]) -> [String: String] {
        guard !self.keys.isEmpty, !metadata.isEmpty else { return metadata }
        var result = metadata
        for key in metadata.keys where !self.surelyPlain(key) && self.keys.contains(key.lowercased()) {
            result[key] = Self.placeholder
        }
        return result
    }
}
