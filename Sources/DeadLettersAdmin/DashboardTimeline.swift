import DeadLetters

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The overview's failures-over-time chart: a server-rendered SVG of stacked bars (letters per hour over 24
/// hours, or per day over 30 days, by reason) with a marker where a failure was first seen. Every text in it
/// goes through the template's escaping; the numbers are computed here.
enum DashboardTimeline {
    /// The chart's drawing size in SVG units; it scales to the panel's width.
    static let width = 720.0
    static let height = 160.0
    static let axis = 18.0

    /// Fill colors, one per reason in order of their totals (the most frequent first); reasons beyond the
    /// palette share its last color.
    static let palette = ["#4f7cff", "#f08c2e", "#3bb273", "#d64545", "#9b59b6", "#18a2b8", "#c9a227", "#7f8c8d"]

    /// The template values: `timelineBars`, `timelineMarkers`, `timelineLabels`, `timelineLegend` and the
    /// chart's title.
    static func values(_ timeline: DeadLetterTimeline, days: Bool) -> [String: Any] {
        var totals: [String: Int] = [:]
        for bucket in timeline.buckets { for (reason, count) in bucket.reasons { totals[reason, default: 0] += count } }
        let reasons = totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
        let fill = { (reason: String) -> String in
            Self.palette[min(reasons.firstIndex(of: reason) ?? 0, Self.palette.count - 1)]
        }
        let peak = max(1, timeline.buckets.map(\.total).max() ?? 0)
        let slot = Self.width / Double(max(1, timeline.buckets.count))
        let plot = Self.height - Self.axis
        var bars: [[String: Any]] = []
        var labels: [[String: Any]] = []
        for (index, bucket) in timeline.buckets.enumerated() {
            var top = plot
            let name = DeadLetterTimeline.label(bucket.start, days: days)
            for reason in reasons {
                guard let count = bucket.reasons[reason], count > 0 else { continue }
                let height = plot * Double(count) / Double(peak)
                top -= height
                bars.append([
                    "x": Self.number(Double(index) * slot + 1), "y": Self.number(top),
                    "w": Self.number(max(1, slot - 2)), "h": Self.number(height), "fill": fill(reason),
                    "title": "\(name): \(count) \(reason)",
                ])
            }
            let every = days ? 5 : 6
            if index % every == 0 {
                labels.append([
                    "x": Self.number(Double(index) * slot + 1), "y": Self.number(Self.height - 4),
                    "text": days ? String(name.prefix(10).dropFirst(5)) : String(name.suffix(5)),
                ])
            }
        }
        let markers: [[String: Any]] = timeline.firstSeen.compactMap { seen in
            guard let index = timeline.index(of: seen.at) else { return nil }
            let x = Double(index) * slot + slot / 2
            return [
                "x": Self.number(x), "points": Self.triangle(x: x),
                "title":
                    "first seen \(DeadLetterTimeline.label(seen.at, days: false)): \(seen.errorType) (\(seen.reason)), "
                    + "fingerprint \(seen.fingerprint)",
            ]
        }
        return [
            "timelineBars": bars, "timelineMarkers": markers, "timelineLabels": labels,
            "timelineLegend": reasons.map {
                ["name": $0, "fill": fill($0), "count": DashboardViews.count(totals[$0] ?? 0)]
            },
            "timelineWidth": Self.number(Self.width), "timelineHeight": Self.number(Self.height),
            "timelinePlot": Self.number(plot),
            "timelineTitle": days ? "Failures per day, last 30 days" : "Failures per hour, last 24 hours",
            "timelineTotal": DashboardViews.count(timeline.total), "timelineDays": days,
            "timelineHasMarkers": !markers.isEmpty,
        ]
    }

    /// A small triangle pointing down at the top of the chart, centred on `x`.
    static func triangle(x: Double) -> String {
        "\(Self.number(x - 5)),0 \(Self.number(x + 5)),0 \(Self.number(x)),8"
    }

    /// A coordinate with at most one decimal.
    static func number(_ value: Double) -> String {
        DeadLetterJSON.number((value * 10).rounded() / 10)
    }
}
