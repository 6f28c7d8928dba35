import ArgumentParser
import DeadLetters
import Foundation

/// `dlq stats`: counts by reason, source, error type, status and age.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Summarize the dead letters: counts by reason, source, error type, status and age.",
        discussion: """
            --json writes one object: total, byReason, bySource, byErrorType, byStatus, byAge (<1h, 1h-6h, \
            6h-24h, >24h, by time since the first failure), oldestFailedAt, newestFailedAt, averageAttempts.

            --timeline 24h shows failures over time instead: the letters counted per hour (per day beyond \
            48h, or per --bucket) by when they last failed, by reason, and the failures first seen in that \
            window. With --json: bucket, start, end, total, buckets (start, total, reasons), firstSeen \
            (fingerprint, errorType, reason, at). Buckets are whole hours and whole days in UTC.

            Examples:
              dlq stats
              dlq stats --source orders --since 24h
              dlq stats --json | jq .byReason
              dlq stats --timeline 24h
              dlq stats --timeline 30d --source orders
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Option(help: "Show failures over this length of time (24h, 7d, 30d) instead of the summary.")
    var timeline: String?

    @Option(help: "With --timeline: the width of each bar (1h, 1d, 15m); hours up to 48h, days beyond.")
    var bucket: String?

    @Flag(help: "Write the summary as one JSON object.")
    var json = false

    func validate() throws {
        if self.bucket != nil, self.timeline == nil { throw ValidationError("--bucket goes with --timeline") }
        if let timeline = self.timeline {
            do { _ = try DeadLetterTimeline.span(since: timeline, bucket: self.bucket) } catch let error
                as DeadLetterError
            {
                throw ValidationError(error.message)
            }
        }
    }

    func run() async throws {
        let filters = self.filters
        if let length = self.timeline {
            let span = try DeadLetterTimeline.span(since: length, bucket: self.bucket)
            let now = Date()
            let window = DeadLetterTimeline.window(endingAt: now, bucket: span.bucket, count: span.count)
            let empty = DeadLetterTimeline(start: window.start, bucket: span.bucket, count: span.count)
            let timeline = try await self.storeOptions.withStore(.read) { store in
                try await store.timeline(try await filters.resolvedFilter(in: store), into: empty)
            }
            if self.json {
                Terminal.line(DeadLetterJSON.timeline(timeline))
            } else {
                Terminal.out(TimelineView.render(timeline, length: length))
            }
            return
        }
        let summary = try await self.storeOptions.withStore(.read) { store in
            try await store.summary(try await filters.resolvedFilter(in: store), now: Date())
        }
        if self.json {
            Terminal.line(DeadLetterJSON.summary(summary))
        } else {
            Terminal.out(SummaryView.render(summary, now: Date()))
        }
    }
}

/// The summary for people: the totals, then a bar chart per dimension.
enum SummaryView {
    static func render(_ summary: DeadLetterSummary, now: Date, style: Style = .stdout) -> String {
        guard summary.total > 0 else { return style.dim("No dead letters.") + "\n" }
        var output = style.bold(Human.count(summary.total, "dead letter"))
        if let oldest = summary.oldestFailedAt {
            output += "  oldest \(Human.age(oldest, now: now))"
        }
        if let newest = summary.newestFailedAt {
            output += " · newest \(Human.age(newest, now: now))"
        }
        output += String(format: " · %.1f attempts on average", summary.averageAttempts) + "\n"
        var statuses = summary.byStatus
        for status in DeadLetterStatus.allCases where statuses[status.rawValue] == nil { statuses[status.rawValue] = 0 }
        let sections: [(String, [(String, Int)], Bool)] = [
            ("status", DeadLetterStatus.allCases.map { ($0.rawValue, statuses[$0.rawValue] ?? 0) }, true),
            ("reason", Self.sorted(summary.byReason), false),
            ("source", Self.sorted(summary.bySource), false),
            ("error type", Self.sorted(summary.byErrorType), false),
            ("age", DeadLetterSummary.ageBuckets.map { ($0, summary.byAge[$0] ?? 0) }, true),
        ]
        let labelWidth = sections.flatMap { $0.1.map(\.0.visibleWidth) }.max() ?? 0
        let countWidth = String(summary.total).count
        for (title, rows, keepZeros) in sections {
            output += "\n" + style.bold("by \(title)") + "\n"
            for (label, count) in rows where keepZeros || count > 0 {
                let bar = Self.bar(count, of: summary.total, width: 30)
                let colored = title == "status" ? style.status(label) : label
                let pad = String(repeating: " ", count: max(0, labelWidth - label.visibleWidth))
                let number = String(repeating: " ", count: max(0, countWidth - String(count).count)) + "\(count)"
                let percent = String(format: "%3.0f%%", Double(count) * 100 / Double(summary.total))
                output +=
                    "  \(colored)\(pad)  \(number)  \(style.dim(percent))" + (bar.isEmpty ? "" : "  \(style.cyan(bar))")
                    + "\n"
            }
        }
        return output
    }

    static func sorted(_ counts: [String: Int]) -> [(String, Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    static func bar(_ count: Int, of total: Int, width: Int) -> String {
        guard total > 0, count > 0 else { return "" }
        let eighths = Int((Double(count) / Double(total) * Double(width * 8)).rounded())
        let blocks = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        let full = String(repeating: "█", count: eighths / 8)
        let rest = blocks[eighths % 8]
        let text = full + rest
        return text.isEmpty ? "▏" : text
    }
}

/// Failures over time for people: a bar per bucket with its count and reasons, then the failures first seen.
enum TimelineView {
    static func render(_ timeline: DeadLetterTimeline, length: String, style: Style = .stdout) -> String {
        let width = DeadLetterTimeline.format(timeline.bucket)
        let per = width == "1h" ? "hour" : width == "1d" ? "day" : width
        var output = style.bold(Human.count(timeline.total, "letter"))
        output += " last failed in the last \(length), per \(per) (UTC)\n"
        let peak = timeline.buckets.map(\.total).max() ?? 0
        let countWidth = String(peak).count
        let days = timeline.bucket >= .seconds(86_400)
        for bucket in timeline.buckets {
            let label = DeadLetterTimeline.label(bucket.start, days: days)
            let number =
                String(repeating: " ", count: max(0, countWidth - String(bucket.total).count)) + "\(bucket.total)"
            let bar = SummaryView.bar(bucket.total, of: peak, width: 30)
            let reasons = SummaryView.sorted(bucket.reasons).map { "\($0.0) \($0.1)" }.joined(separator: " · ")
            let padded = bar + String(repeating: " ", count: max(0, 30 - bar.count))
            output +=
                "  \(label)  \(style.cyan(padded))  \(number)" + (reasons.isEmpty ? "" : "  \(style.dim(reasons))")
            output += "\n"
        }
        if !timeline.firstSeen.isEmpty {
            output += "\n" + style.bold("first seen in this window") + "\n"
            for seen in timeline.firstSeen {
                output +=
                    "  \(DeadLetterTimeline.label(seen.at, days: false))  \(seen.fingerprint)  \(seen.errorType) (\(seen.reason))\n"
            }
        }
        return output
    }
}
