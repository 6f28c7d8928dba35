#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// An item that could not be processed, with everything needed to understand and recover it.
///
/// This is the stored format, version 2 (``formatVersion``; the repository's `docs/stored-format.md` describes
/// it): every export line and every JSON answer of the `dlq` command and the HTTP API writes a dead letter as
/// its `Codable` form does. A field's meaning never changes; new fields come with defaults, and version 1
/// still reads.
///
/// The error fields (``reason``, ``errorType``, ``errorMessage``, ``causes``, ``fingerprint``) show the
/// latest failure. The failure that dead-lettered the item is the first entry of ``history`` and is never
/// overwritten: the first time an error field changes, the entry is written out from the old values.
public struct DeadLetter: Sendable, Hashable, Identifiable {
    /// The version of the stored format this code writes, and the newest it reads.
    public static let formatVersion = 2

    /// A unique, time-ordered id (a UUIDv7 in lower case); kept across retries, redrives and replays.
    public var id: String
    /// Where the item came from: a queue, a topic, a job name, a webhook.
    public var source: String
    /// Why it failed.
    public var reason: FailureReason {
        didSet { if oldValue != self.reason { self.errorChanged(reason: oldValue) } }
    }
    /// The type of the last error, as `String(describing: type(of: error))` writes it.
    public var errorType: String {
        didSet { if oldValue != self.errorType { self.errorChanged(errorType: oldValue) } }
    }
    /// The last error's message.
    public var errorMessage: String {
        didSet { if oldValue != self.errorMessage { self.errorChanged(errorMessage: oldValue) } }
    }
    /// The chain of errors beneath the last one, outermost first, as `"Type: message"`.
    public var causes: [String] {
        didSet { if oldValue != self.causes { self.errorChanged(causes: oldValue) } }
    }
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
    public var fingerprint: String {
        didSet { if oldValue != self.fingerprint { self.errorChanged(fingerprint: oldValue) } }
    }
    /// How many replays or redrives of this letter failed.
    public var replayCount: Int
    /// Context given by the producer, with secrets redacted before storage.
    public var metadata: [String: String]
    /// The payload's media type, when known.
    public var contentType: String? {
        get { self.hasContentType ? self.contentTypeText : nil }
        set {
            self.contentTypeText = newValue ?? ""
            self.hasContentType = newValue != nil
        }
    }
    /// ``contentType`` as it is kept: the text (empty without one) and whether there is one. A stored
    /// `String?` made the compiler build every new letter aside and copy it out, each of its reference-counted
    /// fields retained and released once more: 9% of a memory replay's samples, which makes a letter per claim
    /// (perf, 300,000 letters; the same struct with no optional string field is built in place).
    private var contentTypeText: String
    private var hasContentType: Bool
    /// The item's bytes, exactly as received.
    public var payload: Data
    /// Everything that happened to the letter, oldest first: the failure that dead-lettered it, then every
    /// later event (see ``HistoryEntry``). Bounded: the first entry and the newest ``maxRecentHistory``
    /// are kept, and ``historyOmitted`` counts the ones left out. Append with ``record(_:)``.
    public var history: [HistoryEntry] {
        get {
            if self.recordedHistory.first?.event == .failed { return self.recordedHistory }
            return [HistoryEntry(firstFailureOf: self)] + self.recordedHistory
        }
        set { self.setHistory(newValue) }
    }
    /// How many history entries between the first and the newest ``maxRecentHistory`` were left out.
    public var historyOmitted: Int
    /// How many claims of the letter ended without an outcome: its lease ran out while it ran (the process
    /// died or hung). A queue parks a letter after `parkAfterAbandonedClaims` of them instead of running it
    /// again.
    public var abandonedClaims: Int
    /// The history as kept: without the first failure while it is still the letter's own error.
    var recordedHistory: [HistoryEntry]

    /// Creates a dead letter.
    ///
    /// Timestamps are rounded to the millisecond, as the stored format keeps them. When `history` does not
    /// begin with a `failed` entry (a version-1 letter, or a store's ``storedHistory``), the first failure is
    /// the letter's own error fields.
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
        history: [HistoryEntry] = [],
        historyOmitted: Int = 0,
        abandonedClaims: Int = 0
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
        self.contentTypeText = contentType ?? ""
        self.hasContentType = contentType != nil
        self.payload = payload
        self.historyOmitted = historyOmitted
        self.abandonedClaims = abandonedClaims
        self.recordedHistory = []
        self.setHistory(history)
    }

    /// The bytes a letter counts for against a queue's `maxBytes`: its payload, messages and metadata.
    public var storageSize: Int {
        var size = self.payload.count + self.errorMessage.utf8.count + self.errorType.utf8.count
        for cause in self.causes { size += cause.utf8.count }
        for (key, value) in self.metadata { size += key.utf8.count + value.utf8.count }
        return size
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
