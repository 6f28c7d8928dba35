public import DeadLetters
import Dispatch
import GRDB

extension SQLiteDeadLetterStore {
    /// Stores every letter of `letters` in one transaction: all or nothing, even if the process dies midway.
    ///
    /// The letters are read in chunks while the transaction is open, so memory stays flat however many there
    /// are. Other writes wait until the import commits or rolls back.
    /// - Throws: whatever reading `letters` throws (nothing is stored then), `duplicateID` under `.fail`, or a
    ///   store error.
    public func importLetters<Letters: AsyncSequence & Sendable>(
        _ letters: Letters,
        onConflict: DeadLetterConflictPolicy
    ) async throws -> DeadLetterAppendResult where Letters.Element == DeadLetter {
        let channel = ImportChannel()
        return try await withThrowingTaskGroup(of: DeadLetterAppendResult?.self) { group in
            group.addTask {
                do {
                    var chunk: [DeadLetter] = []
                    chunk.reserveCapacity(ImportChannel.chunkSize)
                    for try await letter in letters {
                        chunk.append(letter)
                        if chunk.count == ImportChannel.chunkSize {
                            guard await channel.send(chunk) else { return nil }
                            chunk.removeAll(keepingCapacity: true)
                        }
                    }
                    if !chunk.isEmpty { _ = await channel.send(chunk) }
                    channel.finish(throwing: nil)
                } catch {
                    channel.finish(throwing: error)
                }
                return nil
            }
            group.addTask {
                defer { channel.close() }
                let result = try await self.writeWithoutTransaction { db in
                    defer { channel.close() }
                    // The commit is durable once the log is synced; copying a large import from the log into the
                    // file (the checkpoint SQLite would run inside this commit) is left to the next writer turn,
                    // queued below, so the import returns at its commit.
                    try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
                    defer { try? db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walAutocheckpointPages)") }
                    var total = DeadLetterAppendResult(inserted: 0)
                    try db.inTransaction(.immediate) {
                        total = try Self.insertAll(from: channel, onConflict: onConflict, db)
                        try SQLiteSearch.flush(db, force: true)
                        return .commit
                    }
                    return total
                }
                self.pool.asyncWriteWithoutTransaction { db in _ = try? db.checkpoint(.passive) }
                return result
            }
            var result: DeadLetterAppendResult?
            for try await outcome in group {
                if let outcome { result = outcome }
            }
            return result ?? DeadLetterAppendResult(inserted: 0)
        }
    }
}

extension SQLiteDeadLetterStore {
    /// Inserts the chunks `channel` delivers until it ends; throws what reading the import threw.
    fileprivate static func insertAll(
        from channel: ImportChannel,
        onConflict: DeadLetterConflictPolicy,
        _ db: Database
    ) throws -> DeadLetterAppendResult {
        var total = DeadLetterAppendResult(inserted: 0)
        // Written when they grow large and at the end: one upsert per distinct key, not per chunk.
        var totals = SQLiteInsertTotals()
        while let chunk = try channel.receive() {
            let result = try Self.insert(chunk, onConflict: onConflict, limits: .unbounded, totals: &totals, db)
            if totals.keyCount >= SQLiteInsertTotals.largeKeyCount { try totals.write(db) }
            total.inserted += result.inserted
            total.skipped += result.skipped
        }
        try totals.write(db)
        return total
    }
}

/// Hands chunks of letters from the task reading an import to the writer thread inserting them, at most
/// two chunks ahead.
final class ImportChannel: Sendable {
    static let chunkSize = 512

    private struct State {
        var chunks: [[DeadLetter]] = []
        var finished = false
        var failure: (any Error)?
        var closed = false
        var spaceWaiter: CheckedContinuation<Void, Never>?
    }

    private let state = SQLiteLock(State())
    private let available = DispatchSemaphore(value: 0)

    /// Queues a chunk, waiting while two are queued. Returns `false` when the reader stopped.
    func send(_ chunk: [DeadLetter]) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = self.state.withLock { state in
                if state.closed || state.chunks.count < 2 { return true }
                state.spaceWaiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
        let queued = self.state.withLock { state in
            if state.closed { return false }
            state.chunks.append(chunk)
            return true
        }
        if queued { self.available.signal() }
        return queued
    }

    /// Ends the stream, with the error that stopped it, if any.
    func finish(throwing error: (any Error)?) {
        self.state.withLock { state in
            state.finished = true
            state.failure = error
        }
        self.available.signal()
    }

    /// The next chunk, blocking the calling thread until there is one; `nil` at the end.
    func receive() throws -> [DeadLetter]? {
        self.available.wait()
        let (chunk, waiter, failure) = self.state.withLock {
            state -> ([DeadLetter]?, CheckedContinuation<Void, Never>?, (any Error)?) in
            if !state.chunks.isEmpty {
                let waiter = state.spaceWaiter
                state.spaceWaiter = nil
                return (state.chunks.removeFirst(), waiter, nil)
            }
            return (nil, nil, state.failure)
        }
        waiter?.resume()
        if let failure { throw failure }
        return chunk
    }

    /// Stops the reading side: queued and later chunks are dropped and a waiting sender returns.
    func close() {
        let waiter = self.state.withLock { state in
            state.closed = true
            state.chunks.removeAll()
            let waiter = state.spaceWaiter
            state.spaceWaiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
