import DeadLetters
import Foundation

extension FilterOptions {
    /// The shortest `--fingerprint` prefix that is looked up (a whole fingerprint has 16 characters).
    static let shortestFingerprintPrefix = 8

    /// The length of a fingerprint (see `Fingerprint`); a value this long is not looked up as a prefix.
    static let wholeFingerprintLength = 16

    /// At most this many groups are read to resolve a fingerprint prefix.
    static let fingerprintLookupLimit = 100_000

    /// Whether ``resolvedFilter(in:now:)`` reads the store: a value filter to check or a fingerprint to resolve.
    var needsStoreValues: Bool {
        !self.source.isEmpty || !self.reason.isEmpty || !self.errorType.isEmpty || !self.fingerprint.isEmpty
    }

    /// The filter, with each `--fingerprint` that is a prefix of 8 or more characters replaced by the one
    /// fingerprint it starts; first, each `--source`, `--reason`, `--error-type` or `--fingerprint` value that no
    /// letter in the store has is named on standard error, with the values that exist.
    ///
    /// Costs: the store's whole summary (kept as totals by both stores) when a source, reason or error type is
    /// given; a count per fingerprint; the store's groups only for a fingerprint that is not whole.
    /// - Throws: ``CLIError`` (usage) for a prefix that several fingerprints start with, naming them; what the
    ///   store throws.
    func resolvedFilter(in store: any DeadLetterStore, now: Date = Date()) async throws -> DeadLetterFilter {
        var filter = self.filter(now: now)
        guard self.needsStoreValues else { return filter }
        var warnings: [String] = []
        if !self.source.isEmpty || !self.reason.isEmpty || !self.errorType.isEmpty {
            let summary = try await store.summary(DeadLetterFilter(), now: now)
            if summary.total > 0 {
                warnings += Self.unknownValues(self.source, "source", "sources", existing: summary.bySource)
                warnings += Self.unknownValues(self.reason, "reason", "reasons", existing: summary.byReason)
                warnings += Self.unknownValues(
                    self.errorType,
                    "error type",
                    "error types",
                    existing: summary.byErrorType
                )
            }
        }
        if !self.fingerprint.isEmpty {
            filter.fingerprints = try await Self.resolveFingerprints(self.fingerprint, in: store, warnings: &warnings)
        }
        let style = Style.stderr
        for warning in warnings {
            Terminal.err(style.yellow(style.bold("dlq: warning:")) + " " + warning + "\n")
        }
        return filter
    }

    /// ``resolvedFilter(in:now:)`` for commands that open the store themselves afterwards: opens it read-only,
    /// only when something needs the store's values.
    func resolvedFilter(_ storeOptions: StoreOptions, now: Date = Date()) async throws -> DeadLetterFilter {
        guard self.needsStoreValues else { return self.filter(now: now) }
        let options = self
        return try await storeOptions.withStore(.read) { store in
            try await options.resolvedFilter(in: store, now: now)
        }
    }

    /// A warning for each of `values` that is not a key of `existing` (counts by value), listing the values
    /// that exist, most letters first, and the closest ones.
    static func unknownValues(
        _ values: [String],
        _ name: String,
        _ plural: String,
        existing: [String: Int]
    ) -> [String] {
        let present = existing.filter { $0.value > 0 }
        let known = present.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map(\.key)
        var warnings: [String] = []
        for value in values where present[value] == nil {
            var text = "no letter has \(name) '\(value)'"
            if let suggestion = Suggestion.phrase(Suggestion.closest(to: value, among: known)) {
                text += " (\(suggestion))"
            }
            let shown = known.prefix(12).joined(separator: ", ")
            let more = known.count > 12 ? " and \(known.count - 12) more (see 'dlq stats')" : ""
            warnings.append(text + "; the \(plural) letters have: \(shown)\(more)")
        }
        return warnings
    }

    /// Each fingerprint as given when a letter has it; else, for 8 or more characters, the one fingerprint it is
    /// a prefix of (ignoring case). A value that matches nothing is kept (so it selects nothing), with a warning.
    static func resolveFingerprints(
        _ values: [String],
        in store: any DeadLetterStore,
        warnings: inout [String]
    ) async throws -> [String] {
        var resolved: [String] = []
        var groups: [DeadLetterGroup]?
        for value in values {
            if try await store.count(DeadLetterFilter(fingerprints: [value])) > 0 {
                resolved.append(value)
                continue
            }
            guard value.count < Self.wholeFingerprintLength else {
                warnings.append("no letter has fingerprint '\(value)' (see 'dlq groups')")
                resolved.append(value)
                continue
            }
            let known: [DeadLetterGroup]
            if let groups {
                known = groups
            } else {
                known = try await store.groups(DeadLetterFilter(), limit: Self.fingerprintLookupLimit)
                groups = known
            }
            let prefix = value.lowercased()
            let matches = known.filter { $0.fingerprint.lowercased().hasPrefix(prefix) }
            guard value.count >= Self.shortestFingerprintPrefix else {
                var text =
                    "no letter has fingerprint '\(value)'; give the whole fingerprint (16 characters, see 'dlq "
                    + "groups') or a prefix of \(Self.shortestFingerprintPrefix) or more characters"
                if !matches.isEmpty {
                    let listed = matches.prefix(3).map(\.fingerprint).joined(separator: ", ")
                    text +=
                        "; '\(value)' is the start of " + listed
                        + (matches.count > 3 ? " and \(matches.count - 3) more" : "")
                }
                warnings.append(text)
                resolved.append(value)
                continue
            }
            switch matches.count {
            case 0:
                warnings.append("no letter has a fingerprint that starts with '\(value)' (see 'dlq groups')")
                resolved.append(value)
            case 1:
                resolved.append(matches[0].fingerprint)
            default:
                let listed = matches.prefix(5).map {
                    "\($0.fingerprint) (\(Human.count($0.count, "letter")), \($0.errorType))"
                }
                let more = matches.count > 5 ? " and \(matches.count - 5) more" : ""
                throw CLIError.usage(
                    "--fingerprint \(value) is ambiguous: \(matches.count) fingerprints start with it: "
                        + listed.joined(separator: ", ") + more + "; give more characters"
                )
            }
        }
        return resolved
    }
}
