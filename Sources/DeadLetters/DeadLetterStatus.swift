/// Where a dead letter stands.
public enum DeadLetterStatus: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// Scheduled for another attempt at its `nextAttemptAt`.
    case retrying
    /// Out of attempts; waits for people to redrive, replay, archive or purge it.
    case dead
    /// Failed again after being replayed too many times; kept apart from the rest, and left alone by replay
    /// and redrive unless a filter selects `parked` explicitly.
    case parked

    public var description: String { self.rawValue }
}
