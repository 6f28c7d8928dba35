extension DeadLetterQueue {
    /// Closes the queue's store when it has something to release (a ``ClosableDeadLetterStore``, such as the
    /// SQLite store), looking through wrappers (``DeadLetterStoreWrapper``) such as the encrypted store; does
    /// nothing for a store without one (the memory store). Later calls that reach the store throw.
    ///
    /// Same as calling the store's own `close()`, without casting ``store``.
    /// - Throws: the store's error when it cannot close cleanly.
    public func close() async throws {
        var store: any DeadLetterStore = self.store
        while true {
            if let closable = store as? any ClosableDeadLetterStore {
                try await closable.close()
                return
            }
            guard let wrapper = store as? any DeadLetterStoreWrapper else { return }
            store = wrapper.base
        }
    }
}
