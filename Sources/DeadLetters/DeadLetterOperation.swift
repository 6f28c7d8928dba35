#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// One recovery action people started (a redrive, a replay, a purge, a park, an edit, a delete), kept as a
/// record: who started it, what it selected (a frozen set of letter ids, so letters that fail later are not
/// swept in), its parameters, how far it got and what became of each letter.
///
/// Stores keep operations beside the letters (``DeadLetterOperationLog``) for
/// ``DeadLetterQueue/Configuration/operationRetention`` (30 days by default), after the letters are gone: with
/// the letters' history entries, which carry the operation's ``id``, they are the audit log.
public struct DeadLetterOperation: Sendable, Hashable {
    /// What an operation does. Extensible: new kinds may be added.
    public struct Kind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Hands letters back to the running services (``DeadLetterQueue/redrive(_:limit:rate:actor:)``).
        public static let redrive = Kind(rawValue: "redrive")
        /// Runs letters through a handler now (``DeadLetterQueue/replay(_:options:progress:handler:)``).
        public static let replay = Kind(rawValue: "replay")
        /// Removes letters (to the archive).
        public static let purge = Kind(rawValue: "purge")
        /// Sets letters aside.
        public static let park = Kind(rawValue: "park")
        /// Replaces a letter's payload.
        public static let edit = Kind(rawValue: "edit")
        /// Removes letters by id.
        public static let delete = Kind(rawValue: "delete")
        public var description: String { self.rawValue }
    }

    /// Where an operation stands. Extensible: new states may be added.
    public struct State: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Under way: a replay runs its letters, a redrive's letters wait for the running services.
        public static let running = State(rawValue: "running")
        /// Stopped on purpose, to be resumed (a canary failed).
        public static let paused = State(rawValue: "paused")
        /// Called off by people.
        public static let cancelled = State(rawValue: "cancelled")
        /// A replay whose process stopped without finishing: its heartbeat is older than its lease.
        public static let interrupted = State(rawValue: "interrupted")
        /// Done: every letter of its set has an outcome.
        public static let finished = State(rawValue: "finished")
        /// Every state, in the order people read them.
        public static let all: [State] = [.running, .paused, .interrupted, .cancelled, .finished]
        public var description: String { self.rawValue }
    }

    /// How the operation runs, as it was started.
    public struct Parameters: Sendable, Hashable {
        /// At most this many letters, oldest first; `nil` for all.
        public var limit: Int?
        /// Letters per second: a redrive's letters fall due this far apart, a replay starts them at this pace.
        public var rate: Double?
        /// A replay's letters run at once.
        public var concurrency: Int?
        /// A replay stops after this many failures in a row.
        public var maxFailures: Int?
        /// A replay's command (`dlq replay --exec`).
        public var command: String?
        /// How long a replay's claims and its heartbeat stay valid.
        public var lease: Duration?
        /// A replay runs this many letters first and pauses if any failed.
        public var canary: Int?
        /// A replay keeps letters whose replay succeeded.
        public var keepOnSuccess: Bool?

        /// Creates parameters; every one is absent by default.
        public init(
            limit: Int? = nil,
            rate: Double? = nil,
            concurrency: Int? = nil,
            maxFailures: Int? = nil,
            command: String? = nil,
            lease: Duration? = nil,
            canary: Int? = nil,
            keepOnSuccess: Bool? = nil
        ) {
            self.limit = limit
            self.rate = rate
            self.concurrency = concurrency
            self.maxFailures = maxFailures
            self.command = command
            self.lease = lease
            self.canary = canary
            self.keepOnSuccess = keepOnSuccess
        }
    }

    /// What became of the operation's letters so far.
    public struct Counts: Sendable, Hashable {
        /// Letters in the frozen set.
        public var selected: Int
        /// Letters handled successfully (a replay or the attempt after a redrive succeeded; removed, parked,
        /// edited, deleted as asked).
        public var succeeded: Int
        /// Letters that failed again.
        public var failed: Int
        /// Letters that were parked instead (they failed too often, or their claims ended without an outcome).
        public var parked: Int
        /// Letters still waiting for their outcome.
        public var pending: Int
        /// Letters left alone: gone, being run by someone else, no longer selected, or cancelled before they ran.
        public var skipped: Int

        /// Creates counts; all 0 by default.
        public init(
            selected: Int = 0,
            succeeded: Int = 0,
            failed: Int = 0,
            parked: Int = 0,
            pending: Int = 0,
            skipped: Int = 0
        ) {
            self.selected = selected
            self.succeeded = succeeded
            self.failed = failed
            self.parked = parked
            self.pending = pending
            self.skipped = skipped
        }

        /// Adds one letter with `outcome`.
        public mutating func add(_ outcome: DeadLetterOperationLetter.Outcome, count: Int = 1) {
            self.selected += count
            switch outcome {
            case .succeeded: self.succeeded += count
            case .failed: self.failed += count
            case .parked: self.parked += count
            case .pending: self.pending += count
            default: self.skipped += count
            }
        }
    }

    /// The operation's id: time-ordered, like letters' ids; the letters' history entries carry it.
    public var id: String
    /// What it does.
    public var kind: Kind
    /// Where it stands, as last written (see ``state(now:)`` for what readers show).
    public var state: State
    /// Who started it: `DLQ_ACTOR` or `user@host` for `dlq`, the token's name for the HTTP API and the
    /// dashboard, the instance for the library.
    public var actor: String
    /// When it was created.
    public var createdAt: Date
    /// When it started running (a replay resumed keeps its first start).
    public var startedAt: Date?
    /// When it finished, was cancelled or paused.
    public var finishedAt: Date?
    /// When its runner last said it was alive (replays); `nil` for operations that need no runner.
    public var heartbeatAt: Date?
    /// The filter as given.
    public var filter: DeadLetterFilter
    /// How it runs.
    public var parameters: Parameters
    /// What became of its letters, as read from the store.
    public var counts: Counts
    /// Why it stopped, paused or was cancelled, in words.
    public var message: String?

    /// Creates an operation.
    public init(
        id: String,
        kind: Kind,
        state: State = .running,
        actor: String,
        createdAt: Date,
        startedAt: Date? = nil,
        finishedAt: Date? = nil,
        heartbeatAt: Date? = nil,
        filter: DeadLetterFilter = DeadLetterFilter(),
        parameters: Parameters = Parameters(),
        counts: Counts = Counts(),
        message: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.state = state
        self.actor = actor
        self.createdAt = createdAt.roundedToMilliseconds
        self.startedAt = startedAt?.roundedToMilliseconds
        self.finishedAt = finishedAt?.roundedToMilliseconds
        self.heartbeatAt = heartbeatAt?.roundedToMilliseconds
        self.filter = filter
        self.parameters = parameters
        self.counts = counts
        self.message = message
    }

    /// The state readers show at `now`: a running operation whose runner's heartbeat is older than its lease
    /// is `interrupted` (its process stopped), and a running operation with no letter pending and no runner is
    /// `finished`.
    public func state(now: Date) -> State {
        guard self.state == .running else { return self.state }
        if let heartbeat = self.heartbeatAt {
            let lease = self.parameters.lease ?? .seconds(300)
            if heartbeat.adding(lease) < now { return .interrupted }
            return .running
        }
        return self.counts.pending == 0 ? .finished : .running
    }

    /// Whether the operation is over: finished or cancelled.
    public var isOver: Bool { self.state == .finished || self.state == .cancelled }
}

