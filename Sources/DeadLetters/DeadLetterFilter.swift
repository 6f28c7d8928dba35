#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Which letters an operation selects. Every field narrows the selection; an empty list or `nil` does not
/// narrow by that field, so `DeadLetterFilter()` selects every letter.
///
/// Stores apply filters as bound parameters (never SQL text), so any value is safe to pass.
public struct DeadLetterFilter: Sendable, Hashable {
    /// Letters with one of these ids.
    public var ids: [String]
    /// Letters from one of these sources.
    public var sources: [String]
    /// Letters with one of these reasons (by ``FailureReason/rawValue``).
    public var reasons: [String]
    /// Letters whose last error has one of these types.
    public var errorTypes: [String]
    /// Letters with one of these fingerprints.
    public var fingerprints: [String]
    /// Letters in one of these statuses.
    public var statuses: [DeadLetterStatus]
    /// Letters whose last failure is at or after this time.
    public var since: Date?
    /// Letters whose last failure is before this time.
    public var until: Date?
    /// Letters with at least this many attempts.
    public var minAttempts: Int?
    /// Letters whose error message, one of whose metadata values, or whose text payload contains this text,
    /// ignoring the case of ASCII letters (see ``searchablePayloadText(_:)`` for which payloads are text: a
    /// sealed payload is never searched).
    public var search: String?
    /// Letters that expire at or before this time (letters that never expire are not selected).
    public var expiresBefore: Date?
    /// Letters whose metadata has every one of these keys with exactly this value.
    public var metadata: [String: String]

    /// Creates a filter; every parameter defaults to "any".
    public init(
        ids: [String] = [],
        sources: [String] = [],
        reasons: [String] = [],
        errorTypes: [String] = [],
        fingerprints: [String] = [],
        statuses: [DeadLetterStatus] = [],
        since: Date? = nil,
        until: Date? = nil,
        minAttempts: Int? = nil,
        search: String? = nil,
        expiresBefore: Date? = nil,
        metadata: [String: String] = [:]
    ) {
        self.ids = ids
        self.sources = sources
        self.reasons = reasons
        self.errorTypes = errorTypes
        self.fingerprints = fingerprints
        self.statuses = statuses
        self.since = since
        self.until = until
        self.minAttempts = minAttempts
        self.search = search
        self.expiresBefore = expiresBefore
        self.metadata = metadata
    }

    /// Whether the filter selects every letter.
    public var isEmpty: Bool { self == DeadLetterFilter() }

    /// Whether `letter` is selected: the reference semantics every store must match.
    public func matches(_ letter: DeadLetter) -> Bool {
        if !self.ids.isEmpty, !self.ids.contains(letter.id) { return false }
        if !self.sources.isEmpty, !self.sources.contains(letter.source) { return false }
        if !self.reasons.isEmpty, !self.reasons.contains(letter.reason.rawValue) { return false }
        if !self.errorTypes.isEmpty, !self.errorTypes.contains(letter.errorType) { return false }
        if !self.fingerprints.isEmpty, !self.fingerprints.contains(letter.fingerprint) { return false }
        if !self.statuses.isEmpty, !self.statuses.contains(letter.status) { return false }
        if let since = self.since, letter.lastFailedAt.millisecondsSince1970 < since.millisecondsSince1970 {
            return false
        }
        if let until = self.until, letter.lastFailedAt.millisecondsSince1970 >= until.millisecondsSince1970 {
            return false
        }
        if let minAttempts = self.minAttempts, letter.attempts < minAttempts { return false }
        if let search = self.search, !search.isEmpty,
            !Self.searchMatches(
                search,
                message: letter.errorMessage,
                metadata: letter.metadata,
                payload: letter.payload
            )
        {
            return false
        }
        for (key, value) in self.metadata where letter.metadata[key] != value { return false }
        if let expiresBefore = self.expiresBefore {
            guard let expiresAt = letter.expiresAt,
                expiresAt.millisecondsSince1970 <= expiresBefore.millisecondsSince1970
            else { return false }
        }
        return true
    }

    /// Whether `search` is found in a letter's error message, one of its metadata values or its text payload, as
    /// ``search`` selects.
    public static func searchMatches(
        _ search: String,
        message: String,
        metadata: [String: String],
        payload: Data
    ) -> Bool {
        if Self.asciiCaseInsensitiveContains(message, search) { return true }
        if metadata.values.contains(where: { Self.asciiCaseInsensitiveContains($0, search) }) { return true }
        if let text = Self.searchablePayloadText(payload), Self.asciiCaseInsensitiveContains(text, search) {
            return true
        }
        return false
    }

    /// A payload as the text ``search`` looks into: valid UTF-8 holding no NUL byte, else `nil` (not searched).
    /// A payload sealed by ``PayloadEncryption`` starts with a NUL byte, so it is never searched; nor are
    /// binary payloads.
    public static func searchablePayloadText(_ payload: Data) -> String? {
        guard !payload.isEmpty, !payload.contains(0) else { return nil }
        return String(validating: payload, as: UTF8.self)
    }

    /// Whether `haystack` contains `needle`, folding only ASCII letters, as SQL `lower()` does.
    public static func asciiCaseInsensitiveContains(_ haystack: String, _ needle: String) -> Bool {
        let h = Array(haystack.utf8).map(Self.asciiLower)
        let n = Array(needle.utf8).map(Self.asciiLower)
        guard !n.isEmpty else { return true }
        guard h.count >= n.count else { return false }
        var i = 0
        while i + n.count <= h.count {
            if h[i] == n[0] {
                var k = 1
                while k < n.count, h[i + k] == n[k] { k += 1 }
                if k == n.count { return true }
            }
            i += 1
        }
        return false
    }

    /// `text` with its ASCII letters in lower case, other characters as they are (as SQL `lower()` does).
    package static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map(Self.asciiLower), as: UTF8.self)
    }

    private static func asciiLower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }
}
