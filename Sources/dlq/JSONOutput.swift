import DeadLetters
import Foundation

/// The JSON documents `--json` writes: letters in the stored format (``DeadLetterJSON``), and the `stats` and
/// `groups` objects of DESIGN.md with their keys in the documented order.
enum JSONOutput {
    /// A JSON string literal.
    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func timestamp(_ date: Date?) -> String {
        date.map { Self.string(Timestamp.format($0)) } ?? "null"
    }

    static func object(_ counts: [String: Int]) -> String {
        "{" + counts.sorted { $0.key < $1.key }.map { "\(Self.string($0.key)):\($0.value)" }.joined(separator: ",")
            + "}"
    }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String((value * 1000).rounded() / 1000)
    }

    /// `stats --json`: `total`, `byReason`, `bySource`, `byErrorType`, `byStatus`, `byAge`, `oldestFailedAt`,
    /// `newestFailedAt`, `averageAttempts`.
    static func summary(_ summary: DeadLetterSummary) -> String {
        var byAge = summary.byAge
        for bucket in DeadLetterSummary.ageBuckets where byAge[bucket] == nil { byAge[bucket] = 0 }
        let ageText =
            "{"
            + DeadLetterSummary.ageBuckets.map { "\(Self.string($0)):\(byAge[$0] ?? 0)" }.joined(separator: ",")
            + "}"
        var byStatus = summary.byStatus
        for status in DeadLetterStatus.allCases where byStatus[status.rawValue] == nil { byStatus[status.rawValue] = 0 }
        return "{\"total\":\(summary.total),\"byReason\":\(Self.object(summary.byReason)),"
            + "\"bySource\":\(Self.object(summary.bySource)),\"byErrorType\":\(Self.object(summary.byErrorType)),"
            + "\"byStatus\":\(Self.object(byStatus)),\"byAge\":\(ageText),"
            + "\"oldestFailedAt\":\(Self.timestamp(summary.oldestFailedAt)),"
            + "\"newestFailedAt\":\(Self.timestamp(summary.newestFailedAt)),"
            + "\"averageAttempts\":\(Self.number(summary.averageAttempts))}"
    }

    /// One group of `groups --json`.
    static func group(_ group: DeadLetterGroup) -> String {
        "{\"fingerprint\":\(Self.string(group.fingerprint)),\"count\":\(group.count),"
            + "\"errorType\":\(Self.string(group.errorType)),\"sampleMessage\":\(Self.string(group.sampleMessage)),"
            + "\"sources\":[\(group.sources.map(Self.string).joined(separator: ","))],"
            + "\"firstFailedAt\":\(Self.timestamp(group.firstFailedAt)),"
            + "\"lastFailedAt\":\(Self.timestamp(group.lastFailedAt))}"
    }

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
