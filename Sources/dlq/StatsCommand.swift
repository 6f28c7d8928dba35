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

            Examples:
              dlq stats
              dlq stats --source orders --since 24h
              dlq stats --json | jq .byReason
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Flag(help: "Write the summary as one JSON object.")
    var json = false

    func run() async throws {
        let filters = self.filters
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
