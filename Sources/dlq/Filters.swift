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
        help: ArgumentHelp(
            "Only letters with this fingerprint, or a unique prefix of it of 8 or more characters (repeatable; see "
                + "'dlq groups').",
            valueName: "hash"
        )
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
            "Only letters that last failed at or after this time: \(TimeBound.shortForms).",
            discussion: TimeBound.utcNote,
            valueName: "time"
        ),
        transform: TimeBound.parse
    )
    var since: TimeBound?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only letters that last failed before this time (same forms as --since).",
            valueName: "time"
        ),
        transform: TimeBound.parse
    )
    var until: TimeBound?

    @Option(
        name: .long,
        help: ArgumentHelp("Only letters with at least this many attempts (0 or more).", valueName: "n"),
        transform: { try WholeNumber.parse($0, atLeast: 0) }
    )
    var minAttempts: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only letters whose error message, a metadata value or text payload contains this text (ignoring "
                + "case; sealed payloads are not searched).",
            valueName: "text"
        )
    )
    var search: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only letters whose metadata has this key with exactly this value (repeatable; all must hold).",
            valueName: "key=value"
        ),
        transform: MetadataPair.parse
    )
    var meta: [MetadataPair] = []

    @Option(
        name: .long,
        help: ArgumentHelp("At most this many letters, oldest first (1 or more).", valueName: "n"),
        transform: { try WholeNumber.parse($0, atLeast: 1) }
    )
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
        var keys: [String: String] = [:]
        for pair in self.meta {
            if let value = keys[pair.key], value != pair.value {
                throw ValidationError(
                    "--meta gives '\(pair.key)' two values ('\(value)' and '\(pair.value)'); a letter has one value per key"
                )
            }
            keys[pair.key] = pair.value
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
            search: self.search.flatMap { $0.isEmpty ? nil : $0 },
            metadata: Dictionary(self.meta.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        )
    }
}

/// A `--meta key=value` pair: the key is everything before the first `=`.
struct MetadataPair: Sendable, Equatable {
    var key: String
    var value: String

    /// For `@Option(transform:)`.
    /// - Throws: `ValidationError` naming the form when there is no `=` or the key is empty.
    static func parse(_ text: String) throws -> MetadataPair {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ValidationError("must be key=value, e.g. tenant=acme (the key is before the first '=')")
        }
        return MetadataPair(key: String(text[..<equals]), value: String(text[text.index(after: equals)...]))
    }
}

/// `--sort`: the order of a list.
struct SortOption: ExpressibleByArgument, Sendable {
    var sort: DeadLetterSort

    init?(argument: String) {
        guard let sort = DeadLetterSort(rawValue: argument.lowercased()) else { return nil }
        self.sort = sort
    }

    /// The names, for help and messages.
    static let names = DeadLetterSort.all.map(\.rawValue)

    /// For `@Option(transform:)`: a wrong value's message lists the orders and the closest one.
    static func parse(_ argument: String) throws -> SortOption {
        if let option = SortOption(argument: argument) { return option }
        var message = "must be one of \(Self.names.joined(separator: ", "))"
        if let suggestion = Suggestion.phrase(Suggestion.closest(to: argument, among: Self.names)) {
            message += "; \(suggestion)"
        }
        throw ValidationError(message)
    }

    static var allValueStrings: [String] { Self.names }
}

/// A point in time: ISO 8601 (`2026-11-23T10:00:00Z`), the same without seconds or zone (`2026-11-23T10:00`,
/// UTC), a date (`2026-11-23`, midnight UTC), `today` or `yesterday` (midnight UTC), or an age before now (`90s`,
/// `30m`, `2h`, `7d`, `2w`).
enum TimeBound: ExpressibleByArgument, Sendable, Equatable {
    case absolute(Date)
    case age(Duration)
    /// Midnight UTC, this many days before today's.
    case daysAgo(Int)

    /// The forms, for the options' help.
    static let shortForms = "ISO 8601, a date, today, yesterday, or an age like 30m, 2h, 7d"

