public import DeadLetters
import GRDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The appends waiting for the writer; see ``SQLiteDeadLetterStore/append(_:onConflict:limits:)``.
struct AppendQueue: Sendable {
    struct Request: Sendable {
        var letters: [DeadLetter]
        var onConflict: DeadLetterConflictPolicy
        var limits: DeadLetterLimits
        var continuation: CheckedContinuation<DeadLetterAppendResult, any Error>
    }

    var pending: [Request] = []
    /// Whether a drain is queued on the writer or running; new requests then just wait for it.
    var draining = false
    /// How many callers the last commit answered: when many callers append in a loop, the next commit
    /// waits a moment for them to come back (see ``SQLiteDeadLetterStore/gatherCallers()``).
    var lastBatch = 0
}

extension SQLiteDeadLetterStore {
    /// Stores letters, all or none, and returns once their transaction is committed (on disk when durable).
    ///
    /// Appends that arrive while the writer is busy wait together and are committed in the next transaction
    /// (group commit): a caller whose letters fail (a duplicate id under `.fail`, `capacityExceeded`) gets its
    /// error and the others are committed (the transaction is then redone with a savepoint per caller). A task cancelled while it waits still
    /// has its letters committed and gets the result.
    public func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult {
        if letters.isEmpty { return DeadLetterAppendResult(inserted: 0) }
        return try await withCheckedThrowingContinuation { continuation in
            let request = AppendQueue.Request(
                letters: letters,
                onConflict: onConflict,
                limits: limits,
                continuation: continuation
            )
            let start = self.appends.withLock { queue in
                queue.pending.append(request)
                if queue.draining { return false }
                queue.draining = true
                return true
            }
            if start { self.scheduleDrain() }
        }
    }

    private func scheduleDrain() {
        self.pool.asyncWriteWithoutTransaction { db in self.drain(db) }
    }

    /// Commits every waiting append in one transaction, then queues another drain behind the writes that
    /// arrived meanwhile if more appends are waiting.
    private func drain(_ db: Database) {
        self.gatherCallers()
        let batch = self.appends.withLock { queue in
            let batch = queue.pending
            queue.pending.removeAll(keepingCapacity: true)
            queue.lastBatch = batch.count
            return batch
        }
        self.commit(batch, db)
        let more = self.appends.withLock { queue in
            if queue.pending.isEmpty {
                queue.draining = false
                return false
            }
            return true
        }
        if more { self.scheduleDrain() }
    }

    /// When the last commit answered many callers and few are back yet, waits up to 200 µs for half of
    /// them, so that concurrent adders keep sharing commits instead of trickling in one by one (as
    /// PostgreSQL's `commit_delay` does). A lone adder never waits.
    private func gatherCallers() {
        let (waiting, target) = self.appends.withLock { ($0.pending.count, $0.lastBatch / 2) }
        guard target >= 4, waiting < target else { return }
        let deadline = ContinuousClock.now.advanced(by: .microseconds(200))
        while ContinuousClock.now < deadline {
            sched_yield()
            if self.appends.withLock({ $0.pending.count }) >= target { return }
        }
    }

    private func commit(_ batch: [AppendQueue.Request], _ db: Database) {
        let path = self.configuration.path
        let outcomes: [Result<DeadLetterAppendResult, any Error>]
        do {
            try self.prepareToWrite(db)
            // Usually every caller's letters go in: insert them all without savepoints (a savepoint costs a
            // statement journal of every page it changes). If one caller fails, the whole transaction is rolled
            // back and redone with a savepoint per caller, so that the others are still committed.
            if let together = try Self.commitTogether(batch, db) {
                outcomes = together
            } else {
                outcomes = try Self.commitSeparately(batch, db, path: path)
            }
        } catch {
            let error = self.failure(error)
            for request in batch { request.continuation.resume(throwing: error) }
            return
        }
        for (request, outcome) in zip(batch, outcomes) { request.continuation.resume(with: outcome) }
    }

