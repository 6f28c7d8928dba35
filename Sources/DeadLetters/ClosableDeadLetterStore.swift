/// A store that holds something to release when it is no longer used (a file, connections).
///
/// ``DeadLetterQueue/close()`` closes a queue's store through this protocol, so that code holding only the
/// queue need not cast ``DeadLetterQueue/store`` to the store's type. A store with nothing to release (the
/// memory store) does not conform.
public protocol ClosableDeadLetterStore: DeadLetterStore {
    /// Releases what the store holds; later calls to the store throw.
    /// - Throws: the store's error when it cannot close cleanly.
    func close() async throws
}