/// One letter of an operation's frozen set and what became of it.
public struct DeadLetterOperationLetter: Sendable, Hashable {
    /// What became of a letter. Extensible: new outcomes may be added.
    public struct Outcome: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Not yet known.
        public static let pending = Outcome(rawValue: "pending")
        /// Handled as asked.
        public static let succeeded = Outcome(rawValue: "succeeded")
        /// Failed again (the new error is kept).
        public static let failed = Outcome(rawValue: "failed")
        /// Parked instead.
        public static let parked = Outcome(rawValue: "parked")
        /// Left alone.
        public static let skipped = Outcome(rawValue: "skipped")
        public var description: String { self.rawValue }
    }

    /// The operation.
    public var operation: String
    /// The letter.
    public var letterID: String
    /// What became of it.
    public var outcome: Outcome
    /// When the outcome was recorded; `nil` while pending.
    public var at: Date?
    /// The new error of a letter that failed again.
    public var errorType: String? {
        get { self.hasErrorType ? self.errorTypeText : nil }
        set {
            self.errorTypeText = newValue ?? ""
            self.hasErrorType = newValue != nil
        }
    }
    /// Its message.
    public var errorMessage: String? {
        get { self.hasErrorMessage ? self.errorMessageText : nil }
        set {
            self.errorMessageText = newValue ?? ""
            self.hasErrorMessage = newValue != nil
        }
    }

    // The two optional strings are kept as text and a flag (empty text when absent, so that equal values are
    // equal field by field): a struct storing a `String?` is built aside by its initializer and copied out, a
    // retain and a release of every field, and a replay makes one of these per letter (perf probes on the
    // reference counts: two copies per replayed letter; the disassembly shows the outlined copy).
    private var errorTypeText: String
    private var hasErrorType: Bool
    private var errorMessageText: String
    private var hasErrorMessage: Bool
    /// Always `true`: whether an optional holds a letter, asked without copying it (`letters[index]?.isPresent`).
    var isPresent: Bool { true }

    /// Creates a letter's outcome.
    public init(
        operation: String,
        letterID: String,
        outcome: Outcome,
        at: Date? = nil,
        errorType: String? = nil,
        errorMessage: String? = nil
    ) {
        self.operation = operation
        self.letterID = letterID
        self.outcome = outcome
        self.at = at?.roundedToMilliseconds
        self.errorTypeText = errorType ?? ""
        self.hasErrorType = errorType != nil
        self.errorMessageText = errorMessage ?? ""
        self.hasErrorMessage = errorMessage != nil
    }
}

