/// Replaces the values of secret metadata keys before anything is stored.
///
/// Keys match ignoring case, exactly otherwise: with the default keys, `Authorization` and `API-KEY` are
/// redacted, `authorization-hint` is not.
public struct MetadataRedactor: Sendable, Hashable {
    /// The keys redacted by default.
    public static let defaultKeys: Set<String> = ["password", "secret", "token", "authorization", "api-key", "cookie"]
    /// What a redacted value becomes.
    public static let placeholder = "[REDACTED]"

    /// The keys to redact, in lower case.
    public let keys: Set<String>

    /// Creates a redactor.
    /// - Parameter keys: the metadata keys whose values are replaced, matched ignoring case; default
    ///   ``defaultKeys``.
    public init(keys: Set<String> = MetadataRedactor.defaultKeys) {
        self.keys = Set(keys.map { $0.lowercased() })
    }

    /// `metadata` with the value of every configured key replaced by ``placeholder``.
    public func redact(_ metadata: [String: String]) -> [String: String] {
        guard !self.keys.isEmpty, !metadata.isEmpty else { return metadata }
        var result = metadata
        for key in metadata.keys where self.keys.contains(key.lowercased()) {
            result[key] = Self.placeholder
        }
        return result
    }
}
