import Crypto

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A letter's life as a value: it takes an event (an attempt failed, people redrove or parked it, a claim was
/// abandoned, …) and returns the letter's new state with the history entries to record.
///
/// The queue's run loop, replay, redrive, park, edit, purge and expiry all go through it, and nothing else
/// sets a letter's status or writes its history: every change of a letter is a recorded event, so nothing
/// about a letter is ever guessed afterwards (a failed attempt after a redrive is known to follow a redrive
/// because the redrive is in the history).
public struct DeadLetterLifecycle: Sendable {
    /// How delayed attempts are scheduled. Default ``RetryPolicy/default``.
    public var retryPolicy: RetryPolicy
    /// After this many failed replays or redrives a letter is parked. Default 3.
    public var parkAfterFailedReplays: Int
    /// After this many claims that ended without an outcome a letter is parked instead of run. Default 3.
    public var parkAfterAbandonedClaims: Int
    /// How long a letter is kept after its last failure; `nil` for ever. Default 7 days.
    public var timeToLive: Duration?

    /// Creates a lifecycle; every parameter has the default stated on its property.
    public init(
        retryPolicy: RetryPolicy = .default,
        parkAfterFailedReplays: Int = 3,
        parkAfterAbandonedClaims: Int = 3,
        timeToLive: Duration? = .seconds(7 * 86_400)
    ) {
        self.retryPolicy = retryPolicy
        self.parkAfterFailedReplays = parkAfterFailedReplays
        self.parkAfterAbandonedClaims = parkAfterAbandonedClaims
        self.timeToLive = timeToLive
    }

    /// Something that happens to a stored letter.
    public enum Event: Sendable {
        /// A delayed attempt of the running service failed with this error and reason.
        case attemptFailed(CapturedError, reason: FailureReason)
        /// A delayed attempt (or the attempt after a redrive) succeeded: the letter leaves the store.
        case attemptSucceeded
        /// People handed the letter back to the running service: due at `dueAt`. A parked letter is unparked.
        case redriven(dueAt: Date)
        /// A replay's handler or command failed with this error and reason.
        case replayFailed(CapturedError, reason: FailureReason)
        /// A replay succeeded: the letter leaves the store, or stays (status unchanged) when `keep` is set.
        case replaySucceeded(keep: Bool)
        /// People set the letter aside: retries, redrives and replays leave it alone until it is unparked.
        case parked(message: String?)
        /// People replaced the payload (and its content type, when given).
        case edited(payload: Data, contentType: String?)
        /// The store counted the letter's claims that ended without an outcome (its ``DeadLetter/abandonedClaims``);
        /// at ``parkAfterAbandonedClaims`` it is parked instead of run.
        case claimAbandoned
        /// A redrive was called off before the letter ran: it is dead again.
        case cancelled
        /// The letter's time to live ran out: it leaves the store (to the archive).
        case expired
        /// People purged the letter: it leaves the store (to the archive).
        case purged
        /// People deleted the letter: it leaves the store (to the archive, when there is one).
        case deleted
    }

    /// Who did it, when, and on behalf of which operation.
    public struct Context: Sendable, Hashable {
        /// When it happened.
        public var now: Date
        /// Who did it: a person or a service instance.
        public var actor: String?
        /// The id shared by everything one redrive, replay or purge did.
        public var operation: String?

        /// Creates a context.
        public init(now: Date, actor: String? = nil, operation: String? = nil) {
            self.now = now
            self.actor = actor
            self.operation = operation
        }
    }

    /// What an event does to a letter.
    public struct Transition: Sendable {
        /// What to write: the letter's new state, or (when it leaves the store) the copy to archive.
        public var letter: DeadLetter
        /// Whether the letter leaves the store.
        public var removes: Bool
        /// The entries the event recorded in ``letter``'s history, oldest first; empty when nothing changed
        /// (a claim that is not yet over the abandoned limit).
        public var entries: [DeadLetter.HistoryEntry]

