public import Crypto

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Encrypts payloads at rest with AES-GCM (256-bit keys, swift-crypto).
///
/// A store wrapped in an ``EncryptedDeadLetterStore`` (or a queue whose
/// ``DeadLetterQueue/Configuration/payloadEncryption`` is set) keeps every payload sealed: the store file or
/// table holds only ciphertext, while the queue, the `dlq` command and the admin server see the payload as it
/// was received. Everything else of a letter (source, reason, error, metadata, times) stays readable, so
/// filters, summaries and groups work as before.
///
/// Each payload is sealed with a fresh random nonce, and the letter's id is authenticated with it, so a sealed
/// payload altered in the store, or copied onto another letter, is refused rather than handed out. The first
/// key is the current one: new and rewritten letters are sealed with it. Keys after it only open payloads
/// sealed earlier, which lets keys be rotated: add the new key first and keep the old one until no letter
/// uses it. Payloads stored before encryption was turned on are read as they are.
///
/// Sealed layout: the 4 bytes `00 64 6c 71` (`\0dlq`), a version byte (1), the 4-byte ``Key/id`` of the key,
/// then AES-GCM's combined box (12-byte nonce, ciphertext, 16-byte tag): 37 bytes more than the payload.
public struct PayloadEncryption: Sendable {
    /// A 256-bit key and its id.
    public struct Key: Sendable {
        /// The key.
        public let key: SymmetricKey
        /// 4 bytes derived from the key (SHA-256 of a label and the key), written with each sealed payload so
        /// that the right key is found; it reveals nothing usable about the key.
        public let id: [UInt8]

        /// Wraps a 256-bit key.
        /// - Throws: ``DeadLetterError`` `invalidConfiguration` when the key is not 256 bits.
        public init(_ key: SymmetricKey) throws {
            guard key.bitCount == 256 else {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message: "an encryption key must be 32 bytes (256 bits), not \(key.bitCount / 8)",
                    field: "payloadEncryption"
                )
            }
            self.key = key
            var hasher = SHA256()
            hasher.update(data: Array("swift-dead-letters payload key id".utf8))
            key.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            self.id = Array(hasher.finalize().prefix(4))
        }

        /// Reads a key written in base64 (32 bytes, as `head -c 32 /dev/urandom | base64` makes one).
        /// - Parameter name: where the text came from, named in errors (for example `DLQ_ENCRYPTION_KEY`);
        ///   errors never repeat the text.
        /// - Throws: ``DeadLetterError`` `invalidConfiguration`.
        public init(base64 text: String, name: String = "payloadEncryption") throws {
            let trimmed = text.utf8.drop(while: Self.isSpace).reversed().drop(while: Self.isSpace).reversed()
            guard !trimmed.isEmpty else {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message: text.isEmpty
                        ? "is empty: a key is 32 bytes in base64 (make one with: head -c 32 /dev/urandom | base64)"
                        : "holds only blanks: a key is 32 bytes in base64 (make one with: head -c 32 /dev/urandom "
                            + "| base64); to use no key, leave the setting empty or unset",
                    field: name
                )
            }
            guard let bytes = Data(base64Encoded: String(decoding: trimmed, as: UTF8.self)) else {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message: "not base64 (make a key with: head -c 32 /dev/urandom | base64)",
                    field: name
                )
            }
            guard bytes.count == 32 else {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message: "a key must be 32 bytes (256 bits) in base64, not \(bytes.count) bytes",
                    field: name
                )
            }
            try self.init(SymmetricKey(data: bytes))
        }

        private static func isSpace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
        }

        /// The id as 8 hexadecimal digits, as errors and logs name the key.
        public var idDescription: String { PayloadEncryption.hex(self.id) }
    }

    /// The key that seals, then the keys that only open.
    public let keys: [Key]

    /// Encrypts with `key`; `previousKeys` still open payloads sealed with them.
    public init(key: Key, previousKeys: [Key] = []) {
        self.keys = [key] + previousKeys
    }

    /// Encrypts with `key`; `previousKeys` still open payloads sealed with them.
    /// - Throws: ``DeadLetterError`` `invalidConfiguration` when a key is not 256 bits.
    public init(key: SymmetricKey, previousKeys: [SymmetricKey] = []) throws {
        try self.init(key: Key(key), previousKeys: previousKeys.map { try Key($0) })
    }

    /// The bytes every sealed payload starts with.
    static let magic: [UInt8] = [0x00, 0x64, 0x6C, 0x71, 0x01]
    static let headerSize = 9
    /// How many bytes sealing adds to a payload: 37.
    public static let overhead = headerSize + 12 + 16

    /// Whether `payload` was sealed by a ``PayloadEncryption`` (by any key).
    public static func isSealed(_ payload: Data) -> Bool {
        payload.count >= Self.overhead && payload.prefix(Self.magic.count).elementsEqual(Self.magic)
    }

    /// Seals the payload of the letter with id `id` with the current key.
    /// - Throws: ``DeadLetterError`` `encryption` if AES-GCM fails (it does not for valid keys).
    public func seal(_ payload: Data, id: String) throws -> Data {
        let current = self.keys[0]
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.seal(payload, using: current.key, authenticating: Data(id.utf8))
        } catch {
            throw DeadLetterError(code: .encryption, message: "sealing the payload failed: \(error)", id: id)
        }
        guard let combined = box.combined else {
            throw DeadLetterError(code: .encryption, message: "sealing the payload failed: no combined box", id: id)
        }
        var sealed = Data(capacity: Self.headerSize + combined.count)
        sealed.append(contentsOf: Self.magic)
        sealed.append(contentsOf: current.id)
        sealed.append(combined)
        return sealed
    }

    /// Opens the payload of the letter with id `id`; a payload that is not sealed is returned as it is.
    /// - Throws: ``DeadLetterError`` `encryption` when no configured key has the payload's key id, or when
    ///   the payload does not authenticate (altered in the store, or sealed for another letter).
    public func open(_ payload: Data, id: String) throws -> Data {
        guard Self.isSealed(payload) else { return payload }
        let start = payload.startIndex
        let keyID = Array(payload[(start + Self.magic.count)..<(start + Self.headerSize)])
        let candidates = self.keys.filter { $0.id == keyID }
        guard !candidates.isEmpty else {
            throw DeadLetterError(
                code: .encryption,
                message: "the payload is sealed with key \(Self.hex(keyID)), which is not among the configured keys ("
                    + self.keys.map(\.idDescription).joined(separator: ", ") + ")",
                id: id
            )
        }
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.SealedBox(combined: payload[(start + Self.headerSize)...])
        } catch {
            throw DeadLetterError(code: .encryption, message: "the sealed payload is truncated", id: id)
        }
        // Two keys may share a 4-byte id: each is tried.
        for key in candidates {
            if let opened = try? AES.GCM.open(box, using: key.key, authenticating: Data(id.utf8)) { return opened }
        }
        throw DeadLetterError(
            code: .encryption,
            message: "the sealed payload does not authenticate with key \(Self.hex(keyID)): it was altered, "
                + "or it belongs to another letter",
            id: id
        )
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
