import DeadLetters
import Foundation

/// The JSON documents `--json` writes are made by ``DeadLetterJSON``: letters in the stored format, and the
/// `stats` and `groups` objects the README documents (the HTTP API writes the same ones).
enum JSONOutput {
    /// A JSON array, one element per line.
    static func array(_ elements: [String]) -> String {
        elements.isEmpty ? "[]" : "[\n" + elements.joined(separator: ",\n") + "\n]"
    }
}

/// Times and sizes for people.
enum Human {
    /// "3s ago", "5m ago", "2h ago", "4d ago".
    static func age(_ date: Date, now: Date = Date()) -> String {
        let seconds = max(0, now.timeIntervalSince(date))
        switch seconds {
        case ..<60: return "\(Int(seconds))s ago"
        case ..<3600: return "\(Int(seconds / 60))m ago"
        case ..<86_400: return "\(Int(seconds / 3600))h ago"
        default: return "\(Int(seconds / 86_400))d ago"
        }
    }

    /// "in 5m", or an age when past.
    static func relative(_ date: Date, now: Date = Date()) -> String {
        let seconds = date.timeIntervalSince(now)
        guard seconds > 0 else { return Self.age(date, now: now) }
        switch seconds {
        case ..<60: return "in \(Int(seconds))s"
        case ..<3600: return "in \(Int(seconds / 60))m"
        case ..<86_400: return "in \(Int(seconds / 3600))h"
        default: return "in \(Int(seconds / 86_400))d"
        }
    }

    static func bytes(_ count: Int) -> String {
        if count < 1024 { return "\(count) B" }
        if count < 1024 * 1024 { return String(format: "%.1f KiB", Double(count) / 1024) }
        return String(format: "%.1f MiB", Double(count) / 1024 / 1024)
    }

    /// "1 letter", "3 letters".
    static func count(_ count: Int, _ noun: String, plural: String? = nil) -> String {
        "\(count) " + (count == 1 ? noun : plural ?? noun + "s")
    }
}
