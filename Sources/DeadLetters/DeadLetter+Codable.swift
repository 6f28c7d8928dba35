#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetter: Codable {
    /// The keys of the stored format, in the order the format writes them.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case v, id, source, reason, errorType, errorMessage, causes, attempts, firstFailedAt, lastFailedAt
        case nextAttemptAt, expiresAt, status, fingerprint, replayCount, metadata, contentType, payload, history
        case historyOmitted, abandonedClaims
    }

    /// The error type a letter gets when its stored form has none: `"Error"`.
    public static let defaultErrorType = "Error"

    /// Decodes a letter in the stored format, version 2 or 1.
    ///
    /// Required: `v`, `id`, `source`, `reason`, `errorMessage`, `attempts`, `firstFailedAt`, `lastFailedAt`,
    /// `payload`. The others default: `errorType` to ``defaultErrorType``, `causes`, `metadata` and `history`
    /// to empty, `nextAttemptAt`, `expiresAt` and `contentType` to `nil`, `status` to `dead`, `replayCount` to
    /// 0, and `fingerprint` to the one ``Fingerprint`` computes. Unknown keys are ignored. A history that does
    /// not begin with a `failed` entry (every version-1 letter) gets one made from the top-level error.
    /// - Throws: ``DeadLetterError`` with code `invalidFormat` naming the field: a missing required field, a
    ///   value of the wrong type, a timestamp that is not ISO 8601, payload that is not base64, `v` newer
    ///   than ``formatVersion``, an empty id or one holding a control character, or `attempts` or
    ///   `replayCount` negative or above ``maximumCount``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try Self.required(Int.self, .v, in: container, expected: "an integer")
        guard version <= Self.formatVersion else {
            throw Self.formatError(
                "format version \(version) is newer than this version (\(Self.formatVersion)) reads",
                .v
            )
        }
        guard version >= 1 else { throw Self.formatError("format version \(version) is not valid", .v) }
        let id = try Self.required(String.self, .id, in: container, expected: "a string")
        let source = try Self.required(String.self, .source, in: container, expected: "a string")
        let reason = try Self.required(String.self, .reason, in: container, expected: "a string")
        let errorMessage = try Self.required(String.self, .errorMessage, in: container, expected: "a string")
        let attempts = try Self.required(Int.self, .attempts, in: container, expected: "an integer")
        let errorType =
            try Self.optional(String.self, .errorType, in: container, expected: "a string") ?? Self.defaultErrorType
        let causes = try Self.optional([String].self, .causes, in: container, expected: "an array of strings") ?? []
        let firstFailedAt = try Self.timestamp(.firstFailedAt, in: container)
        let lastFailedAt = try Self.timestamp(.lastFailedAt, in: container)
        let nextAttemptAt = try Self.optionalTimestamp(.nextAttemptAt, in: container)
        let expiresAt = try Self.optionalTimestamp(.expiresAt, in: container)
        let statusName = try Self.optional(String.self, .status, in: container, expected: "a string")
        let fingerprint = try Self.optional(String.self, .fingerprint, in: container, expected: "a string")
        let replayCount = try Self.optional(Int.self, .replayCount, in: container, expected: "an integer") ?? 0
        let metadata =
            try Self.optional([String: String].self, .metadata, in: container, expected: "an object of strings")
            ?? [:]
        let contentType = try Self.optional(String.self, .contentType, in: container, expected: "a string")
        let payloadText = try Self.required(String.self, .payload, in: container, expected: "a string")
        let history = try Self.optional([HistoryEntry].self, .history, in: container, expected: "an array") ?? []
        let historyOmitted =
            try Self.optional(Int.self, .historyOmitted, in: container, expected: "an integer") ?? 0
        let abandonedClaims =
            try Self.optional(Int.self, .abandonedClaims, in: container, expected: "an integer") ?? 0

        var status = DeadLetterStatus.dead
        if let statusName {
            guard let known = DeadLetterStatus(rawValue: statusName) else {
                throw Self.formatError("unknown status '\(statusName)'", .status)
            }
            status = known
        }
        guard let payload = Data(base64Encoded: payloadText) else {
            throw Self.formatError("invalid base64", .payload)
        }
        try Self.validate(id: id, source: source, reason: reason, attempts: attempts, replayCount: replayCount)
        try Self.validate(historyOmitted: historyOmitted, abandonedClaims: abandonedClaims)
        self.init(
            id: id,
            source: source,
            reason: FailureReason(rawValue: reason),
            errorType: errorType,
            errorMessage: errorMessage,
            causes: causes,
            attempts: attempts,
            firstFailedAt: firstFailedAt,
            lastFailedAt: lastFailedAt,
            nextAttemptAt: nextAttemptAt,
            expiresAt: expiresAt,
            status: status,
            fingerprint: fingerprint,
            replayCount: replayCount,
            metadata: metadata,
            contentType: contentType,
            payload: payload,
            history: history,
            historyOmitted: historyOmitted,
            abandonedClaims: abandonedClaims
        )
    }

    /// Encodes the letter in the stored format, version ``formatVersion``: `nextAttemptAt`, `expiresAt` and
    /// `contentType` are written as `null` when `nil`, `history` always (it holds at least the first failure),
    /// `historyOmitted` and `abandonedClaims` only when not 0, timestamps as
    /// ``Timestamp`` writes them and the payload in standard base64.
    ///
    /// The key order is the format's only with an encoder that keeps insertion order; ``DeadLetterJSON``
    /// writes the canonical bytes, and much faster.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.formatVersion, forKey: .v)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.source, forKey: .source)
        try container.encode(self.reason.rawValue, forKey: .reason)
        try container.encode(self.errorType, forKey: .errorType)
        try container.encode(self.errorMessage, forKey: .errorMessage)
        try container.encode(self.causes, forKey: .causes)
        try container.encode(self.attempts, forKey: .attempts)
        try container.encode(Timestamp.format(self.firstFailedAt), forKey: .firstFailedAt)
        try container.encode(Timestamp.format(self.lastFailedAt), forKey: .lastFailedAt)
        if let nextAttemptAt = self.nextAttemptAt {
            try container.encode(Timestamp.format(nextAttemptAt), forKey: .nextAttemptAt)
        } else {
            try container.encodeNil(forKey: .nextAttemptAt)
        }
        if let expiresAt = self.expiresAt {
            try container.encode(Timestamp.format(expiresAt), forKey: .expiresAt)
        } else {
            try container.encodeNil(forKey: .expiresAt)
        }
        try container.encode(self.status.rawValue, forKey: .status)
        try container.encode(self.fingerprint, forKey: .fingerprint)
        try container.encode(self.replayCount, forKey: .replayCount)
        try container.encode(self.metadata, forKey: .metadata)
        if let contentType = self.contentType {
            try container.encode(contentType, forKey: .contentType)
        } else {
            try container.encodeNil(forKey: .contentType)
        }
        try container.encode(self.payload.base64EncodedString(), forKey: .payload)
        try container.encode(self.history, forKey: .history)
        if self.historyOmitted != 0 { try container.encode(self.historyOmitted, forKey: .historyOmitted) }
        if self.abandonedClaims != 0 { try container.encode(self.abandonedClaims, forKey: .abandonedClaims) }
    }
}