    /// How a time without a zone is read, for the options' help.
    static let utcNote =
        "Times and dates without a zone are UTC: 2026-12-05T22:00 is 22:00 UTC; 2026-12-05, today and yesterday "
        + "are midnight UTC. With a zone: 2026-12-05T22:00+01:00."

    /// The forms, for messages about a wrong value.
    static let forms =
        "an ISO 8601 time (2026-11-23T10:00:00Z, or 2026-11-23T10:00 read as UTC), a date (2026-11-23, midnight "
        + "UTC), today, yesterday, or an age (500ms, 30m, 1.5h, 7d, 2w)"

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        switch text.lowercased() {
        case "today":
            self = .daysAgo(0)
            return
        case "yesterday":
            self = .daysAgo(1)
            return
        default: break
        }
        if let date = DeadLetterFilter.parseDate(text) ?? Self.parseLooseTime(text) {
            self = .absolute(date)
        } else if let age = DeadLetterFilter.parseAge(text) {
            self = .age(age)
        } else {
            return nil
        }
    }

    /// For `@Option(transform:)`: a wrong value's message says which forms are taken.
    static func parse(_ argument: String) throws -> TimeBound {
        guard let bound = TimeBound(argument: argument) else {
            throw ValidationError("must be \(Self.forms)")
        }
        return bound
    }

    /// `yyyy-MM-ddTHH:mm`, with seconds and a fraction optional, and the zone (`Z` or `±HH:mm`) optional: UTC
    /// when there is none. `T` may be a space.
    static func parseLooseTime(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 16, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == 32,
            bytes[13] == UInt8(ascii: ":")
        else { return nil }
        var rest = bytes[16...]
        var seconds: [UInt8] = Array(":00".utf8)
        if rest.first == UInt8(ascii: ":") {
            // Seconds (and a fraction) are there: keep them as written.
            var end = rest.startIndex + 1
            while end < rest.endIndex, rest[end] != UInt8(ascii: "Z"), rest[end] != UInt8(ascii: "z"),
                rest[end] != UInt8(ascii: "+"), rest[end] != UInt8(ascii: "-")
            {
                end += 1
            }
            seconds = Array(rest[rest.startIndex..<end])
            rest = rest[end...]
        }
        let zone: [UInt8] = rest.isEmpty ? [UInt8(ascii: "Z")] : Array(rest)
        return Timestamp.parse(String(decoding: bytes[0..<16] + seconds + zone, as: UTF8.self))
    }

    func date(now: Date) -> Date {
        switch self {
        case .absolute(let date): return date
        case .age(let age): return now.addingTimeInterval(-age.seconds)
        case .daysAgo(let days):
            let today = (now.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400
            return Date(timeIntervalSince1970: today - Double(days) * 86_400)
        }
    }

    static var defaultCompletionKind: CompletionKind { .list(["today", "yesterday", "1h", "24h", "7d"]) }
}

/// A whole number option with a lower bound (`--limit`, `--min-attempts`), whose message says what it takes.
enum WholeNumber {
    /// For `@Option(transform:)`.
    /// - Throws: `ValidationError` naming the form when `text` is not a whole number of at least `minimum`.
    static func parse(_ text: String, atLeast minimum: Int) throws -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= minimum else {
            throw ValidationError("must be a whole number, \(minimum) or more")
        }
        return value
    }
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

    /// The forms, for messages about a wrong value.
    static let forms = "a length of time: 500ms, 30s, 5m, 2h, 7d, or a number of seconds"

    /// For `@Option(transform:)`: a wrong value's message says which forms are taken.
    static func parse(_ argument: String) throws -> DurationArgument {
        guard let duration = DurationArgument(argument: argument) else {
            throw ValidationError("must be \(Self.forms)")
        }
        return duration
    }

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

    /// The forms, for messages about a wrong value.
    static let forms = "a number per second, minute or hour: 10/s, 600/m, 3600/h (a bare number is per second)"

    /// For `@Option(transform:)`: a wrong value's message says which forms are taken.
    static func parse(_ argument: String) throws -> RateArgument {
        guard let rate = RateArgument(argument: argument) else { throw ValidationError("must be \(Self.forms)") }
        return rate
    }

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
