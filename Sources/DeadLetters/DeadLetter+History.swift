#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension DeadLetter {
    /// One event in a letter's life: the failure that dead-lettered it (always the first entry), then every
    /// retry, redrive, replay, park, unpark, edit, abandoned claim, expiry and removal, oldest first.
    ///
    /// Written as an object with `event` and `at`, and, where they apply, `outcome`, `errorType`,
    /// `errorMessage`, `causes`, `reason`, `fingerprint`, `actor`, `operation` and `message`.
    public struct HistoryEntry: Sendable, Hashable {
        /// What happened.
        public var event: Event
        /// When it happened (millisecond precision).
        public var at: Date
        /// How an attempt ended, for events that run the letter (`retried`, `redriven`, `replayed`).
        public var outcome: Outcome?
        /// The error type of a failed attempt (or of the first failure).
        public var errorType: String?
        /// The error message of a failed attempt (or of the first failure).
        public var errorMessage: String?
        /// The errors beneath it, outermost first, as `"Type: message"`; empty when none.
        public var causes: [String]
        /// The reason of a failed attempt (or of the first failure).
        public var reason: FailureReason?
        /// The fingerprint of the failure, for the first entry and failed attempts.
        public var fingerprint: String?
        /// Who did it: a person (`DLQ_ACTOR`, `user@host`, a token's name) or a service instance.
        public var actor: String?
        /// The id shared by everything one redrive, replay or purge did.
        public var operation: String?
        /// More about the event, in words: why a letter was parked, what an edit replaced, …
        public var message: String?

        /// Creates a history entry.
        public init(
            event: Event,
            at: Date,
            outcome: Outcome? = nil,
            errorType: String? = nil,
            errorMessage: String? = nil,
            causes: [String] = [],
            reason: FailureReason? = nil,
            fingerprint: String? = nil,
            actor: String? = nil,
            operation: String? = nil,
            message: String? = nil
        ) {
            self.event = event
            self.at = at.roundedToMilliseconds
            self.outcome = outcome
            self.errorType = errorType
            self.errorMessage = errorMessage
            self.causes = causes
            self.reason = reason
            self.fingerprint = fingerprint
            self.actor = actor
            self.operation = operation
            self.message = message
        }

        /// Creates a history entry as version 1 of the stored format wrote it.
        @available(*, deprecated, message: "use init(event:at:outcome:errorType:errorMessage:…) with Event and Outcome")
        public init(event: String, at: Date, outcome: String, errorMessage: String? = nil) {
            self.init(
                event: Event(rawValue: event),
                at: at,
                outcome: Outcome(rawValue: outcome),
                errorMessage: errorMessage
            )
        }

        /// The entry of a letter's first failure, made from its own error fields.
        public init(firstFailureOf letter: DeadLetter) {
            self.init(
                event: .failed,
                at: letter.firstFailedAt,
                outcome: nil,
                errorType: letter.errorType,
                errorMessage: letter.errorMessage,
                causes: letter.causes,
                reason: letter.reason,
                fingerprint: letter.fingerprint
            )
        }
    }
}

extension DeadLetter.HistoryEntry {
    /// What happened to a letter: an extensible set of names, like ``FailureReason``.
    public struct Event: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
        /// The stored name.
        public let rawValue: String

        /// An event by its stored name.
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { self.rawValue }

        /// The failure that dead-lettered the item: always the first entry, never overwritten.
        public static let failed = Event(rawValue: "failed")
        /// A delayed attempt by the running service.
        public static let retried = Event(rawValue: "retried")
        /// People handed the letter back to the running service (it is due now).
        public static let redriven = Event(rawValue: "redriven")
        /// People ran the letter through a handler or a command.
        public static let replayed = Event(rawValue: "replayed")
        /// The letter was set aside: retries, redrives and replays leave it alone.
        public static let parked = Event(rawValue: "parked")
        /// A parked letter was handed back to the running service.
        public static let unparked = Event(rawValue: "unparked")
        /// People replaced the letter's payload.
        public static let edited = Event(rawValue: "edited")
        /// Claims of the letter ended without an outcome (the process died or hung while running it).
        public static let abandoned = Event(rawValue: "abandoned")
        /// The letter's time to live ran out; written into the archived copy.
        public static let expired = Event(rawValue: "expired")
        /// A redrive was called off before the letter ran.
        public static let cancelled = Event(rawValue: "cancelled")
        /// People purged the letter; written into the archived copy.
        public static let purged = Event(rawValue: "purged")
        /// People deleted the letter; written into the archived copy.
        public static let deleted = Event(rawValue: "deleted")
    }

    /// How an attempt ended.
    public struct Outcome: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
        /// The stored name.
        public let rawValue: String

        /// An outcome by its stored name.
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { self.rawValue }

        /// The handler or command succeeded.
        public static let succeeded = Outcome(rawValue: "succeeded")
        /// It failed; the entry carries the error.
        public static let failed = Outcome(rawValue: "failed")
    }
}