        /// Whether the letter was parked by this event.
        public var parked: Bool { self.entries.contains { $0.event == .parked } }
    }

    /// The largest count the lifecycle writes (attempts, replays, abandoned claims): counters stop there
    /// instead of overflowing.
    public static let maxCount = DeadLetter.maximumCount

    /// Applies `event` to `letter`.
    /// - Parameters:
    ///   - event: what happened.
    ///   - letter: the letter as stored (claimed).
    ///   - context: when, who and which operation.
    ///   - rng: the random source of the jitter of a rescheduled attempt.
    /// - Returns: the new letter, whether it leaves the store, and the entries recorded.
    public func apply(
        _ event: Event,
        to letter: DeadLetter,
        context: Context,
        using rng: inout some RandomNumberGenerator
    ) -> Transition {
        var letter = letter
        var entries: [DeadLetter.HistoryEntry] = []
        var removes = false
        let now = context.now.roundedToMilliseconds
        func record(
            _ event: DeadLetter.HistoryEntry.Event,
            outcome: DeadLetter.HistoryEntry.Outcome? = nil,
            error: (CapturedError, FailureReason)? = nil,
            operation: String? = context.operation,
            message: String? = nil
        ) {
            let entry = DeadLetter.HistoryEntry(
                event: event,
                at: now,
                outcome: outcome,
                errorType: error?.0.type,
                errorMessage: error?.0.message,
                causes: error?.0.causes ?? [],
                reason: error?.1,
                fingerprint: error.map { Fingerprint.compute(errorType: $0.0.type, message: $0.0.message) },
                actor: context.actor,
                operation: operation,
                message: message
            )
            letter.record(entry)
            entries.append(entry)
        }
        func park(_ message: String) {
            letter.status = .parked
            letter.nextAttemptAt = nil
            record(.parked, message: message)
        }

        switch event {
        case .attemptFailed(let error, let reason):
            let handedBack = Self.handedBack(letter)
            let delayedDone = Self.delayedAttemptsInCycle(letter) + 1
            self.fail(&letter, error, reason: reason, now: now)
            // A failed attempt after a redrive belongs to the redrive's operation.
            record(.retried, outcome: .failed, error: (error, reason), operation: handedBack?.operation)
            if handedBack != nil {
                letter.replayCount = Self.increment(letter.replayCount)
                letter.status = .dead
                letter.nextAttemptAt = nil
                if letter.replayCount >= self.parkAfterFailedReplays {
                    park("failed again after \(letter.replayCount) redrives or replays")
                }
            } else {
                self.schedule(&letter, delayedAttempt: delayedDone + 1, reason: reason, now: now, using: &rng)
            }
        case .attemptSucceeded:
            removes = true
            record(.retried, outcome: .succeeded, operation: Self.handedBack(letter)?.operation)
        case .redriven(let dueAt):
            let wasParked = letter.status == .parked
            letter.status = .retrying
            letter.nextAttemptAt = dueAt.roundedToMilliseconds
            if wasParked {
                letter.abandonedClaims = 0
                record(.unparked)
            } else {
                record(.redriven)
            }
        case .replayFailed(let error, let reason):
            self.fail(&letter, error, reason: reason, now: now)
            letter.replayCount = Self.increment(letter.replayCount)
            letter.status = .dead
            letter.nextAttemptAt = nil
            record(.replayed, outcome: .failed, error: (error, reason))
            if letter.replayCount >= self.parkAfterFailedReplays {
                park("failed again after \(letter.replayCount) redrives or replays")
            }
        case .replaySucceeded(let keep):
            removes = !keep
            record(.replayed, outcome: .succeeded)
        case .parked(let message):
            park(message ?? "parked by hand")
        case .edited(let payload, let contentType):
            let digest = SHA256.hash(data: letter.payload).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
            let message = "replaced a payload of \(letter.payload.count) bytes, SHA-256 \(digest)"
            letter.payload = payload
            if let contentType { letter.contentType = contentType }
            record(.edited, message: message)
        case .claimAbandoned:
            guard letter.abandonedClaims >= self.parkAfterAbandonedClaims, letter.status != .parked else { break }
            let count = letter.abandonedClaims
            let claims = count == 1 ? "1 claim" : "\(count) claims"
            record(
                .abandoned,
                message: "\(claims) ended without an outcome: the process died or hung while running it"
            )
            park("after \(claims) ended without an outcome, instead of running it again")
        case .cancelled:
            letter.status = .dead
            letter.nextAttemptAt = nil
            record(.cancelled, message: "the redrive was called off before the letter ran")
        case .expired:
            removes = true
            record(.expired)
        case .purged:
            removes = true
            record(.purged)
        case .deleted:
            removes = true
            record(.deleted)
        }
        return Transition(letter: letter, removes: removes, entries: entries)
    }

