import DeadLetters
import GRDB

/// The completions waiting for the writer; see ``SQLiteDeadLetterStore/complete(id:owner:)``.
struct CompleteQueue: Sendable {
    struct Request: Sendable {
        var id: String
        var owner: String
        var continuation: CheckedContinuation<Bool, any Error>
    }

    var pending: [Request] = []
    /// Whether a drain is queued on the writer or running; new requests then just wait for it.
    var draining = false
}

extension SQLiteDeadLetterStore {
    /// Removes a letter whose handler succeeded, if `owner` still holds its lease.
    ///
    /// Completions that arrive while the writer is busy wait together and are removed in the next
    /// transaction (group commit), so a replay running many letters at once commits (and, when durable,
    /// syncs) once for many of them. Each returns once its removal is committed. A task cancelled while it
    /// waits still has its letter removed and gets the result.
    public func complete(id: String, owner: String) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            let request = CompleteQueue.Request(id: id, owner: owner, continuation: continuation)
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

    /// Removes every waiting completion's letter in one transaction, then queues another drain behind the
    /// writes that arrived meanwhile if more completions are waiting.
    private func drainCompletions(_ db: Database) {
        let batch = self.completions.withLock { queue in
            let batch = queue.pending
            queue.pending.removeAll(keepingCapacity: true)
            return batch
        }
        var removed: [Bool] = []
        removed.reserveCapacity(batch.count)
        do {
            try db.inTransaction(.immediate) {
                let delete = try db.cachedStatement(sql: "DELETE FROM dlq_letters WHERE id = ? AND lease_owner = ?")
                for request in batch {
                    try delete.execute(arguments: [request.id, request.owner])
                    removed.append(db.changesCount > 0)
                }
                return .commit
            }
            for (request, done) in zip(batch, removed) { request.continuation.resume(returning: done) }
        } catch {
            let error = Self.storeError(error, path: self.configuration.path)
            for request in batch { request.continuation.resume(throwing: error) }
        }
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
