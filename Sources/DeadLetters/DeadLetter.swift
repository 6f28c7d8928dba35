#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// An item that could not be processed, with everything needed to understand and recover it.
///
/// This is the stored format, version 1 (``formatVersion``): every export line and every JSON answer of the
/// `dlq` command and the HTTP API writes a dead letter as its `Codable` form does. A field's meaning never
/// changes; new fields come with defaults.
public struct DeadLetter: Sendable, Hashable, Identifiable {
    /// The version of the stored format this code writes, and the newest it reads.
    public static let formatVersion = 1

    /// A unique, time-ordered id (a UUIDv7 in lower case); kept across retries, redrives and replays.
    public var id: String
    /// Where the item came from: a queue, a topic, a job name, a webhook.
    public var source: String
    /// Why it failed.
    public var reason: FailureReason
    /// The type of the last error, as `String(describing: type(of: error))` writes it.
    public var errorType: String
    /// The last error's message.
    public var errorMessage: String
    /// The chain of errors beneath the last one, outermost first, as `"Type: message"`.
    public var causes: [String]
    /// How many times processing was attempted.
    public var attempts: Int
    /// When processing first failed (wall clock, millisecond precision).
    public var firstFailedAt: Date
    /// When processing last failed.
    public var lastFailedAt: Date
    /// When the next delayed attempt is due; set exactly when ``status`` is ``DeadLetterStatus/retrying``.
    public var nextAttemptAt: Date?
    /// When the letter expires and is archived by the queue's cleanup; `nil` for never.
    public var expiresAt: Date?
    /// Where the letter stands.
    public var status: DeadLetterStatus
    /// A stable hash of the error type and the normalized message, shared by letters that failed the
    /// same way (see ``Fingerprint``).
    public var fingerprint: String
    /// How many replays or redrives of this letter failed.
    public var replayCount: Int
    /// Context given by the producer, with secrets redacted before storage.
    public var metadata: [String: String]
    /// The payload's media type, when known.
    public var contentType: String?
    /// The item's bytes, exactly as received.
    public var payload: Data
    /// What happened to the letter after it was first stored (replays, redrives), oldest first.
    /// Written as `"history"` only when not empty.
    public var history: [HistoryEntry]

    /// Creates a dead letter.
    ///
    /// Timestamps are rounded to the millisecond, as the stored format keeps them.
    public init(
        id: String,
        source: String,
        reason: FailureReason,
        errorType: String,
        errorMessage: String,
        causes: [String] = [],
        attempts: Int = 1,
        firstFailedAt: Date,
        lastFailedAt: Date? = nil,
        nextAttemptAt: Date? = nil,
        expiresAt: Date? = nil,
        status: DeadLetterStatus = .dead,
        fingerprint: String? = nil,
        replayCount: Int = 0,
        metadata: [String: String] = [:],
        contentType: String? = nil,
        payload: Data,
        history: [HistoryEntry] = []
    ) {
        self.id = id
        self.source = source
        self.reason = reason
        self.errorType = errorType
        self.errorMessage = errorMessage
        self.causes = causes
        self.attempts = attempts
        self.firstFailedAt = firstFailedAt.roundedToMilliseconds
        self.lastFailedAt = (lastFailedAt ?? firstFailedAt).roundedToMilliseconds
        self.nextAttemptAt = nextAttemptAt?.roundedToMilliseconds
        self.expiresAt = expiresAt?.roundedToMilliseconds
        self.status = status
        self.fingerprint = fingerprint ?? Fingerprint.compute(errorType: errorType, message: errorMessage)
        self.replayCount = replayCount
        self.metadata = metadata
        self.contentType = contentType
        self.payload = payload
        self.history = history
    }

    /// The bytes a letter counts for against a queue's `maxBytes`: its payload, messages and metadata.
    public var storageSize: Int {
        var size = self.payload.count + self.errorMessage.utf8.count + self.errorType.utf8.count
        for cause in self.causes { size += cause.utf8.count }
        for (key, value) in self.metadata { size += key.utf8.count + value.utf8.count }
        return size
    }
}

extension DeadLetter {
    /// One event in a letter's life after it was first stored.
    public struct HistoryEntry: Sendable, Hashable, Codable {
        /// What happened: `"replayed"` or `"redriven"`, or a name a later version adds.
        public var event: String
        /// When it happened.
        public var at: Date
        /// `"succeeded"` or `"failed"`.
        public var outcome: String
        /// The error of a failed attempt.
        public var errorMessage: String?

        /// Creates a history entry.
        public init(event: String, at: Date, outcome: String, errorMessage: String? = nil) {
            self.event = event
            self.at = at.roundedToMilliseconds
            self.outcome = outcome
            self.errorMessage = errorMessage
        }

        enum CodingKeys: String, CodingKey {
            case event, at, outcome, errorMessage
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.event = try container.decode(String.self, forKey: .event)
            let at = try container.decode(String.self, forKey: .at)
            guard let date = Timestamp.parse(at) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .at,
                    in: container,
                    debugDescription: "not an ISO 8601 timestamp: \(at)"
                )
            }
            self.at = date
            self.outcome = try container.decode(String.self, forKey: .outcome)
            self.errorMessage = try container.decodeIfPresent(String.self, forKey: .errorMessage)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.event, forKey: .event)
            try container.encode(Timestamp.format(self.at), forKey: .at)
            try container.encode(self.outcome, forKey: .outcome)
            try container.encodeIfPresent(self.errorMessage, forKey: .errorMessage)
        }
    }
}

extension Date {
    /// The date rounded to the nearest millisecond, the precision of the stored format.
    public var roundedToMilliseconds: Date {
        Date(timeIntervalSince1970: Double(self.millisecondsSince1970) / 1000)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z, rounded to the nearest.
    public var millisecondsSince1970: Int64 {
        Int64((self.timeIntervalSince1970 * 1000).rounded())
    }

    /// The date `milliseconds` after 1970-01-01T00:00:00Z.
    public init(millisecondsSince1970 milliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
