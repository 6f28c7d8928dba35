/// Where removed letters go (expired, dropped to make room, purged), so nothing is deleted silently.
public protocol DeadLetterArchive: Sendable {
    /// Writes `letters` durably; returns only once they are safe.
    /// - Parameters:
    ///   - letters: the letters being removed.
    ///   - reason: why: `"expired"`, `"pruned"` or `"purged"`.
    func archive(_ letters: [DeadLetter], reason: String) async throws
}
