import DeadLetters

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON of the API's answers that are not letters, with keys in a stable order.
enum AdminJSON {
    /// The same fields as `dlq stats --json`: `total`, `byReason`, `bySource`, `byErrorType`, `byStatus`,
    /// `byAge`, `oldestFailedAt`, `newestFailedAt`, `averageAttempts`.
    static func summary(_ summary: DeadLetterSummary) -> String {
        var out = #"{"total":\#(summary.total)"#
        out += #","byReason":"# + self.counts(summary.byReason)
        out += #","bySource":"# + self.counts(summary.bySource)
        out += #","byErrorType":"# + self.counts(summary.byErrorType)
        var byStatus = summary.byStatus
        for status in DeadLetterStatus.allCases where byStatus[status.rawValue] == nil { byStatus[status.rawValue] = 0 }
        out += #","byStatus":"# + self.counts(byStatus)
        out +=
            #","byAge":{"#
            + DeadLetterSummary.ageBuckets.map { JSONText.string($0) + ":\(summary.byAge[$0] ?? 0)" }
            .joined(separator: ",") + "}"
        out += #","oldestFailedAt":"# + JSONText.stringOrNull(summary.oldestFailedAt.map(Timestamp.format))
        out += #","newestFailedAt":"# + JSONText.stringOrNull(summary.newestFailedAt.map(Timestamp.format))
        out += #","averageAttempts":"# + self.number(summary.averageAttempts)
        return out + "}"
    }

    /// An array of `{"fingerprint","count","errorType","sampleMessage","sources","firstFailedAt","lastFailedAt"}`.
    static func groups(_ groups: [DeadLetterGroup]) -> String {
        var out = "["
        for (index, group) in groups.enumerated() {
            if index > 0 { out += "," }
            out += #"{"fingerprint":"# + JSONText.string(group.fingerprint)
            out += #","count":\#(group.count)"#
            out += #","errorType":"# + JSONText.string(group.errorType)
            out += #","sampleMessage":"# + JSONText.string(group.sampleMessage)
            out += #","sources":["# + group.sources.map(JSONText.string).joined(separator: ",") + "]"
            out += #","firstFailedAt":"# + JSONText.string(Timestamp.format(group.firstFailedAt))
            out += #","lastFailedAt":"# + JSONText.string(Timestamp.format(group.lastFailedAt))
            out += "}"
        }
        return out + "]"
    }

    static func counts(_ counts: [String: Int]) -> String {
        "{"
            + counts.sorted { $0.key < $1.key }.map { JSONText.string($0.key) + ":\($0.value)" }
            .joined(separator: ",") + "}"
    }

    /// A finite number as JSON: integers without a fraction, others with up to 3 decimals.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return String((value * 1000).rounded() / 1000)
    }
}
