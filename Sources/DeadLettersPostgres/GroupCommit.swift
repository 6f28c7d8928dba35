import DeadLetters
import Synchronization

/// The queue of appends waiting for a group commit.
///
/// There is no background task: the first appenders (up to ``PostgresDeadLetterStore/Configuration/maxConcurrentCommits``)
/// become committers. A committer takes a batch of waiting appends, commits them in one transaction, hands each
/// caller its result, and when its own append is done hands its role to the next waiting appender.
final class GroupCommit: Sendable {
    struct Request: Sendable {
        let id: UInt64
        let letters: [DeadLetter]
        let onConflict: DeadLetterConflictPolicy
        let limits: DeadLetterLimits
    }

    enum Outcome: Sendable {
        /// The append was committed or failed.
        case done(Result<DeadLetterAppendResult, any Error>)
        /// The caller is now a committer.
        case lead
    }

    private struct State {
        var nextID: UInt64 = 0
        var pending: [Request] = []
        var committers = 0
        var leaders: Set<UInt64> = []
        var waiting: [UInt64: CheckedContinuation<Outcome, Never>] = [:]
        var ready: [UInt64: Outcome] = [:]
    }

    private let state = Mutex(State())

    /// Queues an append; returns its id and whether the caller must commit.
    func enqueue(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits,
        maxCommitters: Int
    ) -> (id: UInt64, lead: Bool) {
        self.state.withLock { state in
            state.nextID += 1
            let id = state.nextID
            state.pending.append(Request(id: id, letters: letters, onConflict: onConflict, limits: limits))
            guard state.committers < maxCommitters else { return (id, false) }
            state.committers += 1
            state.leaders.insert(id)
            return (id, true)
        }
    }

    /// Waits for the outcome of the append `id`.
    func wait(_ id: UInt64) async -> Outcome {
        await withCheckedContinuation { continuation in
            let ready = self.state.withLock { state -> Outcome? in
                if let outcome = state.ready.removeValue(forKey: id) { return outcome }
                state.waiting[id] = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Takes the next batch: the oldest waiting appends with the same limits, up to `maxLetters` letters
    /// (at least one append). When there is none, the committer `leader` stops being one.
    func takeBatch(maxLetters: Int, leader: UInt64) -> [Request] {
        self.state.withLock { state in
            guard let first = state.pending.first else {
                state.committers -= 1
                state.leaders.remove(leader)
                return []
            }
            var count = first.letters.count
            var end = 1
            while end < state.pending.count, state.pending[end].limits == first.limits,
                count + state.pending[end].letters.count <= maxLetters
            {
                count += state.pending[end].letters.count
                end += 1
            }
            let batch = Array(state.pending[..<end])
            state.pending.removeFirst(end)
            return batch
        }
    }

    /// Hands `outcome` to the caller of append `id`, now or when it waits.
    func deliver(_ id: UInt64, _ outcome: Outcome) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            if let continuation = state.waiting.removeValue(forKey: id) { return continuation }
            state.ready[id] = outcome
            return nil
        }
        continuation?.resume(returning: outcome)
    }

    /// The outcome of `id` if another committer already delivered it.
    func takeReady(_ id: UInt64) -> Outcome? {
        self.state.withLock { $0.ready.removeValue(forKey: id) }
    }

    /// The committer `leader` is done: its role goes to the oldest waiting append that is not a committer
    /// itself, or ends.
    func handOver(from leader: UInt64) {
        let next = self.state.withLock { state -> UInt64? in
            state.leaders.remove(leader)
            guard let next = state.pending.first(where: { !state.leaders.contains($0.id) }) else {
                state.committers -= 1
                return nil
            }
            state.leaders.insert(next.id)
            return next.id
        }
        if let next { self.deliver(next, .lead) }
    }
}