extension DeadLetter {
    /// How many history entries a letter keeps: its first failure and the newest ``maxRecentHistory``.
    public static let maxRecentHistory = 100

    /// Appends `entry` to the history, keeping the first failure and the newest ``maxRecentHistory`` entries;
    /// the ones left out are counted in ``historyOmitted``.
    public mutating func record(_ entry: HistoryEntry) {
        self.recordedHistory.append(entry)
        let explicitFirst = self.recordedHistory.first?.event == .failed ? 1 : 0
        let excess = self.recordedHistory.count - explicitFirst - Self.maxRecentHistory
        if excess > 0 {
            self.recordedHistory.removeSubrange(explicitFirst..<(explicitFirst + excess))
            self.historyOmitted = self.historyOmitted.addingClamped(excess)
        }
    }

    /// The history as stores keep it: the first failure is left out while it is still the letter's own
    /// error (``errorType``, ``errorMessage``, … unchanged since), so that a letter that failed once costs
    /// nothing extra. Pass it back as `history:` to ``init(id:source:reason:errorType:errorMessage:causes:attempts:firstFailedAt:lastFailedAt:nextAttemptAt:expiresAt:status:fingerprint:replayCount:metadata:contentType:payload:history:historyOmitted:abandonedClaims:)``.
    public var storedHistory: [HistoryEntry] { self.recordedHistory }

    /// Writes the first failure out of the letter's own error fields before they change, so it is never lost.
    mutating func keepFirstFailure(
        reason: FailureReason? = nil,
        errorType: String? = nil,
        errorMessage: String? = nil,
        causes: [String]? = nil,
        fingerprint: String? = nil
    ) {
        guard self.recordedHistory.first?.event != .failed else { return }
        let entry = HistoryEntry(
            event: .failed,
            at: self.firstFailedAt,
            errorType: errorType ?? self.errorType,
            errorMessage: errorMessage ?? self.errorMessage,
            causes: causes ?? self.causes,
            reason: reason ?? self.reason,
            fingerprint: fingerprint ?? self.fingerprint
        )
        self.recordedHistory.insert(entry, at: 0)
    }

    /// An error field changed from the old value given: the first failure is written out from the old values
    /// (once), and dropped again if the fields are back to exactly the first failure (so that a letter reads
    /// back from a store equal to itself).
    mutating func errorChanged(
        reason: FailureReason? = nil,
        errorType: String? = nil,
        errorMessage: String? = nil,
        causes: [String]? = nil,
        fingerprint: String? = nil
    ) {
        self.keepFirstFailure(
            reason: reason,
            errorType: errorType,
            errorMessage: errorMessage,
            causes: causes,
            fingerprint: fingerprint
        )
        if let first = self.recordedHistory.first, first == HistoryEntry(firstFailureOf: self) {
            self.recordedHistory.removeFirst()
        }
    }

    /// `history` as given to the initializer or setter, without a first entry that is the letter's own error.
    mutating func setHistory(_ history: [HistoryEntry]) {
        if let first = history.first, first.event == .failed, first == HistoryEntry(firstFailureOf: self) {
            self.recordedHistory = Array(history.dropFirst())
        } else {
            self.recordedHistory = history
        }
    }
}

extension Int {
    /// `self + other`, or `Int.max` / `Int.min` where that overflows.
    func addingClamped(_ other: Int) -> Int {
        let (sum, overflow) = self.addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}

extension DeadLetter.HistoryEntry: Codable {
    enum CodingKeys: String, CodingKey {
        case event, at, outcome, errorType, errorMessage, causes, reason, fingerprint, actor, operation, message
    }

