#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Where a store keeps operations (``DeadLetterOperation``) and the instances that run a queue
/// (``DeadLetterInstance``): beside the letters, so that every process sharing the store sees them.
///
/// Every ``DeadLetterStore`` is one. The memory, SQLite and PostgreSQL stores keep them (a map, tables); the
/// default implementations throw ``DeadLetterError/Code/unsupported``, so a store written before operations
/// existed still builds, and the queue then runs its redrives and replays without records. The conformance
/// suite of `DeadLettersTesting` checks the semantics below.
public protocol DeadLetterOperationLog: Sendable {
    /// Stores a new operation with its frozen set: one entry per letter, usually `pending` (or `skipped`
    /// for letters it selected but could not take).
    /// - Throws: ``DeadLetterError/Code/duplicateID`` when an operation with this id is stored.
    func createOperation(_ operation: DeadLetterOperation, letters: [DeadLetterOperationLetter]) async throws

    /// Adds letters to a stored operation's set (a replay's set is written a page at a time); a letter
    /// already in it is left as it is.
    func addOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws

    /// Writes an operation's state, times, heartbeat, parameters and message (not its letters or counts).
    /// A cancelled operation is final: it is not written again.
    /// - Returns: whether it was written (`false`: unknown, pruned or cancelled).
    func updateOperation(_ operation: DeadLetterOperation) async throws -> Bool

    /// Records letters' outcomes: each changes only a letter of that operation's set that is still
    /// `pending`, so an outcome is recorded once however many writers report it.
    /// - Returns: how many letters changed.
    @discardableResult
    func recordOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws -> Int

    /// The operation with `id`, with its counts, or `nil`.
    func operation(id: String) async throws -> DeadLetterOperation?

    /// Operations, newest first, with their counts.
    /// - Parameters:
    ///   - states: only these stored states; all when empty.
    ///   - cursor: the id of the last operation of the previous page, or `nil` for the first page.
    ///   - limit: at most this many.
    func operations(
        states: [DeadLetterOperation.State],
        before cursor: String?,
        limit: Int
    ) async throws
        -> [DeadLetterOperation]

    /// The letters of an operation's set, in letter id order.
    /// - Parameters:
    ///   - id: the operation.
    ///   - outcomes: only these outcomes; all when empty.
    ///   - cursor: the last letter id of the previous page, or `nil`.
    ///   - limit: at most this many.
    func operationLetters(
        id: String,
        outcomes: [DeadLetterOperationLetter.Outcome],
        after cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperationLetter]

    /// Whether a letter of the operation's set is still `pending`: one index lookup, not a count (outcomes
    /// reported one by one check it after each). A default implementation reads one pending letter with
    /// ``operationLetters(id:outcomes:after:limit:)``.
    func hasPendingLetters(operation id: String) async throws -> Bool

    /// Removes the operations created before `date`, with their letter sets.
    /// - Returns: how many operations were removed.
    @discardableResult
    func pruneOperations(createdBefore date: Date) async throws -> Int

    /// Stores or refreshes an instance (its heartbeat).
    func saveInstance(_ instance: DeadLetterInstance) async throws

    /// Removes an instance (it shut down).
    func removeInstance(id: String) async throws

    /// The stored instances, live or not, by id. The queue shows those seen recently
    /// (``DeadLetterQueue/instances()``), and removes long-gone ones.
    func instances() async throws -> [DeadLetterInstance]
}

extension DeadLetterOperationLog {
    private func unsupported() -> DeadLetterError {
        DeadLetterError(code: .unsupported, message: "this store keeps no operations or instances")
    }

    public func createOperation(_ operation: DeadLetterOperation, letters: [DeadLetterOperationLetter]) async throws {
        throw self.unsupported()
    }

    public func addOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws {
        throw self.unsupported()
    }

    public func updateOperation(_ operation: DeadLetterOperation) async throws -> Bool {
        throw self.unsupported()
    }

    public func recordOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws -> Int {
        throw self.unsupported()
    }

    public func operation(id: String) async throws -> DeadLetterOperation? {
        throw self.unsupported()
    }

    public func operations(
        states: [DeadLetterOperation.State],
        before cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperation] {
        throw self.unsupported()
    }

    public func operationLetters(
        id: String,
        outcomes: [DeadLetterOperationLetter.Outcome],
        after cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperationLetter] {
        throw self.unsupported()
    }

    public func pruneOperations(createdBefore date: Date) async throws -> Int {
        throw self.unsupported()
    }

    public func hasPendingLetters(operation id: String) async throws -> Bool {
        try await !self.operationLetters(id: id, outcomes: [.pending], after: nil, limit: 1).isEmpty
    }

    public func saveInstance(_ instance: DeadLetterInstance) async throws {
        throw self.unsupported()
    }

    public func removeInstance(id: String) async throws {
        throw self.unsupported()
    }

    public func instances() async throws -> [DeadLetterInstance] {
        throw self.unsupported()
    }
}

/// A store that wraps another (``EncryptedDeadLetterStore``, say) and keeps operations and instances in it
/// unchanged: conforming is all it takes to forward ``DeadLetterOperationLog``.
public protocol DeadLetterStoreWrapper: DeadLetterStore {
    /// The wrapped store.
    var base: any DeadLetterStore { get }
}

extension DeadLetterStoreWrapper {
    public func createOperation(_ operation: DeadLetterOperation, letters: [DeadLetterOperationLetter]) async throws {
        try await self.base.createOperation(operation, letters: letters)
    }

    public func addOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws {
        try await self.base.addOperationLetters(letters)
    }

    public func updateOperation(_ operation: DeadLetterOperation) async throws -> Bool {
        try await self.base.updateOperation(operation)
    }

    public func recordOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws -> Int {
        try await self.base.recordOperationLetters(letters)
    }

    public func operation(id: String) async throws -> DeadLetterOperation? {
        try await self.base.operation(id: id)
    }

    public func operations(
        states: [DeadLetterOperation.State],
        before cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperation] {
        try await self.base.operations(states: states, before: cursor, limit: limit)
    }

    public func operationLetters(
        id: String,
        outcomes: [DeadLetterOperationLetter.Outcome],
        after cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperationLetter] {
        try await self.base.operationLetters(id: id, outcomes: outcomes, after: cursor, limit: limit)
    }

    public func pruneOperations(createdBefore date: Date) async throws -> Int {
        try await self.base.pruneOperations(createdBefore: date)
    }

    public func hasPendingLetters(operation id: String) async throws -> Bool {
        try await self.base.hasPendingLetters(operation: id)
    }

    public func saveInstance(_ instance: DeadLetterInstance) async throws {
        try await self.base.saveInstance(instance)
    }

    public func removeInstance(id: String) async throws {
        try await self.base.removeInstance(id: id)
    }

    public func instances() async throws -> [DeadLetterInstance] {
        try await self.base.instances()
    }
}
