#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How ``DeadLetterQueue/replay(_:options:progress:handler:)`` runs.
public struct ReplayOptions: Sendable, Hashable {
    /// At most this many letters started per second; `nil` for no limit. Default `nil`.
    public var rate: Double?
    /// At most this many letters at once. Default 1.
    public var concurrency: Int
    /// Only count the letters and return a sample. Default `false`.
    public var dryRun: Bool
    /// Keep a letter whose replay succeeded (with a history entry) instead of removing it. Default `false`.
    public var keepOnSuccess: Bool
    /// Stop the replay (its circuit opens) after this many failures in a row; `nil` never stops. Default 10.
    public var maxConsecutiveFailures: Int?
    /// At most this many letters, oldest first; `nil` for all. Default `nil`.
    public var limit: Int?
    /// How many letters a dry run returns as a sample. Default 5.
    public var sampleSize: Int
    /// Who runs the replay, for the letters' history (`DLQ_ACTOR`, `user@host`, a token's name); `nil` for
    /// this instance. Default `nil`.
    public var actor: String?
    /// How long each letter claimed by the replay stays leased; a replay that dies leaves its letters to be
    /// claimed again after it (counted as abandoned claims). `nil` for the queue's `leaseDuration`.
    /// Default `nil`.
    public var leaseDuration: Duration?
    /// Run this many letters first and pause the replay (its operation `paused`) if any of them failed, so
    /// that a fix can be tried on a few letters before all; ``DeadLetterQueue/resumeReplay(id:actor:progress:handler:)``
    /// goes on. `nil` for no canary. Default `nil`.
    public var canary: Int?
    /// The command the handler runs, recorded in the replay's operation (`dlq replay --exec`) so that a resume
    /// runs it again; `nil` for none. Default `nil`.
    public var command: String?

    /// Creates options; every parameter has the default stated on its property.
    public init(
        rate: Double? = nil,
        concurrency: Int = 1,
        dryRun: Bool = false,
        keepOnSuccess: Bool = false,
        maxConsecutiveFailures: Int? = 10,
        limit: Int? = nil,
        sampleSize: Int = 5
    ) {
        self.rate = rate
        self.concurrency = concurrency
        self.dryRun = dryRun
        self.keepOnSuccess = keepOnSuccess
        self.maxConsecutiveFailures = maxConsecutiveFailures
        self.limit = limit
        self.sampleSize = sampleSize
        self.actor = nil
        self.leaseDuration = nil
        self.canary = nil
        self.command = nil
    }

    /// Checks the values.
    /// - Throws: ``DeadLetterError`` `invalidConfiguration` naming the field.
    public func validate() throws {
        if let rate = self.rate, !(rate > 0), rate.isFinite || rate.isNaN {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be a positive number", field: "rate")
        }
        if self.concurrency < 1 {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be at least 1", field: "concurrency")
        }
        if let max = self.maxConsecutiveFailures, max < 1 {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "must be at least 1",
                field: "maxConsecutiveFailures"
            )
        }
        if let limit = self.limit, limit < 0 {
            throw DeadLetterError(code: .invalidConfiguration, message: "must not be negative", field: "limit")
        }
        if let canary = self.canary, canary < 1 {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be at least 1", field: "canary")
        }
        if let lease = self.leaseDuration, lease <= .zero {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be positive", field: "leaseDuration")
        }
    }
}

/// Thrown by a replay's handler to stop the replay for a reason that is not the letter's (the operator's
/// command is missing, say): the letter is handed back unchanged, no further letter starts, and
/// ``DeadLetterQueue/replay(_:options:progress:handler:)`` throws this error once every claimed letter is
/// handed back.
public struct ReplayStoppedError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the replay stopped, in words.
    public var message: String

    /// What the replay had done when it stopped; set by the replay when it throws the error.
    public var report: ReplayReport?

    /// Creates the error.
    public init(_ message: String) { self.message = message }

    public var description: String { self.message }
}

/// What a replay did.
public struct ReplayReport: Sendable, Hashable {
    /// Letters the filter selected when the replay started.
    public var matched: Int
    /// Letters whose handler succeeded.
    public var succeeded: Int
    /// Letters whose handler failed (their new error is recorded).
    public var failed: Int
    /// Letters not run: taken by another worker, gone, or left when the replay stopped.
    public var skipped: Int
    /// Letters parked by this replay: after too many failed replays (counted in ``failed`` too), or because
    /// their claims ended without an outcome too often (poison letters, counted in ``skipped``: they did not
    /// run).
    public var parked: Int
    /// The id the replay's history entries share (empty for a dry run).
    public var operation: String = ""
    /// Whether the replay stopped early because too many letters failed in a row.
    public var stoppedByCircuit: Bool
    /// Whether the replay paused after its canary letters, some of which failed (its operation is `paused`).
    public var paused = false
    /// Whether the replay stopped because its operation was cancelled.
    public var cancelled = false
    /// Whether this was a dry run.
    public var dryRun: Bool
    /// A dry run's sample of the letters it would replay.
    public var sample: [DeadLetter]
    var consecutiveFailures = 0
    /// Set when a handler threw ``ReplayStoppedError``: no further letter starts.
    var stoppedByOperator: String?

    /// Creates a report.
    public init(
        matched: Int = 0,
        succeeded: Int = 0,
        failed: Int = 0,
        skipped: Int = 0,
        parked: Int = 0,
        stoppedByCircuit: Bool = false,
        dryRun: Bool = false,
        sample: [DeadLetter] = []
    ) {
        self.matched = matched
        self.succeeded = succeeded
        self.failed = failed
        self.skipped = skipped
        self.parked = parked
        self.stoppedByCircuit = stoppedByCircuit
        self.dryRun = dryRun
        self.sample = sample
    }
}