    /// Decodes an entry: `event` and `at` are required, every other field is optional (`outcome` too, which
    /// version 1 always wrote).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let event = try container.decode(String.self, forKey: .event)
        let at = try container.decode(String.self, forKey: .at)
        guard let date = Timestamp.parse(at) else {
            throw DecodingError.dataCorruptedError(
                forKey: .at,
                in: container,
                debugDescription: "not an ISO 8601 timestamp: \(at)"
            )
        }
        self.init(
            event: Event(rawValue: event),
            at: date,
            outcome: try container.decodeIfPresent(String.self, forKey: .outcome).map(Outcome.init(rawValue:)),
            errorType: try container.decodeIfPresent(String.self, forKey: .errorType),
            errorMessage: try container.decodeIfPresent(String.self, forKey: .errorMessage),
            causes: try container.decodeIfPresent([String].self, forKey: .causes) ?? [],
            reason: try container.decodeIfPresent(String.self, forKey: .reason).map(FailureReason.init(rawValue:)),
            fingerprint: try container.decodeIfPresent(String.self, forKey: .fingerprint),
            actor: try container.decodeIfPresent(String.self, forKey: .actor),
            operation: try container.decodeIfPresent(String.self, forKey: .operation),
            message: try container.decodeIfPresent(String.self, forKey: .message)
        )
    }

    /// Encodes `event` and `at`, then each field that is set.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.event.rawValue, forKey: .event)
        try container.encode(Timestamp.format(self.at), forKey: .at)
        try container.encodeIfPresent(self.outcome?.rawValue, forKey: .outcome)
        try container.encodeIfPresent(self.errorType, forKey: .errorType)
        try container.encodeIfPresent(self.errorMessage, forKey: .errorMessage)
        if !self.causes.isEmpty { try container.encode(self.causes, forKey: .causes) }
        try container.encodeIfPresent(self.reason?.rawValue, forKey: .reason)
        try container.encodeIfPresent(self.fingerprint, forKey: .fingerprint)
        try container.encodeIfPresent(self.actor, forKey: .actor)
        try container.encodeIfPresent(self.operation, forKey: .operation)
        try container.encodeIfPresent(self.message, forKey: .message)
    }
}

extension DeadLetter {
    /// The history as a store keeps it in one text column: ``storedHistory`` as a JSON array, or, when entries
    /// were left out, `{"omitted":N,"entries":[…]}`; `nil` when there is nothing to keep (a letter that failed
    /// once and nothing else happened to).
    public var storedHistoryJSON: String? {
        guard !self.recordedHistory.isEmpty || self.historyOmitted != 0 else { return nil }
        var writer = DeadLetterJSON.Writer(buffer: [])
        if self.historyOmitted != 0 {
            writer.raw(#"{"omitted":"#)
            writer.int(self.historyOmitted)
            writer.raw(#","entries":"#)
        }
        writer.buffer.append(UInt8(ascii: "["))
        for (index, entry) in self.recordedHistory.enumerated() {
            if index > 0 { writer.buffer.append(UInt8(ascii: ",")) }
            writer.historyEntry(entry)
        }
        writer.buffer.append(UInt8(ascii: "]"))
        if self.historyOmitted != 0 { writer.buffer.append(UInt8(ascii: "}")) }
        return String(decoding: writer.buffer, as: UTF8.self)
    }

    /// Reads what ``storedHistoryJSON`` wrote (or a version-1 store's history array).
    /// - Throws: ``DeadLetterError`` `invalidFormat` when the text is not such JSON.
    public static func storedHistory(fromJSON text: String) throws -> (entries: [HistoryEntry], omitted: Int) {
        struct Wrapped: Decodable {
            var omitted: Int
            var entries: [HistoryEntry]
        }
        do {
            let data = Data(text.utf8)
            if text.utf8.first == UInt8(ascii: "{") {
                let wrapped = try JSONDecoder().decode(Wrapped.self, from: data)
                return (wrapped.entries, max(0, wrapped.omitted))
            }
            return (try JSONDecoder().decode([HistoryEntry].self, from: data), 0)
        } catch {
            throw DeadLetterError(code: .invalidFormat, message: "a stored history cannot be read: \(error)")
        }
    }
}
