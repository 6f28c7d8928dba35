import ArgumentParser
import DeadLetters
import Foundation

/// The filters shared by every command that selects letters.
struct FilterOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Only letters from this source (repeatable).", valueName: "source"))
    var source: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("Only letters with this reason, e.g. timeout, decoding (repeatable).", valueName: "reason")
    )
    var reason: [String] = []

    @Option(name: .long, help: ArgumentHelp("Only letters whose error has this type (repeatable).", valueName: "type"))
    var errorType: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("Only letters with this fingerprint (repeatable; see 'dlq groups').", valueName: "hash")
    )
    var fingerprint: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("Only letters in this status: retrying, dead, parked (repeatable).", valueName: "status"),
        completion: .list(DeadLetterStatus.allCases.map(\.rawValue))
    )
    var status: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only letters that last failed at or after this time: ISO 8601, a date, or an age like 30m, 2h, 7d.",
            valueName: "time"
        ),
        transform: TimeBound.parse
    )
    var since: TimeBound?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only letters that last failed before this time: ISO 8601, a date, or an age like 30m, 2h, 7d.",
            valueName: "time"
        ),
        transform: TimeBound.parse
    )
    var until: TimeBound?

    @Option(name: .long, help: ArgumentHelp("Only letters with at least this many attempts.", valueName: "n"))
    var minAttempts: Int?

    @Option(
        name: .long,
        help: ArgumentHelp("Only letters whose error message contains this text (ignoring case).", valueName: "text")
    )
    var search: String?

    @Option(name: .long, help: ArgumentHelp("At most this many letters, oldest first.", valueName: "n"))
    var limit: Int?

    func validate() throws {
        for value in self.status where DeadLetterStatus(rawValue: value.lowercased()) == nil {
            throw ValidationError("--status must be retrying, dead or parked, not '\(value)'")
        }
        if let minAttempts, minAttempts < 0 { throw ValidationError("--min-attempts must not be negative") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        for (name, values) in [
            ("--source", self.source), ("--reason", self.reason), ("--error-type", self.errorType),
            ("--fingerprint", self.fingerprint),
        ] where values.contains(where: \.isEmpty) {
            throw ValidationError("\(name) must not be empty")
        }
    }

    /// Whether any filter (not counting `--limit`) was given.
    var selectsSubset: Bool { !self.filter(now: Date()).isEmpty }

    /// The filter, with ages measured back from `now`.
    func filter(now: Date = Date()) -> DeadLetterFilter {
        DeadLetterFilter(
            sources: self.source,
            reasons: self.reason,
            errorTypes: self.errorType,
            fingerprints: self.fingerprint,
            statuses: self.status.compactMap { DeadLetterStatus(rawValue: $0.lowercased()) },
            since: self.since?.date(now: now),
            until: self.until?.date(now: now),
            minAttempts: self.minAttempts,
            search: self.search.flatMap { $0.isEmpty ? nil : $0 }
        )
    }
}

/// A point in time given as ISO 8601 (`2026-11-23T10:00:00Z`, or a date `2026-11-23` meaning midnight UTC) or as
/// an age before now (`90s`, `30m`, `2h`, `7d`, `2w`).
enum TimeBound: ExpressibleByArgument, Sendable {
    case absolute(Date)
    case age(Duration)

    init?(argument: String) {
        if let date = DeadLetterFilter.parseDate(argument) {
            self = .absolute(date)
        } else if let age = DeadLetterFilter.parseAge(argument) {
            self = .age(age)
        } else {
            return nil
        }
    }

    /// For `@Option(transform:)`: a wrong value's message says which forms are taken.
    static func parse(_ argument: String) throws -> TimeBound {
        guard let bound = TimeBound(argument: argument) else {
            throw ValidationError("must be \(DeadLetterFilter.timeForms)")
        }
        return bound
    }

    func date(now: Date) -> Date {
        switch self {
        case .absolute(let date): return date
        case .age(let age): return now.addingTimeInterval(-age.seconds)
        }
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A length of time: `500ms`, `30s`, `5m`, `2h`, `7d`, `2w`, or a number of seconds.
struct DurationArgument: ExpressibleByArgument, Sendable {
    var duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    init?(argument: String) {
        guard let duration = Self.parse(argument, allowBareSeconds: true) else { return nil }
        self.duration = duration
    }

    var defaultValueDescription: String { Self.format(self.duration) }

    static func parse(_ text: String, allowBareSeconds: Bool) -> Duration? {
        if let age = DeadLetterFilter.parseAge(text) { return age }
        guard allowBareSeconds, let seconds = Double(text.trimmingCharacters(in: .whitespaces)) else { return nil }
        return DeadLetterFilter.duration(seconds: seconds)
    }

    static func format(_ duration: Duration) -> String {
        let seconds = duration.seconds
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds.rounded() == seconds { return "\(Int(seconds))s" }
        return String(format: "%.1fs", seconds)
    }
}

/// A rate: `10/s`, `600/m`, `3600/h`, or a number per second.
struct RateArgument: ExpressibleByArgument, Sendable {
    var perSecond: Double

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let value = Double(parts[0]), value > 0, value.isFinite else {
            return nil
        }
        let scale: Double
        switch parts.count == 2 ? String(parts[1]) : "s" {
        case "s", "sec", "second": scale = 1
        case "m", "min", "minute": scale = 1.0 / 60
        case "h", "hour": scale = 1.0 / 3600
        default: return nil
        }
        self.perSecond = value * scale
    }
}
