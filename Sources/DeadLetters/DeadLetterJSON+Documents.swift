#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON of answers that are not letters: `stats` and `groups`, as `dlq --json` and the HTTP API write them,
/// with keys in the stored format's order (docs/stored-format.md) and strings escaped as the stored format escapes them.
extension DeadLetterJSON {
    /// `value` as a JSON string literal.
    /// - Parameter escapingHTML: also escape `<`, `>`, `&`, U+2028 and U+2029, for JSON that may be read as HTML.
    public static func quoted(_ value: String, escapingHTML: Bool = false) -> String {
        var writer = Writer(buffer: [], escapesHTML: escapingHTML)
        writer.string(value)
        return String(decoding: writer.buffer, as: UTF8.self)
    }

    /// A finite number: integers without a fraction, others with up to 3 decimals; 0 for NaN and infinities.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return String((value * 1000).rounded() / 1000)
    }

    /// The `stats` object: `total`, `byReason`, `bySource`, `byErrorType`, `byStatus` (every status, 0 when
    /// none), `byAge` (every bucket of ``DeadLetterSummary/ageBuckets``), `oldestFailedAt`, `newestFailedAt`,
    /// `averageAttempts`.
    public static func summary(_ summary: DeadLetterSummary, escapingHTML: Bool = false) -> String {
        var w = Writer(buffer: [], escapesHTML: escapingHTML)
        w.raw(#"{"total":"#)
        w.int(summary.total)
        w.raw(#","byReason":"#)
        w.counts(summary.byReason)
        w.raw(#","bySource":"#)
        w.counts(summary.bySource)
        w.raw(#","byErrorType":"#)
        w.counts(summary.byErrorType)
        var byStatus = summary.byStatus
        for status in DeadLetterStatus.allCases where byStatus[status.rawValue] == nil { byStatus[status.rawValue] = 0 }
        w.raw(#","byStatus":"#)
        w.counts(byStatus)
        w.raw(#","byAge":{"#)
        for (index, bucket) in DeadLetterSummary.ageBuckets.enumerated() {
            if index > 0 { w.raw(",") }
            w.string(bucket)
            w.raw(":")
            w.int(summary.byAge[bucket] ?? 0)
        }
        w.raw(#"},"oldestFailedAt":"#)
        w.timestampOrNull(summary.oldestFailedAt)
        w.raw(#","newestFailedAt":"#)
        w.timestampOrNull(summary.newestFailedAt)
        w.raw(#","averageAttempts":"#)
        w.buffer.append(contentsOf: Self.number(summary.averageAttempts).utf8)
        w.raw("}")
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// The `timeline` object: `bucket` (`1h`, `1d`), `start`, `end`, `total`, `buckets` (oldest first, each
    /// with `start`, `total` and `reasons`, a count per reason) and `firstSeen` (failures first seen in the
    /// window, earliest first, each with `fingerprint`, `errorType`, `reason`, `at`).
    public static func timeline(_ timeline: DeadLetterTimeline, escapingHTML: Bool = false) -> String {
        var w = Writer(buffer: [], escapesHTML: escapingHTML)
        w.raw(#"{"bucket":"#)
        w.string(DeadLetterTimeline.format(timeline.bucket))
        w.raw(#","start":"#)
        w.timestampOrNull(timeline.start)
        w.raw(#","end":"#)
        w.timestampOrNull(timeline.end)
        w.raw(#","total":"#)
        w.int(timeline.total)
        w.raw(#","buckets":"#)
        w.array(timeline.buckets) { w, bucket in
            w.raw(#"{"start":"#)
            w.timestamp(bucket.start)
            w.raw(#","total":"#)
            w.int(bucket.total)
            w.raw(#","reasons":"#)
            w.counts(bucket.reasons)
            w.raw("}")
        }
        w.raw(#","firstSeen":"#)
        w.array(timeline.firstSeen) { w, seen in
            w.raw(#"{"fingerprint":"#)
            w.string(seen.fingerprint)
            w.raw(#","errorType":"#)
            w.string(seen.errorType)
            w.raw(#","reason":"#)
            w.string(seen.reason)
            w.raw(#","at":"#)
            w.timestamp(seen.at)
            w.raw("}")
        }
        w.raw("}")
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// One group: `fingerprint`, `count`, `errorType`, `sampleMessage`, `sources`, `firstFailedAt`,
    /// `lastFailedAt`.
    public static func group(_ group: DeadLetterGroup, escapingHTML: Bool = false) -> String {
        var w = Writer(buffer: [], escapesHTML: escapingHTML)
        w.raw(#"{"fingerprint":"#)
        w.string(group.fingerprint)
        w.raw(#","count":"#)
        w.int(group.count)
        w.raw(#","errorType":"#)
        w.string(group.errorType)
        w.raw(#","sampleMessage":"#)
        w.string(group.sampleMessage)
        w.raw(#","sources":"#)
        w.strings(group.sources)
        w.raw(#","firstFailedAt":"#)
        w.timestamp(group.firstFailedAt)
        w.raw(#","lastFailedAt":"#)
        w.timestamp(group.lastFailedAt)
        w.raw("}")
        return String(decoding: w.buffer, as: UTF8.self)
    }
}

extension DeadLetterJSON.Writer {
    /// An object of counts, keys sorted.
    mutating func counts(_ counts: [String: Int]) {
        self.raw("{")
        for (index, entry) in counts.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { self.raw(",") }
            self.string(entry.key)
            self.raw(":")
            self.int(entry.value)
        }
        self.raw("}")
    }

    mutating func timestampOrNull(_ date: Date?) {
        if let date { self.timestamp(date) } else { self.raw("null") }
    }
}
