#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterSummary {
    /// The ages, in milliseconds since the first failure, at which each bucket of ``ageBuckets`` but the last
    /// ends (each bucket's lower bound is inclusive).
    package static let ageBucketLimits: [Int64] = [3_600_000, 21_600_000, 86_400_000]

    /// The index in ``ageBuckets`` of a letter whose first failure is `age` milliseconds old; a letter from the
    /// future is in the first bucket.
    package static func ageBucketIndex(milliseconds age: Int64) -> Int {
        self.ageBucketLimits.firstIndex { age < $0 } ?? self.ageBucketLimits.count
    }

    /// The times (milliseconds since 1970) at or before which a letter's first failure puts it past each
    /// bucket limit, seen at `now`: the oldest limit (`>24h`) first. ``DeadLetterSummaryTally/setAges(olderThan:)``
    /// takes the counts of letters at or before each, in this order.
    package static func ageBounds(now: Int64) -> [Int64] {
        self.ageBucketLimits.reversed().map { now - $0 }
    }
}

/// Adds up counts over letters into a ``DeadLetterSummary``: the one assembly that every store's summary
/// feeds, however it counts (grouped rows, running totals, a scan in memory).
///
/// Attempts are added up in floating point: letters stored before ``DeadLetter/maximumCount`` bounded them may
/// hold up to `Int64.max` attempts, and their sum must not overflow. Counts are added, never assigned, so keys
/// that a database keeps apart byte by byte but that are one Swift string ("é" composed and decomposed) add up.
package struct DeadLetterSummaryTally: Sendable {
    /// What a count is counted by.
    package enum Dimension: Sendable {
        case reason
        case source
        case errorType
        case status
        case age
    }

    /// The number of letters added to the total.
    package private(set) var total = 0
    private var attempts = 0.0
    private var oldest: Int64?
    private var newest: Int64?
    private var byReason: [String: Int] = [:]
    private var bySource: [String: Int] = [:]
    private var byErrorType: [String: Int] = [:]
    private var byStatus = Dictionary(uniqueKeysWithValues: DeadLetterStatus.allCases.map { ($0.rawValue, 0) })
    private var byAge = Dictionary(uniqueKeysWithValues: DeadLetterSummary.ageBuckets.map { ($0, 0) })

    /// An empty tally: every status and age bucket at 0.
    package init() {}

    /// Adds `count` letters, with `attempts` attempts in all, to the total.
    package mutating func add(count: Int, attempts: Double) {
        self.total += count
        self.attempts += attempts
    }

    /// Adds `count` letters to the count of `key` in `dimension` (not to the total).
    package mutating func add(_ count: Int, to dimension: Dimension, key: String) {
        switch dimension {
        case .reason: self.byReason[key, default: 0] += count
        case .source: self.bySource[key, default: 0] += count
        case .errorType: self.byErrorType[key, default: 0] += count
        case .status: self.byStatus[key, default: 0] += count
        case .age: self.byAge[key, default: 0] += count
        }
    }

    /// Adds a group of `count` letters that share a source, reason, error type and status, with `attempts`
    /// attempts in all: to the total and to each of those counts.
    package mutating func add(
        count: Int,
        attempts: Double,
        source: String,
        reason: String,
        errorType: String,
        status: String
    ) {
        self.add(count: count, attempts: attempts)
        self.add(count, to: .source, key: source)
        self.add(count, to: .reason, key: reason)
        self.add(count, to: .errorType, key: errorType)
        self.add(count, to: .status, key: status)
    }

    /// Widens the span of failure times (milliseconds since 1970) to include these.
    package mutating func include(firstFailedAt: Int64?, lastFailedAt: Int64?) {
        if let first = firstFailedAt { self.oldest = Swift.min(self.oldest ?? .max, first) }
        if let last = lastFailedAt { self.newest = Swift.max(self.newest ?? .min, last) }
    }

    /// Sets the age buckets from how many of the letters are past each bucket limit, in the order of
    /// ``DeadLetterSummary/ageBounds(now:)`` (older than 24 h, 6 h, 1 h); the rest are in the first bucket.
    /// Call it once every letter is in ``total``.
    package mutating func setAges(olderThan: [Int]) {
        let buckets = DeadLetterSummary.ageBuckets
        var younger = self.total
        for (index, older) in olderThan.enumerated() {
            // olderThan[0] is the last bucket's count, olderThan[1] that plus the one before it, and so on.
            let bucket = buckets[buckets.count - 1 - index]
            self.byAge[bucket] = older - (index == 0 ? 0 : olderThan[index - 1])
            younger = self.total - older
        }
        self.byAge[buckets[0]] = younger
    }

    /// The summary: times and the mean of attempts only when there are letters.
    package var summary: DeadLetterSummary {
        let some = self.total > 0
        return DeadLetterSummary(
            total: self.total,
            byReason: self.byReason,
            bySource: self.bySource,
            byErrorType: self.byErrorType,
            byStatus: self.byStatus,
            byAge: self.byAge,
            oldestFailedAt: some ? self.oldest.map { Date(millisecondsSince1970: $0) } : nil,
            newestFailedAt: some ? self.newest.map { Date(millisecondsSince1970: $0) } : nil,
            averageAttempts: some ? self.attempts / Double(self.total) : 0
        )
    }
}