/// A service instance whose queue runs (``DeadLetterQueue/run()``): who is listening for redriven letters.
public struct DeadLetterInstance: Sendable, Hashable {
    /// The queue's ``DeadLetterQueue/Configuration/instanceID``.
    public var id: String
    /// The host name.
    public var host: String
    /// The process id.
    public var pid: Int
    /// The version of swift-dead-letters it runs.
    public var version: String
    /// The sources it has a handler for, sorted.
    public var sources: [String]
    /// When it started.
    public var startedAt: Date
    /// Its last heartbeat.
    public var lastSeenAt: Date

    /// Creates an instance.
    public init(
        id: String,
        host: String,
        pid: Int,
        version: String,
        sources: [String],
        startedAt: Date,
        lastSeenAt: Date
    ) {
        self.id = id
        self.host = host
        self.pid = pid
        self.version = version
        self.sources = sources.sorted()
        self.startedAt = startedAt.roundedToMilliseconds
        self.lastSeenAt = lastSeenAt.roundedToMilliseconds
    }
}

/// What ``DeadLetterQueue/startRedrive(_:limit:rate:actor:operation:)`` did.
public struct DeadLetterRedrive: Sendable, Hashable {
    /// The operation recorded, or `nil` when the store keeps none.
    public var operation: DeadLetterOperation?
    /// How many letters were handed back.
    public var redriven: Int
    /// The sources of those letters, sorted.
    public var sources: [String]
    /// When the last of them falls due; `nil` when none was redriven.
    public var lastDueAt: Date?

    /// Creates a result.
    public init(operation: DeadLetterOperation?, redriven: Int, sources: [String], lastDueAt: Date?) {
        self.operation = operation
        self.redriven = redriven
        self.sources = sources
        self.lastDueAt = lastDueAt
    }
}
