import DeadLetters
import Foundation

/// Filtered pages, summary and groups on a large store: the same figures for SQLite and PostgreSQL.
enum StoreQueries {
    static func measure(_ store: some DeadLetterStore, label: String, size: String, report: Report) async throws {
        let factory = LetterFactory()
        // An id near the middle of the store, for a page deep in the results.
        let span = try await store.summary(DeadLetterFilter(), now: Date())
        let oldest = span.oldestFailedAt ?? Date()
        let newest = span.newestFailedAt ?? Date()
        let middle = try await store.page(
            DeadLetterFilter(since: oldest.addingTimeInterval(newest.timeIntervalSince(oldest) / 2)),
            after: nil,
            limit: 1
        )
        let fingerprint = factory.fingerprints[13]
        let pages: [(String, DeadLetterFilter, String?)] = [
            ("source + status", DeadLetterFilter(sources: ["orders"], statuses: [.dead]), nil),
            (
                "source + status, from the middle", DeadLetterFilter(sources: ["orders"], statuses: [.dead]),
                middle.letters.first?.id
            ),
            (
                "source + reason + status",
                DeadLetterFilter(sources: ["payments"], reasons: ["timeout"], statuses: [.dead]), nil
            ),
            ("search text (1 letter in 10)", DeadLetterFilter(search: LetterFactory.searchText), nil),
            (
                "fingerprint + source (1 letter in 250)",
                DeadLetterFilter(sources: ["emails"], fingerprints: [fingerprint]), nil
            ),
            ("no filter", DeadLetterFilter(), nil),
        ]
        for (name, filter, cursor) in pages {
            var got = 0
            let elapsed = try await Measure.median(runs: 21, warmup: 2) {
                got = try await store.page(filter, after: cursor, limit: 100).letters.count
            }
            guard got == 100 else { throw BenchmarkError("\(label) page \(name): \(got) letters") }
            report.add(
                Figure(
                    "filtered page of 100 from \(size) letters, \(label): \(name)",
                    target: "< 5 ms",
                    measured: Format.milliseconds(elapsed),
                    pass: elapsed < .milliseconds(5)
                )
            )
        }

        var total = 0
        var elapsed = try await Measure.median(runs: 7) {
            total = try await store.summary(DeadLetterFilter(), now: Date()).total
        }
        report.add(
            Figure(
                "`summary()` (stats) on \(size) letters, \(label)",
                target: "< 50 ms",
                measured: Format.milliseconds(elapsed),
                pass: elapsed < .milliseconds(50)
            )
        )
        elapsed = try await Measure.median(runs: 5) {
            total = try await store.summary(DeadLetterFilter(sources: ["orders"]), now: Date()).total
        }
        report.add(
            Figure(
                "`summary()` filtered by source (\(Format.integer(Double(total))) letters), \(label)",
                measured: Format.milliseconds(elapsed)
            )
        )
        var groups = 0
        elapsed = try await Measure.median(runs: 5) {
            groups = try await store.groups(DeadLetterFilter(), limit: 100).count
        }
        report.add(
            Figure(
                "`groups()` on \(size) letters (\(groups) groups), \(label)",
                measured: Format.milliseconds(elapsed)
            )
        )
        elapsed = try await Measure.median(runs: 5) {
            groups = try await store.groups(DeadLetterFilter(sources: ["orders"]), limit: 100).count
        }
        report.add(
            Figure("`groups()` filtered by source, \(label)", measured: Format.milliseconds(elapsed))
        )
    }
}