    /// Inserts every caller's letters in one transaction without savepoints.
    /// - Returns: each caller's outcome, or `nil` (the transaction rolled back) when the letters of one of
    ///   several callers failed.
    private static func commitTogether(
        _ batch: [AppendQueue.Request],
        _ db: Database
    ) throws -> [Result<DeadLetterAppendResult, any Error>]? {
        var outcomes: [Result<DeadLetterAppendResult, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        var failed = false
        try db.inTransaction(.immediate) {
            // The totals of the callers done so far, written once before the commit (or before a caller with
            // limits reads them).
            var totals = SQLiteInsertTotals()
            for request in batch {
                if request.limits.isBounded { try totals.write(db) }
                do {
                    let result = try Self.insert(
                        request.letters,
                        onConflict: request.onConflict,
                        limits: request.limits,
                        totals: &totals,
                        db
                    )
                    outcomes.append(.success(result))
                } catch let error as DeadLetterError {
                    if batch.count == 1 { outcomes.append(.failure(error)) } else { failed = true }
                    return .rollback
                }
            }
            try totals.write(db)
            try SQLiteSearch.flush(db)
            return .commit
        }
        return failed ? nil : outcomes
    }

    /// Inserts each caller's letters in its own savepoint, in one transaction: a caller whose letters fail
    /// gets its error and the others are committed.
    private static func commitSeparately(
        _ batch: [AppendQueue.Request],
        _ db: Database,
        path: String
    ) throws -> [Result<DeadLetterAppendResult, any Error>] {
        var outcomes: [Result<DeadLetterAppendResult, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        try db.inTransaction(.immediate) {
            var totals = SQLiteInsertTotals()
            for request in batch {
                guard db.isInsideTransaction else {
                    throw DeadLetterError(code: .io, message: "SQLite ended the transaction", file: path)
                }
                if request.limits.isBounded { try totals.write(db) }
                try db.cachedStatement(sql: "SAVEPOINT dlq_append").execute()
                // The caller's own totals, merged only if its letters stay.
                var own = SQLiteInsertTotals()
                do {
                    let result = try Self.insert(
                        request.letters,
                        onConflict: request.onConflict,
                        limits: request.limits,
                        totals: &own,
                        db
                    )
                    try db.cachedStatement(sql: "RELEASE SAVEPOINT dlq_append").execute()
                    totals.merge(own)
                    outcomes.append(.success(result))
                } catch let error as DeadLetterError {
                    outcomes.append(.failure(error))
                    try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT dlq_append").execute()
                    try db.cachedStatement(sql: "RELEASE SAVEPOINT dlq_append").execute()
                }
            }
            try totals.write(db)
            try SQLiteSearch.flush(db)
            return .commit
        }
        return outcomes
    }

    /// Inserts one caller's letters and keeps the store within its limits; throws to undo them all.
    ///
    /// The running totals the letters add are added to `totals`, which the caller must write; when `limits`
    /// are bounded they are written here (keeping the limits needs them), leaving `totals` empty.
    static func insert(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits,
        totals: inout SQLiteInsertTotals,
        _ db: Database
    ) throws -> DeadLetterAppendResult {
        let statement = try SQLiteInsertStatement(db, skipDuplicates: onConflict == .skip)
        var inserted = 0
        var skipped = 0
        for letter in letters {
            let added: Bool
            do {
                added = try statement.insert(letter)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw DeadLetterError(
                    code: .duplicateID,
                    message: "a letter with this id is already stored",
                    id: letter.id
                )
            }
            if added {
                inserted += 1
                totals.add(letter)
            } else {
                skipped += 1
            }
        }
        guard limits.isBounded else { return DeadLetterAppendResult(inserted: inserted, skipped: skipped) }
        try totals.write(db)
        let evicted = try self.enforce(limits, db)
        return DeadLetterAppendResult(inserted: inserted, skipped: skipped, evicted: evicted)
    }

    /// Keeps the store within `limits` after an insert: throws `capacityExceeded` under `rejectNew`, or
    /// removes and returns the oldest letters under `dropOldest`.
    private static func enforce(_ limits: DeadLetterLimits, _ db: Database) throws -> [DeadLetter] {
        guard limits.isBounded else { return [] }
        let usage = try self.usage(db)
        var excessCount = usage.count - (limits.maxEntries ?? Int.max)
        var excessBytes = usage.bytes - (limits.maxBytes ?? Int.max)
        guard excessCount > 0 || excessBytes > 0 else { return [] }
        if limits.overflow == .rejectNew {
            var limit: [String] = []
            if let maxEntries = limits.maxEntries { limit.append("\(maxEntries) letters") }
            if let maxBytes = limits.maxBytes { limit.append("\(maxBytes) bytes") }
            throw DeadLetterError(
                code: .capacityExceeded,
                message: "the store is full (at most \(limit.joined(separator: " and "))) and its overflow "
                    + "policy is rejectNew"
            )
        }
        var evicted: [DeadLetter] = []
        var seqs: [Int64] = []
        let rows = try Row.fetchCursor(
            db.cachedStatement(sql: "SELECT \(SQLiteRows.columns), size, seq FROM dlq_letters ORDER BY id")
        )
        while excessCount > 0 || excessBytes > 0, let row = try rows.next() {
            evicted.append(try SQLiteRows.decode(row))
            excessCount -= 1
            excessBytes -= try row.decode(Int.self, atIndex: 19)
            seqs.append(try row.decode(Int64.self, atIndex: 20))
        }
        let delete = try db.cachedStatement(sql: "DELETE FROM dlq_letters WHERE seq = ?")
        for seq in seqs { try delete.execute(arguments: [seq]) }
        return evicted
    }

    static func usage(_ db: Database) throws -> DeadLetterUsage {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT coalesce(sum(count), 0), coalesce(sum(bytes), 0) FROM dlq_tallies")
        )
        return DeadLetterUsage(
            count: try row?.decode(Int.self, atIndex: 0) ?? 0,
            bytes: try row?.decode(Int.self, atIndex: 1) ?? 0
        )
    }
}
