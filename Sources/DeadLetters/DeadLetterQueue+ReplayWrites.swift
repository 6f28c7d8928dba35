import Logging

/// A replayed letter's write: its outcome and, when the replay is an operation, the outcome recorded in the
/// operation's set in the same transaction.
struct ReplayWrite: Sendable {
    var outcome: DeadLetterOutcome
    var record: DeadLetterOperationLetter?
}

/// A replay's writes on their way to the store: those that wait while a write is in flight go together.
typealias ReplayWrites = Coalescer<ReplayWrite, Bool>

extension DeadLetterQueue {
    /// Writes one of a replay's outcomes (under the replay's lease owner), with its operation record, in a
    /// batch with the others waiting, in one ``DeadLetterStore/write(_:owner:recording:)`` call, so that they
    /// share a commit; written even when the replay is cancelled (Ctrl-C: the letters in flight finish and
    /// record it). A store that ``writesDirectly`` gets each outcome as it comes.
    /// - Returns: whether it was written (`false`: the lease was lost).
    /// - Throws: the store's error, for every outcome of the batch.
    func write(_ write: ReplayWrite, owner: String, through writes: ReplayWrites) async throws -> Bool {
        if self.writesDirectly {
            return try await self.write([write.outcome], owner: owner, recording: [write.record]).first ?? false
        }
        return try await writes.submit(write) { batch in
            do {
                return try await self.write(batch.map(\.outcome), owner: owner, recording: batch.map(\.record))
                    .map { .success($0) }
            } catch {
                return batch.map { _ in .failure(error) }
            }
        }
    }

    /// Runs a replayed letter's store write; logs it when it fails or finds the lease gone.
    /// - Returns: whether the outcome was written.
    func writeReplayOutcome(
        _ outcome: DeadLetterOutcome,
        recording record: DeadLetterOperationLetter?,
        of letter: DeadLetter,
        _ action: String,
        owner: String,
        _ writes: ReplayWrites
    ) async -> Bool {
        do {
            if try await self.write(ReplayWrite(outcome: outcome, record: record), owner: owner, through: writes) {
                return true
            }
            self.logger.info(
                "lease lost before the outcome was written",
                metadata: ["dlq.message.id": "\(letter.id)", "dlq.action": "\(action)"]
            )
        } catch {
            self.logger.error(
                "could not \(action); it stays leased and runs again when its lease ends",
                metadata: ["dlq.message.id": "\(letter.id)", "error": "\(error)"]
            )
        }
        return false
    }
}
