#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension MemoryDeadLetterStore {
    /// Operations with their letter sets, and instances.
    struct OperationLogState {
        /// One operation's frozen set, in parallel arrays sorted by letter id: paging reads outcomes by index
        /// (no hashing), and "any pending?" is a count. Letters are usually added in id order, so an insert is
        /// usually an append; outcomes are usually recorded in id order too, so the next index after the last
        /// one recorded is tried before a binary search.
        ///
        /// Measured (memory replay of 50,000 letters, concurrency 1, release): keeping a whole
        /// `DeadLetterOperationLetter` per letter in a dictionary cost about 40% of the replay's throughput
        /// (63,000-82,000/s against 114,000-131,000/s without an operation). Without the id → index dictionary
        /// and the dictionary of details that followed, a letter costs no hashing here: see RESULTS.md.
        struct LetterSet {
            /// Why a letter failed, for the few that did.
            final class Failure: Sendable {
                let errorType: String?
                let errorMessage: String?

                init(errorType: String?, errorMessage: String?) {
                    self.errorType = errorType
                    self.errorMessage = errorMessage
                }
            }

            /// Letter ids, sorted.
            var ids: [String] = []
            var outcomes: [DeadLetterOperationLetter.Outcome] = []
            /// When each outcome was recorded (`nil` while pending).
            var ats: [Date?] = []
            /// The error of each letter that has one.
            var failures: [Failure?] = []
            var pending = 0
            /// The counts of ``outcomes``, kept as they change: an operation's counts were a pass over its whole
            /// set, which a replay read three times at its end.
            var counts = DeadLetterOperation.Counts()
            /// Where the next outcome is looked for first: after the last one recorded.
            var hint = 0

            mutating func add(_ letter: DeadLetterOperationLetter) {
                var index = self.ids.count
                if let last = self.ids.last, last >= letter.letterID {
                    // Rare (a set is written in id order): the letters after it move one place.
                    index = self.lowerBound(letter.letterID)
                    if index < self.ids.count, self.ids[index] == letter.letterID { return }
                    self.ids.insert(letter.letterID, at: index)
                    self.outcomes.insert(letter.outcome, at: index)
                    self.ats.insert(letter.at, at: index)
                    self.failures.insert(Self.failure(letter.errorType, letter.errorMessage), at: index)
                } else {
                    self.ids.append(letter.letterID)
                    self.outcomes.append(letter.outcome)
                    self.ats.append(letter.at)
                    self.failures.append(Self.failure(letter.errorType, letter.errorMessage))
                }
                if letter.outcome == .pending { self.pending += 1 }
                self.counts.add(letter.outcome)
            }

            /// Adds letters as `pending`; ids in ascending order after the last are appended as they are.
            /// (No `reserveCapacity` here: called page after page, it reallocated each array to its exact new size
            /// every time, which copied the whole set at each page.)
            mutating func reserveCapacity(_ count: Int) {
                self.ids.reserveCapacity(count)
                self.outcomes.reserveCapacity(count)
                self.ats.reserveCapacity(count)
                self.failures.reserveCapacity(count)
            }

            /// Adds `ids` as pending.
            /// - Parameter sorted: whether `ids` ascend (as strings compare): a page of the store's ids, which it
            ///   keeps in that order. After every id the set holds, such a page is appended whole, with one
            ///   comparison instead of one per id (a string comparison per letter was 5% of a memory replay).
            mutating func addPending(_ ids: [String], operation: String, sorted: Bool = false) {
                if sorted, let first = ids.first, self.ids.last.map({ $0 < first }) ?? true {
                    self.ids.append(contentsOf: ids)
                    self.outcomes.append(contentsOf: repeatElement(.pending, count: ids.count))
                    self.ats.append(contentsOf: repeatElement(nil, count: ids.count))
                    self.failures.append(contentsOf: repeatElement(nil, count: ids.count))
                    self.pending += ids.count
                    self.counts.add(.pending, count: ids.count)
                    return
                }
                for id in ids {
                    if let last = self.ids.last, last >= id {
                        self.add(DeadLetterOperationLetter(operation: operation, letterID: id, outcome: .pending))
                        continue
                    }
                    self.ids.append(id)
                    self.outcomes.append(.pending)
                    self.ats.append(nil)
                    self.failures.append(nil)
                    self.pending += 1
                    self.counts.add(.pending)
                }
            }

            /// The ids of pending letters after `cursor`, at most `limit`.
            func pendingIDs(after cursor: String?, limit: Int) -> [String] {
                var index = 0
                if let cursor {
                    index = self.lowerBound(cursor)
                    if index < self.ids.count, self.ids[index] == cursor { index += 1 }
                }
                var page: [String] = []
                page.reserveCapacity(Swift.min(limit, self.ids.count - index))
                while index < self.ids.count, page.count < limit {
                    if self.outcomes[index] == .pending { page.append(self.ids[index]) }
                    index += 1
                }
                return page
            }

            private static func failure(_ errorType: String?, _ errorMessage: String?) -> Failure? {
                guard errorType != nil || errorMessage != nil else { return nil }
                return Failure(errorType: errorType, errorMessage: errorMessage)
            }

            /// The index of `id`, if the set holds it.
            func index(of id: String) -> Int? {
                if self.hint < self.ids.count, self.ids[self.hint] == id { return self.hint }
                let index = self.lowerBound(id)
                guard index < self.ids.count, self.ids[index] == id else { return nil }
                return index
            }

            /// Records an outcome if the letter is pending: whether it changed.
            mutating func record(_ letter: DeadLetterOperationLetter) -> Bool {
                withUnsafePointer(to: letter) { self.record($0) }
            }

            /// Records the outcome of the letter at `letter` if it is pending: whether it changed. Read through
            /// the pointer, field by field: a letter passed as a value (even `borrowing`) was copied whole first,
            /// as `self` might change it.
            mutating func record(_ letter: UnsafePointer<DeadLetterOperationLetter>) -> Bool {
                guard let index = self.index(of: letter.pointee.letterID), self.outcomes[index] == .pending else {
                    return false
                }
                let outcome = letter.pointee.outcome
                self.hint = index + 1
                self.outcomes[index] = outcome
                self.ats[index] = letter.pointee.at
                self.failures[index] = Self.failure(letter.pointee.errorType, letter.pointee.errorMessage)
                if outcome != .pending { self.pending -= 1 }
                self.counts.add(.pending, count: -1)
                self.counts.add(outcome)
                return true
            }

            /// The letter at `index`, as stored.
            func letter(at index: Int, operation: String) -> DeadLetterOperationLetter {
                let failure = self.failures[index]
                return DeadLetterOperationLetter(
                    operation: operation,
                    letterID: self.ids[index],
                    outcome: self.outcomes[index],
                    at: self.ats[index],
                    errorType: failure?.errorType,
                    errorMessage: failure?.errorMessage
                )
            }

            /// The first index whose id is not less than `id`.
            func lowerBound(_ id: String) -> Int {
                var low = 0
                var high = self.ids.count
                while low < high {
                    let mid = (low + high) / 2
                    if self.ids[mid] < id { low = mid + 1 } else { high = mid }
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
            self.sets[letter.operation]?.record(letter) ?? false
        }

        /// Records the outcomes of `letters` that were `written`, looking each operation's set up once per run
        /// of letters of that operation (a replay's page is one run), not once per letter.
        /// - Returns: how many changed.
        mutating func record(_ letters: [DeadLetterOperationLetter?], written: [Bool]) -> Int {
            // Each letter is read where it lies: binding it (`if let letter = letters[index]`) copied it, its
            // texts retained and then released, 18 of the 170 reference-count calls of a replayed letter
            // (`perf probe` on `swift_retain` / `swift_release`, 10,000 letters).
            letters.withUnsafeBufferPointer { letters in
                var changed = 0
                var index = 0
                // One record per outcome: records past the outcomes (a caller's mistake) have none written.
                let count = Swift.min(letters.count, written.count)
                while index < count {
                    guard written[index], let first = Self.wrapped(letters, index) else {
                        index += 1
                        continue
                    }
                    let operation = first.pointee.operation
                    // Taken out of the dictionary while it changes, so that it is not copied.
                    guard var set = self.sets.removeValue(forKey: operation) else {
                        index += 1
                        continue
                    }
                    while index < count {
                        if written[index], let letter = Self.wrapped(letters, index) {
                            guard letter.pointee.operation == operation else { break }
                            if set.record(letter) { changed += 1 }
                        }
                        index += 1
                    }
                    self.sets[operation] = set
                }
                return changed
            }
        }

        /// Where the letter at `index` lies, if there is one. An optional's payload lies at its start (its
        /// tag, when it needs one, after it).
        private static func wrapped(
            _ letters: UnsafeBufferPointer<DeadLetterOperationLetter?>,
            _ index: Int
        ) -> UnsafePointer<DeadLetterOperationLetter>? {
            // Asked through a field of no reference: `letters[index] != nil` copied the letter to compare it.
            guard letters[index]?.isPresent == true, let base = letters.baseAddress else { return nil }
            return UnsafeRawPointer(base + index).assumingMemoryBound(to: DeadLetterOperationLetter.self)
        }

        /// The operation with its counts.
        func counted(_ id: String) -> DeadLetterOperation? {
            guard var operation = self.operations[id] else { return nil }
            operation.counts = self.sets[id]?.counts ?? DeadLetterOperation.Counts()
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
        self.log.withLock { log in _ = log.record(records, written: written) }
        return written
    }

    /// Adds the letters `filter` selects after `cursor` (at most `limit`) to the set of operation `id` as
    /// pending, as ``DeadLetterQueue`` freezes a replay's set, without a `DeadLetterOperationLetter` per letter.
    /// - Returns: the ids added, and whether more letters follow.
    /// - Parameter expected: how many letters the whole set is expected to hold: a new set is given room for
    ///   them at once (growing by doubling moved its arrays about 2% of a memory replay's time).
    func freeze(
        _ filter: DeadLetterFilter,
        after cursor: String?,
        limit: Int,
        into id: String,
        expected: Int = 0
    ) -> (ids: [String], more: Bool) {
        let page = self.ids(filter, after: cursor, limit: limit)
        self.log.withLock { log in
            guard log.operations[id] != nil, !page.ids.isEmpty else { return }
            if log.sets[id] == nil {
                var set = OperationLogState.LetterSet()
                set.reserveCapacity(Swift.min(Swift.max(expected, page.ids.count), 10_000_000))
                log.sets[id] = set
            }
            // The store's ids in its order, which is the order of their texts.
            log.sets[id, default: OperationLogState.LetterSet()].addPending(page.ids, operation: id, sorted: true)
        }
        return page
    }

    /// The ids of the pending letters of operation `id` after `cursor`, at most `limit`: what
    /// ``operationLetters(id:outcomes:after:limit:)`` returns for `[.pending]`, ids only.
    func pendingIDs(operation id: String, after cursor: String?, limit: Int) -> [String] {
        self.log.withLock { log in log.sets[id]?.pendingIDs(after: cursor, limit: Swift.max(1, limit)) ?? [] }
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
                if index < set.ids.count, set.ids[index] == cursor { index += 1 }
            }
            var page: [DeadLetterOperationLetter] = []
            let limit = Swift.max(1, limit)
            while index < set.ids.count, page.count < limit {
                if outcomes.isEmpty || outcomes.contains(set.outcomes[index]) {
                    page.append(set.letter(at: index, operation: id))
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
