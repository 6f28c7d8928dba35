#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Failures over time: how many of the selected letters last failed in each bucket of a window (an hour, a
/// day), by reason, and the failures (fingerprints) that first appeared in the window.
///
/// A letter is counted once, in the bucket of its `lastFailedAt`: for a dead letter, when it was dead-lettered.
/// So the buckets of a window add up to what `--since` of the same length selects.
public struct DeadLetterTimeline: Sendable, Hashable {
    /// One bucket: its start (inclusive) and the letters that last failed in it, by reason.
    public struct Bucket: Sendable, Hashable {
        /// When the bucket starts; it ends where the next starts.
        public var start: Date
        /// Letters by reason; reasons without letters are absent.
        public var reasons: [String: Int]

        /// The bucket's letters.
        public var total: Int { self.reasons.values.reduce(0, +) }

        public init(start: Date, reasons: [String: Int] = [:]) {
            self.start = start
            self.reasons = reasons
        }
    }

    /// A failure (fingerprint) whose earliest first failure among the selected letters is in the window.
    public struct FirstSeen: Sendable, Hashable {
        public var fingerprint: String
        public var errorType: String
        public var reason: String
        /// The earliest `firstFailedAt` of its letters.
        public var at: Date

        public init(fingerprint: String, errorType: String, reason: String, at: Date) {
            self.fingerprint = fingerprint
            self.errorType = errorType
            self.reason = reason
            self.at = at
        }
    }

    /// The width of each bucket.
    public var bucket: Duration
    /// The buckets, oldest first, back to back; the first starts at the window's start.
    public var buckets: [Bucket]
    /// Failures first seen in the window, earliest first.
    public var firstSeen: [FirstSeen]

    public init(bucket: Duration, buckets: [Bucket], firstSeen: [FirstSeen] = []) {
        self.bucket = bucket
        self.buckets = buckets
        self.firstSeen = firstSeen
    }

    /// Empty buckets covering `count` buckets of `bucket` from `start`.
    public init(start: Date, bucket: Duration, count: Int) {
        let width = bucket.milliseconds
        let from = start.millisecondsSince1970
        self.init(
            bucket: bucket,
            buckets: (0..<Swift.max(0, count)).map {
                Bucket(start: Date(millisecondsSince1970: from + Int64($0) * width))
            }
        )
    }

    /// The window's start (inclusive).
    public var start: Date? { self.buckets.first?.start }

    /// The window's end (exclusive).
    public var end: Date? {
        self.buckets.last.map { Date(millisecondsSince1970: $0.start.millisecondsSince1970 + self.bucket.milliseconds) }
    }

    /// The letters of every bucket.
    public var total: Int { self.buckets.reduce(0) { $0 + $1.total } }

    /// The index of the bucket holding `time`, if it is in the window.
    public func index(of time: Date) -> Int? {
        guard let start = self.start else { return nil }
        let offset = time.millisecondsSince1970 - start.millisecondsSince1970
        guard offset >= 0 else { return nil }
        let index = Int(offset / self.bucket.milliseconds)
        return index < self.buckets.count ? index : nil
    }

    /// Counts `count` letters of `reason` that last failed at `time`; outside the window, nothing.
    public mutating func add(_ count: Int, reason: String, at time: Date) {
        guard let index = self.index(of: time) else { return }
        self.buckets[index].reasons[reason, default: 0] += count
    }

    /// The window of `count` buckets of `bucket` that ends with the bucket holding `now`: buckets are aligned
    /// to multiples of their width since 1970 (whole hours, whole UTC days).
    public static func window(endingAt now: Date, bucket: Duration, count: Int) -> (start: Date, end: Date) {
        let width = bucket.milliseconds
        let ms = now.millisecondsSince1970
        let current = (ms >= 0 ? ms / width : (ms - width + 1) / width) * width
        let end = current + width
        return (Date(millisecondsSince1970: end - Int64(count) * width), Date(millisecondsSince1970: end))
    }
}

extension Duration {
    /// Whole milliseconds (at least 1).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return Swift.max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

extension DeadLetterTimeline {
    /// The buckets of a window given as the `dlq stats --timeline` option and the HTTP API's query take it:
    /// `since` a length of time (`24h`, `30d`), `bucket` one (`1h`, `1d`) or `nil` for hours up to 48 hours
    /// and days beyond.
    /// - Returns: the bucket's width and how many buckets cover `since`.
    /// - Throws: ``DeadLetterError/Code/invalidConfiguration`` naming the value that is wrong.
    public static func span(since: String, bucket: String?) throws -> (bucket: Duration, count: Int) {
        guard let window = DeadLetterFilter.parseAge(since), window > .zero else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "a timeline's length must be a length of time like 24h or 30d, not '\(since)'"
            )
        }
        let width: Duration
        if let bucket {
            guard let parsed = DeadLetterFilter.parseAge(bucket), parsed >= .seconds(60),
                parsed <= .seconds(31 * 86_400)
            else {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message:
                        "a timeline's bucket must be a length of time from 1m to 31d, like 1h or 1d, not '\(bucket)'"
                )
            }
            width = parsed
        } else {
            width = window <= .seconds(48 * 3600) ? .seconds(3600) : .seconds(86_400)
        }
        let count = (window.milliseconds + width.milliseconds - 1) / width.milliseconds
        guard count <= 1000 else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "a timeline has at most 1000 buckets: \(since) in buckets of \(bucket ?? "1d") makes \(count)"
            )
        }
        return (width, Int(count))
    }

    /// `filter` narrowed to the letters that last failed in `timeline`'s window.
    package static func windowFilter(_ filter: DeadLetterFilter, _ timeline: DeadLetterTimeline) -> DeadLetterFilter {
        var window = filter
        if let start = timeline.start { window.since = Swift.max(filter.since ?? start, start) }
        if let end = timeline.end { window.until = Swift.min(filter.until ?? end, end) }
        return window
    }

    /// The width of a bucket in milliseconds.
    package var bucketMilliseconds: Int64 { self.bucket.milliseconds }

    /// A bucket's start as people read it, in UTC: `2026-12-06 18:00`, or `2026-12-06` for `days`.
    public static func label(_ date: Date, days: Bool) -> String {
        let text = Timestamp.format(date)
        return days ? String(text.prefix(10)) : String(text.prefix(10)) + " " + String(text.dropFirst(11).prefix(5))
    }

    /// A bucket's width as people write it: `1h`, `1d`, `15m`.
    public static func format(_ bucket: Duration) -> String {
        let seconds = bucket.milliseconds / 1000
        if seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
