public import DeadLetters
import GRDB

/// The outcomes of claimed letters waiting for the writer: completions and releases; see
/// ``SQLiteDeadLetterStore/complete(id:owner:)``.
struct OutcomeQueue: Sendable {
    struct Request: Sendable {
        /// Writes the outcome in the drain's transaction; returns whether the owner still held the lease.
        var write: @Sendable (Database) throws -> Bool
        var continuation: CheckedContinuation<Bool, any Error>
    }

    var pending: [Request] = []
    /// Whether a drain is queued on the writer or running; new requests then just wait for it.
    var draining = false
}

extension SQLiteDeadLetterStore {
    /// Removes a letter whose handler succeeded, if `owner` still holds its lease.
    ///
    /// Completions (and releases) that arrive while the writer is busy wait together and are written in the
    /// next transaction (group commit), so a replay running many letters at once commits (and, when durable,
    /// syncs) once for many of them. Each returns once its write is committed. A task cancelled while it
    /// waits still has its write done and gets the result.
    public func complete(id: String, owner: String) async throws -> Bool {
        try await self.writeOutcome(try Self.outcomeWrite(.complete(id: id), owner: owner))
    }

    /// Writes a claimed letter's new state and ends its lease, if `owner` still holds it; shares commits with
    /// concurrent completions and releases as ``complete(id:owner:)`` does.
    public func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        try await self.writeOutcome(try Self.outcomeWrite(.release(letter), owner: owner))
    }

    /// The statement of an outcome, run in a drain's transaction: it returns whether `owner` still held the
    /// lease (and so the letter was removed or written).
    private static func outcomeWrite(
        _ outcome: DeadLetterOutcome,
        owner: String
    ) throws -> @Sendable (Database) throws -> Bool {
        switch outcome {
        case .complete(let id):
            return { db in
                try db.cachedStatement(sql: "DELETE FROM dlq_letters WHERE id = ? AND lease_owner = ?")
                    .execute(arguments: [id, owner])
                return db.changesCount > 0
            }
        case .release(let letter):
            let arguments = try SQLiteRows.releaseArguments(letter, owner: owner)
            return { db in
                try db.cachedStatement(sql: SQLiteRows.releaseSQL).execute(arguments: arguments)
                return db.changesCount > 0
            }
        }
    }

    /// Writes the outcomes, each with its operation record in the same transaction (a group commit shared
    /// with the other outcomes waiting), so that a replay killed at any moment finds both or neither.
    public func write(
        _ outcomes: [DeadLetterOutcome],
        owner: String,
        recording records: [DeadLetterOperationLetter?]
    ) async throws -> [Bool] {
        guard records.contains(where: { $0 != nil }) else { return try await self.write(outcomes, owner: owner) }
        var writes: [@Sendable (Database) throws -> Bool] = []
        writes.reserveCapacity(outcomes.count)
        for (index, outcome) in outcomes.enumerated() {
            let record = index < records.count ? records[index] : nil
            let apply = try Self.outcomeWrite(outcome, owner: owner)
            writes.append { db in
                guard try apply(db) else { return false }
                if let record { _ = try Self.recordOperationLetter(record, db) }
                return true
            }
        }
        return try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for (index, write) in writes.enumerated() {
                group.addTask { (index, try await self.writeOutcome(write)) }
            }
            var written = [Bool](repeating: false, count: outcomes.count)
            for try await (index, done) in group { written[index] = done }
            return written
        }
    }

    private func writeOutcome(_ write: @escaping @Sendable (Database) throws -> Bool) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            let request = OutcomeQueue.Request(write: write, continuation: continuation)
            let start = self.completions.withLock { queue in
                queue.pending.append(request)
                if queue.draining { return false }
                queue.draining = true
                return true
            }
            if start { self.scheduleCompletions() }
        }
    }

    private func scheduleCompletions() {
        self.pool.asyncWriteWithoutTransaction { db in self.drainCompletions(db) }
    }

    /// Writes every waiting outcome in one transaction, then queues another drain behind the
    /// writes that arrived meanwhile if more outcomes are waiting.
    private func drainCompletions(_ db: Database) {
        let batch = self.completions.withLock { queue in
            let batch = queue.pending
            queue.pending.removeAll(keepingCapacity: true)
            return batch
        }
        // Whether the error came from one of the writes (not from beginning or committing the transaction).
        var writeFailed = false
        do {
            var held: [Bool] = []
            held.reserveCapacity(batch.count)
            try db.inTransaction(.immediate) {
                for request in batch {
                    do { held.append(try request.write(db)) } catch {
                        writeFailed = true
                        throw error
                    }
                }
                try SQLiteSearch.flush(db)
                return .commit
            }
            for (request, done) in zip(batch, held) { request.continuation.resume(returning: done) }
        } catch {
            guard writeFailed, batch.count > 1 else {
                let error = Self.storeError(error, path: self.configuration.path)
                for request in batch { request.continuation.resume(throwing: error) }
                return self.drainNext()
            }
            // One write failed the shared transaction: write each alone, so only a failing one gets an error.
            for request in batch {
                do {
                    var done = false
                    try db.inTransaction(.immediate) {
                        done = try request.write(db)
                        return .commit
                    }
                    request.continuation.resume(returning: done)
                } catch {
                    request.continuation.resume(throwing: Self.storeError(error, path: self.configuration.path))
                }
            }
        }
        self.drainNext()
    }

    /// Queues another drain if outcomes arrived meanwhile; otherwise lets the next one start it.
    private func drainNext() {
        let more = self.completions.withLock { queue in
            if queue.pending.isEmpty {
                queue.draining = false
                return false
            }
            return true
        }
        if more { self.scheduleCompletions() }
    }
}
