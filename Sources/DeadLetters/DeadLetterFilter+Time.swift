#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension DeadLetterFilter {
    /// The forms a time bound (``since`` / ``until``) takes as text, for messages.
    public static let timeForms =
        "an ISO 8601 time (2026-11-23T10:00:00Z), a date (2026-11-23, midnight UTC) or an age (500ms, 30m, 1.5h, 7d, 2w)"

    /// A time bound written as `dlq` and the HTTP API take it: ISO 8601, a date alone (midnight UTC), or an age
    /// back from `now` (see ``parseAge(_:)``); `nil` when it is none of them.
    public static func parseTime(_ text: String, now: Date) -> Date? {
        if let date = self.parseDate(text) { return date }
        guard let age = self.parseAge(text) else { return nil }
        let parts = age.components
        return now.addingTimeInterval(-(Double(parts.seconds) + Double(parts.attoseconds) / 1e18))
    }

    /// ISO 8601 (`2026-11-23T10:00:00Z`, fractions and offsets allowed) or a date alone (`2026-11-23`, midnight
    /// UTC).
    public static func parseDate(_ text: String) -> Date? {
        if let date = Timestamp.parse(text) { return date }
        guard text.utf8.count == 10 else { return nil }
        return Timestamp.parse(text + "T00:00:00Z")
    }

    /// An age: a number, fractions allowed, then `ms`, `s`, `m`, `h`, `d` or `w` (`500ms`, `90s`, `1.5h`, `7d`);
    /// case and surrounding spaces or tabs are ignored.
    public static func parseAge(_ text: String) -> Duration? {
        guard text.utf8.count <= 32 else { return nil }
        var trimmed = Substring(text)
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        let text = trimmed.lowercased()
        let units: [(String, Double)] = [
            ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            // "ms" also ends with "s": a unit counts only when what precedes it is a number.
            guard let value = Double(text.dropLast(suffix.count)) else { continue }
            return self.duration(seconds: value * scale)
        }
        return nil
    }

    /// `seconds` as a duration, when it is a number from 0 to about 100 years (3.2 billion seconds).
    public static func duration(seconds: Double) -> Duration? {
        // Well inside Int64 nanoseconds (9.2e18), so that neither this nor a sleep for it can overflow.
        guard seconds >= 0, seconds <= 3.2e9 else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }
}
