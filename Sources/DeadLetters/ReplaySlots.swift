/// A page of a replay and the letters of it this replay claimed.
struct ReplayBatch: Sendable {
    var claimed: [DeadLetter]
    /// The id of the page's last letter, where the next page starts.
    var cursor: String
    /// How many letters the page held (claimed or not).
    var count: Int
    /// Whether no page follows.
    var isLast: Bool
}

/// The handler slots of a replay: the loop takes one before it starts a letter, the letter gives it back
/// once its handler returned.
final class ReplaySlots: Sendable {
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: PThreadLock<State>

    init(_ count: Int) {
        self.state = PThreadLock(State(free: count))
    }

    /// Takes a slot, waiting for one to be given back if none is free.
    func acquire() async {
        let taken = self.state.withLock { state in
            guard state.free > 0 else { return false }
            state.free -= 1
            return true
        }
        if taken { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = self.state.withLock { state in
                guard state.free > 0 else {
                    state.waiters.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if now { continuation.resume() }
        }
    }

    /// Gives a slot back, to the first waiter if any.
    func release() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume()
    }
}
