#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension MemoryDeadLetterStore {
    /// What a new `dead` letter owns, as ``DeadLetterQueue/add(payload:source:error:attempts:metadata:contentType:)``
    /// makes it: the id as its two halves, times as milliseconds, the fingerprint as its number, and the message
    /// and payload its record keeps. What it shares with other letters (its source, error type, reason, causes,
    /// metadata and content type) goes to ``insert(_:source:errorType:reason:causes:metadata:contentType:)``
    /// beside it, borrowed.
    ///
    /// An add on this store builds no ``DeadLetter``: making one, copying it into an array for
    /// ``append(_:onConflict:limits:)`` and reading it into a record was about a third of the add (perf, memory
    /// add of 1,000,000 letters from thrown errors). And it is moved into its record, not copied: a struct
    /// holding the shared parts as well cost a retain and a release of each at every add (13 of each, counted
    /// with perf probes on `swift_retain`/`swift_release`).
    struct NewLetter {
        var high: UInt64
        var low: UInt64
        var attempts: Int
        /// When it failed, in milliseconds since 1970: its first and last failure.
        var failedAt: Int64
        /// In milliseconds since 1970; ``Record/none`` for none.
        var expiresAt: Int64
        var fingerprint: UInt64
        /// Truncated as ``CapturedError/truncate(_:)`` does.
        var errorMessage: String
        var payload: Data
    }

    /// Stores a new letter, in a store without limits (a bounded store needs ``append(_:onConflict:limits:)``'s
    /// checks and evictions).
    /// - Parameter metadata: redacted already.
    /// - Throws: ``DeadLetterError`` `duplicateID` when a letter with its id is stored.
    func insert(
        _ new: consuming NewLetter,
        source: String,
        errorType: String,
        reason: FailureReason,
        causes: [String],
        metadata: [String: String],
        contentType: String?
    ) throws {
        let key = Key.uuid(new.high, new.low)
        try self.state.withLock(passing: new) { state, new in
            if state.index(of: key) != nil { throw Self.duplicate(key.string) }
            let record = Record(
                new,
                key: key,
                source: source,
                errorType: errorType,
                reason: reason,
                causes: causes,
                metadata: metadata,
                contentType: contentType,
                interner: &state.interner
            )
            // Its size as the record counts it: the causes' and metadata's bytes are counted once in its extras
            // (shared by letters with the same metadata), not again per letter.
            let size = withUnsafePointer(to: record) { Record.storageSize($0, state.interner) }
            try state.insert(consume record, size: size, nextAttemptAt: nil)
        }
    }
}
