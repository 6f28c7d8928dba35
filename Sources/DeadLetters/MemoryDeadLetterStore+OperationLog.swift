#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension MemoryDeadLetterStore {
    /// Operations with their letter sets, and instances.
    struct OperationLogState {
        var operations: [String: DeadLetterOperation] = [:]
        /// Per operation, its letters by id.
        var letters: [String: [String: DeadLetterOperationLetter]] = [:]
        var instances: [String: DeadLetterInstance] = [:]

        /// The operation with its counts.
        func counted(_ id: String) -> DeadLetterOperation? {
            guard var operation = self.operations[id] else { return nil }
            var counts = DeadLetterOperation.Counts()
            for letter in self.letters[id]?.values ?? [:].values { counts.add(letter.outcome) }
            operation.counts = counts
            return operation
        }
    }

    public func createOperation(_ operation: DeadLetterOperation, letters: [DeadLetterOperationLetter]) async throws {
        try self.log.withLock { log in
            guard log.operations[operation.id] == nil else {
                throw DeadLetterError(
                    code: .duplicateID,
                    message: "an operation with this id is stored",
                    id: operation.id
                )
            }
            log.operations[operation.id] = operation
            var set: [String: DeadLetterOperationLetter] = [:]
            for letter in letters where letter.operation == operation.id { set[letter.letterID] = letter }
            log.letters[operation.id] = set
        }
    }

    public func addOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws {
        self.log.withLock { log in
            for letter in letters where log.operations[letter.operation] != nil {
                if log.letters[letter.operation]?[letter.letterID] == nil {
                    log.letters[letter.operation, default: [:]][letter.letterID] = letter
                }
            }
        }
    }

    public func updateOperation(_ operation: DeadLetterOperation) async throws -> Bool {
        self.log.withLock { log in
            guard let stored = log.operations[operation.id], stored.state != .cancelled else { return false }
            log.operations[operation.id] = operation
            return true
        }
    }

    public func recordOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws -> Int {
        self.log.withLock { log in
            var changed = 0
            for letter in letters where log.letters[letter.operation]?[letter.letterID]?.outcome == .pending {
                log.letters[letter.operation]?[letter.letterID] = letter
                changed += 1
            }
            return changed
        }
    }

    public func operation(id: String) async throws -> DeadLetterOperation? {
        self.log.withLock { $0.counted(id) }
    }

    public func operations(
        states: [DeadLetterOperation.State],
        before cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperation] {
        self.log.withLock { log in
            let newestFirst = log.operations.values
                .filter { states.isEmpty || states.contains($0.state) }
                .filter { cursor == nil || $0.id < cursor! }
                .sorted { $0.id > $1.id }
                .prefix(Swift.max(1, limit))
            return newestFirst.compactMap { log.counted($0.id) }
        }
    }

    public func operationLetters(
        id: String,
        outcomes: [DeadLetterOperationLetter.Outcome],
        after cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperationLetter] {
        self.log.withLock { log in
            let letters = (log.letters[id] ?? [:]).values
                .filter { outcomes.isEmpty || outcomes.contains($0.outcome) }
                .filter { cursor == nil || $0.letterID > cursor! }
                .sorted { $0.letterID < $1.letterID }
            return Array(letters.prefix(Swift.max(1, limit)))
        }
    }

    public func pruneOperations(createdBefore date: Date) async throws -> Int {
        self.log.withLock { log in
            let old = log.operations.values.filter { $0.createdAt < date }.map(\.id)
            for id in old {
                log.operations[id] = nil
                log.letters[id] = nil
            }
            return old.count
        }
    }

    public func saveInstance(_ instance: DeadLetterInstance) async throws {
        self.log.withLock { $0.instances[instance.id] = instance }
    }

    public func removeInstance(id: String) async throws {
        self.log.withLock { $0.instances[id] = nil }
    }

    public func instances() async throws -> [DeadLetterInstance] {
        self.log.withLock { $0.instances.values.sorted { $0.id < $1.id } }
    }
}
