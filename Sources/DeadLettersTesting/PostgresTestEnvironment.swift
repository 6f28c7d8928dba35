#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where tests find a PostgreSQL server, as this package's own tests do.
///
/// `DLQ_POSTGRES_URL` names the server (`scripts/postgres start` starts a throwaway one and prints its URL).
/// Without it, PostgreSQL tests are skipped with a visible message; `DLQ_REQUIRE_POSTGRES=1` (set by CI) makes a
/// missing server a failure instead, so CI always runs them for real.
public enum PostgresTestEnvironment {
    /// The server's URL, or `nil` when `DLQ_POSTGRES_URL` is unset or empty.
    public static let url: String? = {
        let value = ProcessInfo.processInfo.environment["DLQ_POSTGRES_URL"] ?? ""
        return value.isEmpty ? nil : value
    }()

    /// Whether a missing server must fail the tests (`DLQ_REQUIRE_POSTGRES=1`).
    public static let required = ProcessInfo.processInfo.environment["DLQ_REQUIRE_POSTGRES"] == "1"

    /// Whether a server was given.
    public static var isAvailable: Bool { url != nil }
}
