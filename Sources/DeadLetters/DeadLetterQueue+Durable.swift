extension DeadLetterQueue {
    /// Runs one of the queue's writes to its store so that it finishes even when the calling task is
    /// cancelled: every write of the engine (stored letters, claims, outcomes, state changes, removals) goes
    /// through here.
    ///
    /// A cancelled caller (Ctrl-C during a replay, a service shutting down, a request whose client went away)
    /// must still record its dead letter and the outcome of the letters it ran, or a letter is lost, runs
    /// again, or stays leased and counts as an abandoned claim. Not every store can write from a cancelled
    /// task (GRDB's async writes and PostgresNIO's waits for a connection throw `CancellationError`), so the
    /// write runs in a task of its own, which the caller's cancellation does not reach; the caller waits for
    /// it. This is the one free-standing task of the library (STYLE: "a short shield"). Reads do not need it:
    /// a cancelled read changes nothing.
    ///
    /// A store that ``writesDirectly`` needs no shield: its writes run as they are.
    func durably<Result: Sendable>(
        _ write: @escaping @Sendable (any DeadLetterStore) async throws -> Result
    ) async throws -> Result {
        let store = self.store
        if self.writesDirectly { return try await write(store) }
        return try await Task { try await write(store) }.value
    }

    /// Whether the queue writes to its store one call at a time, as it comes, without the shield of
    /// ``durably(_:)`` or the batching of a replay's outcomes: the memory store, whose writes never suspend
    /// or look at cancellation and have no commits to share. Measured, the shield would cost about 0.8 µs a
    /// write (some 30% of a `DeadLetterQueue.add` on that store) and the batching about a third of a memory
    /// replay's throughput.
    var writesDirectly: Bool {
        self.memoryStore != nil
    }
}
