#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension MemoryDeadLetterStore {
    /// Operations with their letter sets, and instances.
    struct OperationLogState {
        /// One operation's frozen set: its letters by id, their ids in order, and how many are pending, so that
        /// paging and "any pending?" cost what a page costs, not what the set costs.
        struct LetterSet {
            var letters: [String: DeadLetterOperationLetter] = [:]
            /// Sorted; letters are usually added in id order, so an insert is usually an append.
            var order: [String] = []
            var pending = 0

            mutating func add(_ letter: DeadLetterOperationLetter) {
                guard self.letters[letter.letterID] == nil else { return }
                self.letters[letter.letterID] = letter
                if letter.outcome == .pending { self.pending += 1 }
                if let last = self.order.last, last > letter.letterID {
                    self.order.insert(letter.letterID, at: self.lowerBound(letter.letterID))
                } else {
                    self.order.append(letter.letterID)
                }
            }

            /// The first index whose id is not less than `id`.
            func lowerBound(_ id: String) -> Int {
                var low = 0
                var high = self.order.count
                while low < high {
                    let mid = (low + high) / 2
                    if self.order[mid] < id { low = mid + 1 } else { high = mid }
                }
                return low
            }
        }

        var operations: [String: DeadLetterOperation] = [:]
        var sets: [String: LetterSet] = [:]
        var instances: [String: DeadLetterInstance] = [:]

        /// Records a letter's outcome if the letter is pending in its operation's set.
        /// - Returns: whether it changed.
        mutating func record(_ letter: DeadLetterOperationLetter) -> Bool {
            guard self.sets[letter.operation]?.letters[letter.letterID]?.outcome == .pending else { return false }
            self.sets[letter.operation]?.letters[letter.letterID] = letter
            if letter.outcome != .pending { self.sets[letter.operation]?.pending -= 1 }
            return true
        }

        /// The operation with its counts.
        func counted(_ id: String) -> DeadLetterOperation? {
            guard var operation = self.operations[id] else { return nil }
            var counts = DeadLetterOperation.Counts()
            for letter in self.sets[id]?.letters.values ?? [:].values { counts.add(letter.outcome) }
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
            var set = OperationLogState.LetterSet()
            for letter in letters where letter.operation == operation.id { set.add(letter) }
            log.sets[operation.id] = set
        }
    }

    public func addOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws {
        self.log.withLock { log in
            for letter in letters where log.operations[letter.operation] != nil {
                log.sets[letter.operation, default: OperationLogState.LetterSet()].add(letter)
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
            for letter in letters where log.record(letter) { changed += 1 }
            return changed
        }
    }

    /// Writes the outcomes, then records those written in one pass over the log (a memory store has no
    /// transaction to share, and a crash empties it anyway).
    public func write(
        _ outcomes: [DeadLetterOutcome],
        owner: String,
        recording records: [DeadLetterOperationLetter?]
    ) async throws -> [Bool] {
        let written = try await self.write(outcomes, owner: owner)
        self.log.withLock { log in
            for case (let record?, true) in zip(records, written) { _ = log.record(record) }
        }
        return written
    }

    public func hasPendingLetters(operation id: String) async throws -> Bool {
        self.log.withLock { ($0.sets[id]?.pending ?? 0) > 0 }
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
            guard let set = log.sets[id] else { return [] }
            var index = 0
            if let cursor {
                index = set.lowerBound(cursor)
                if index < set.order.count, set.order[index] == cursor { index += 1 }
            }
            var page: [DeadLetterOperationLetter] = []
            let limit = Swift.max(1, limit)
            while index < set.order.count, page.count < limit {
                if let letter = set.letters[set.order[index]], outcomes.isEmpty || outcomes.contains(letter.outcome) {
                    page.append(letter)
                }
                index += 1
            }
            return page
        }
    }

    public func pruneOperations(createdBefore date: Date) async throws -> Int {
        self.log.withLock { log in
            let old = log.operations.values.filter { $0.createdAt < date }.map(\.id)
            for id in old {
                log.operations[id] = nil
                log.sets[id] = nil
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