extension DeadLetter {
    static func formatError(_ message: String, _ key: CodingKeys) -> DeadLetterError {
        DeadLetterError(code: .invalidFormat, message: message, field: key.rawValue)
    }

    /// Checks the counters of the lifecycle: not negative, at most ``maximumCount``.
    static func validate(historyOmitted: Int, abandonedClaims: Int) throws {
        if historyOmitted < 0 { throw formatError("must not be negative", .historyOmitted) }
        if abandonedClaims < 0 { throw formatError("must not be negative", .abandonedClaims) }
        if historyOmitted > maximumCount {
            throw formatError("must be at most \(maximumCount), not \(historyOmitted)", .historyOmitted)
        }
        if abandonedClaims > maximumCount {
            throw formatError("must be at most \(maximumCount), not \(abandonedClaims)", .abandonedClaims)
        }
    }

    private static func required<T: Decodable>(
        _ type: T.Type,
        _ key: CodingKeys,
        in container: KeyedDecodingContainer<CodingKeys>,
        expected: String
    ) throws -> T {
        guard container.contains(key) else { throw formatError("missing required field", key) }
        do {
            return try container.decode(T.self, forKey: key)
        } catch let error as DeadLetterError {
            throw error
        } catch {
            throw formatError("expected \(expected)", key)
        }
    }

    private static func optional<T: Decodable>(
        _ type: T.Type,
        _ key: CodingKeys,
        in container: KeyedDecodingContainer<CodingKeys>,
        expected: String
    ) throws -> T? {
        do {
            return try container.decodeIfPresent(T.self, forKey: key)
        } catch let error as DeadLetterError {
            throw error
        } catch {
            throw formatError("expected \(expected)", key)
        }
    }

    private static func timestamp(_ key: CodingKeys, in container: KeyedDecodingContainer<CodingKeys>) throws -> Date {
        let text = try Self.required(String.self, key, in: container, expected: "a string")
        guard let date = Timestamp.parse(text) else { throw formatError("not an ISO 8601 timestamp", key) }
        return date
    }

    private static func optionalTimestamp(
        _ key: CodingKeys,
        in container: KeyedDecodingContainer<CodingKeys>
    ) throws -> Date? {
        guard let text = try Self.optional(String.self, key, in: container, expected: "a string") else { return nil }
        guard let date = Timestamp.parse(text) else { throw formatError("not an ISO 8601 timestamp", key) }
        return date
    }
}
