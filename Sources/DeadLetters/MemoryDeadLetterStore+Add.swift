#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension MemoryDeadLetterStore {
    /// A new `dead` letter in the parts this store keeps, as ``DeadLetterQueue/add(payload:source:error:attempts:metadata:contentType:)``
    /// makes it: the id as its two halves, times as milliseconds, the fingerprint as its number.
    ///
    /// An add on this store builds no ``DeadLetter``: making one, copying it into an array for
    /// ``append(_:onConflict:limits:)`` and reading it into a record was about a third of the add (perf, memory
    /// add of 1,000,000 letters from thrown errors).
    struct NewLetter {
        var high: UInt64
        var low: UInt64
        var source: String
        var reason: FailureReason
        var errorType: String
        /// Truncated as ``CapturedError/truncate(_:)`` does.
        var errorMessage: String
        var causes: [String]
        var attempts: Int
        /// When it failed, in milliseconds since 1970: its first and last failure.
        var failedAt: Int64
        /// In milliseconds since 1970; ``Record/none`` for none.
        var expiresAt: Int64
        var fingerprint: UInt64
        /// Redacted already.
        var metadata: [String: String]
        /// Empty, with `hasContentType` false, when it has none. (No `String?` here: a struct holding one was
        /// built aside and copied, each field retained and released once more.)
        var contentType: String
        var hasContentType: Bool
        var payload: Data
    }

    /// Stores a new letter given in parts, in a store without limits (a bounded store needs
    /// ``append(_:onConflict:limits:)``'s checks and evictions).
    /// - Throws: ``DeadLetterError`` `duplicateID` when a letter with its id is stored.
    func insert(_ new: NewLetter) throws {
        let key = Key.uuid(new.high, new.low)
        try self.state.withLock { state in
            if state.index(of: key) != nil { throw Self.duplicate(key.string) }
            let record = Record(new, key: key, interner: &state.interner)
            // Its size as the record counts it: the causes' and metadata's bytes are counted once in its extras
            // (shared by letters with the same metadata), not again per letter.
            let size = withUnsafePointer(to: record) { Record.storageSize($0, state.interner) }
            state.insert(consume record, size: size, nextAttemptAt: nil)
        }
    }
}
