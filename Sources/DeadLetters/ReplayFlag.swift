import Synchronization

/// A flag that is set once and read by the replay before each letter, without a lock.
///
/// A lock per read cost a replay two of the four locks it took per letter (with ``CancelledOperations``):
/// about 5% of a memory replay at concurrency 1.
final class ReplayFlag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { self.value.load(ordering: .acquiring) }

    func set() { self.value.store(true, ordering: .releasing) }
}

/// The operations cancelled in this process (so that their replays stop at their next letter), with their
/// number readable without the lock: a replay asks before each letter, and almost always none is cancelled.
final class CancelledOperations: Sendable {
    private let ids = PThreadLock<Set<String>>([])
    private let count = Atomic<Int>(0)

    func insert(_ id: String) {
        self.ids.withLock { ids in
            if ids.insert(id).inserted { self.count.add(1, ordering: .releasing) }
        }
    }

    func remove(_ id: String) {
        self.ids.withLock { ids in
            if ids.remove(id) != nil { self.count.subtract(1, ordering: .releasing) }
        }
    }

    func contains(_ id: String) -> Bool {
        guard self.count.load(ordering: .acquiring) > 0 else { return false }
        return self.ids.withLock { $0.contains(id) }
    }
}
