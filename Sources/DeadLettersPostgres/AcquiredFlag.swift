import Synchronization

/// A flag set once, read from any task.
final class AcquiredFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { self.value.load(ordering: .acquiring) }
    func set() { self.value.store(true, ordering: .releasing) }
    /// Sets the flag; `true` for the caller that set it first.
    func claim() -> Bool {
        self.value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}