    /// A letter being stored after its immediate attempts failed (its first failure): `retrying`, due after the
    /// first delayed attempt's backoff, when the retry policy has delayed attempts for its reason; else `dead`.
    public func stored(
        _ letter: DeadLetter,
        now: Date,
        using rng: inout some RandomNumberGenerator
    ) -> DeadLetter {
        var letter = letter
        self.schedule(&letter, delayedAttempt: 1, reason: letter.reason, now: now, using: &rng)
        return letter
    }

    /// `retrying`, due after delayed attempt `n`'s backoff, when the policy has that attempt for `reason`;
    /// else `dead`.
    private func schedule(
        _ letter: inout DeadLetter,
        delayedAttempt n: Int,
        reason: FailureReason,
        now: Date,
        using rng: inout some RandomNumberGenerator
    ) {
        if let delay = self.retryPolicy.delayedDelay(afterDelayedAttempt: n, reason: reason, previous: nil, using: &rng)
        {
            letter.status = .retrying
            letter.nextAttemptAt = now.adding(delay).roundedToMilliseconds
        } else {
            letter.status = .dead
            letter.nextAttemptAt = nil
        }
    }

    /// Applies `event` with the system's random source; see ``apply(_:to:context:using:)``.
    public func apply(_ event: Event, to letter: DeadLetter, context: Context) -> Transition {
        var rng = SystemRandomNumberGenerator()
        return self.apply(event, to: letter, context: context, using: &rng)
    }

    /// Records a new failure in the letter's error fields (its first failure is kept in the history).
    private func fail(_ letter: inout DeadLetter, _ error: CapturedError, reason: FailureReason, now: Date) {
        // The error fields' observers write the first failure out before they change it.
        letter.attempts = Self.increment(letter.attempts)
        letter.lastFailedAt = now
        letter.reason = reason
        letter.errorType = error.type
        letter.errorMessage = error.message
        letter.causes = error.causes
        letter.fingerprint = Fingerprint.compute(errorType: error.type, message: error.message)
        if let ttl = self.timeToLive { letter.expiresAt = now.adding(ttl).roundedToMilliseconds }
    }

    /// The redrive or unpark that handed the letter back to the running service, when it is the letter's
    /// latest event: the next attempt's outcome is then the redrive's.
    static func handedBack(_ letter: DeadLetter) -> DeadLetter.HistoryEntry? {
        guard let last = letter.storedHistory.last, last.event == .redriven || last.event == .unparked else {
            return nil
        }
        return last
    }

    /// How many delayed attempts failed since the letter was stored, redriven, unparked or replayed: the
    /// `retried` entries at the end of its history.
    static func delayedAttemptsInCycle(_ letter: DeadLetter) -> Int {
        var count = 0
        for entry in letter.storedHistory.reversed() {
            if entry.event == .retried {
                count += 1
            } else if entry.event != .abandoned && entry.event != .parked {
                break
            }
        }
        return count
    }

    /// `count + 1`, stopping at ``maxCount`` (a count already beyond it is kept).
    public static func increment(_ count: Int) -> Int {
        count >= Self.maxCount ? Swift.max(count, Self.maxCount) : count + 1
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        self.count >= length ? self : String(repeating: "0", count: length - self.count) + self
    }
}
