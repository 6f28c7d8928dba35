/// Runs concurrent requests in batches, one store call per batch: the way PostgreSQL's `complete` shares a
/// statement, and a replay's outcomes share a ``DeadLetterStore/write(_:owner:)`` call (and so its commit).
///
/// There is no background task: the first callers (up to `maxLeaders`) become leaders. A leader takes the
/// oldest waiting requests (up to `maxBatch`), runs them together, hands each caller its result, and when its
/// own request is done hands its role to the oldest waiting caller that is not a leader.
package final class Coalescer<Item: Sendable, Value: Sendable>: Sendable {
    enum Outcome: Sendable {
        case done(Result<Value, any Error>)
        case lead
    }

    private struct State {
        var nextID: UInt64 = 0
        var pending: [(id: UInt64, item: Item)] = []
        var leaders: Set<UInt64> = []
        var waiting: [UInt64: CheckedContinuation<Outcome, Never>] = [:]
        var ready: [UInt64: Outcome] = [:]
    }

    private let state = PThreadLock(State())
    private let maxLeaders: Int
    private let maxBatch: Int

    /// Creates a coalescer.
    /// - Parameters:
    ///   - maxLeaders: at most this many batches run at once (at least 1).
    ///   - maxBatch: at most this many requests in a batch (at least 1).
    package init(maxLeaders: Int, maxBatch: Int) {
        self.maxLeaders = max(1, maxLeaders)
        self.maxBatch = max(1, maxBatch)
    }

    /// Runs `item` in a batch; `run` gets a batch's items and returns one result per item, in order.
    package func submit(
        _ item: Item,
        run: @Sendable ([Item]) async -> [Result<Value, any Error>]
    ) async throws -> Value {
        let (id, lead) = self.state.withLock { state -> (UInt64, Bool) in
            state.nextID += 1
            let id = state.nextID
            state.pending.append((id, item))
            guard state.leaders.count < self.maxLeaders else { return (id, false) }
            state.leaders.insert(id)
            return (id, true)
        }
        var outcome = lead ? Outcome.lead : await self.wait(id)
        while true {
            switch outcome {
            case .done(let result):
                // A leader may have handed this request the lead while another leader was finishing it: give the
                // role on rather than keep it (a kept role would be lost, and with it a leader slot).
                let handedLead = self.state.withLock { state -> Bool in
                    if case .lead? = state.ready[id] { state.ready[id] = nil }
                    return state.leaders.remove(id) != nil
                }
                if handedLead { self.handOver(from: id) }
                return try result.get()
            case .lead: outcome = await self.lead(id, run)
            }
        }
    }

    /// Runs batches until the request `id` is done.
    private func lead(_ id: UInt64, _ run: @Sendable ([Item]) async -> [Result<Value, any Error>]) async -> Outcome {
        while true {
            let batch = self.state.withLock { state -> [(id: UInt64, item: Item)] in
                guard !state.pending.isEmpty else {
                    state.leaders.remove(id)
                    return []
                }
                let count = min(self.maxBatch, state.pending.count)
                let batch = Array(state.pending[..<count])
                state.pending.removeFirst(count)
                return batch
            }
            // Another leader took this request: its result comes from there.
            if batch.isEmpty { return await self.wait(id) }
            var results = await run(batch.map(\.item))
            if results.count != batch.count {
                results = batch.map { _ in .failure(CoalescerMismatch()) }
            }
            var mine: Outcome?
            for (request, result) in zip(batch, results) {
                if request.id == id {
                    mine = .done(result)
                } else {
                    self.deliver(request.id, .done(result))
                }
            }
            if let outcome = mine ?? self.state.withLock({ $0.ready.removeValue(forKey: id) }) {
                self.handOver(from: id)
                return outcome
            }
        }
    }

    private func wait(_ id: UInt64) async -> Outcome {
        await withCheckedContinuation { continuation in
            let ready = self.state.withLock { state -> Outcome? in
                if let outcome = state.ready.removeValue(forKey: id) { return outcome }
                state.waiting[id] = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func deliver(_ id: UInt64, _ outcome: Outcome) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            if let continuation = state.waiting.removeValue(forKey: id) { return continuation }
            state.ready[id] = outcome
            return nil
        }
        continuation?.resume(returning: outcome)
    }

    /// The leader `leader` is done: its role goes to the oldest waiting request that is not a leader itself.
    private func handOver(from leader: UInt64) {
        let next = self.state.withLock { state -> UInt64? in
            state.leaders.remove(leader)
            guard let next = state.pending.first(where: { !state.leaders.contains($0.id) }) else { return nil }
            state.leaders.insert(next.id)
            return next.id
        }
        if let next { self.deliverLead(next) }
    }

    /// Gives `id` the lead, unless it finished meanwhile (then it has already given the role on).
    private func deliverLead(_ id: UInt64) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            guard state.leaders.contains(id) else { return nil }
            if let continuation = state.waiting.removeValue(forKey: id) { return continuation }
            state.ready[id] = .lead
            return nil
        }
        continuation?.resume(returning: .lead)
    }
}

/// A batch runner returned the wrong number of results (a bug).
struct CoalescerMismatch: Error, CustomStringConvertible {
    var description: String { "a batch returned the wrong number of results" }
}
