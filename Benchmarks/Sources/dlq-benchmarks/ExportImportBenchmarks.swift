import DeadLetters
import DeadLettersSQLite
import Foundation

/// Export (`store.letters(matching:)` → ``JSONLinesWriter``) and import (``JSONLinesFile`` →
/// `importLetters`) on SQLite, at a tenth of the big store and the whole of it, to show flat memory.
enum ExportImportBenchmarks {
    static func run(_ settings: Settings, report: Report) async throws {
        log("export / import")
        let big = try await SQLiteFixtures.cachedStore(
            count: settings.bigCount,
            cacheFolder: settings.cacheFolder,
            report: report
        )
        let source = try SQLiteDeadLetterStore(path: big)
        defer { try? source.close() }
        let tenth = try await self.firstTenth(of: source)
        var files: [(count: Int, path: String)] = []
        for (label, filter) in [("a tenth", tenth), ("all", DeadLetterFilter())] {
            let path = settings.scratch + "/export-\(files.count).jsonl"
            try? FileManager.default.removeItem(atPath: path)
            let rss = Measure.residentBytes()
            let sampler = PeakResidentSampler()
            var count = 0
            let elapsed = try await Measure.time { count = try await self.export(source, matching: filter, to: path) }
            let growth = sampler.stop() - rss
            files.append((count, path))
            let rate = Double(count) / Measure.seconds(elapsed)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            report.add(
                Figure(
                    "export, SQLite → JSON Lines, \(label): \(Format.integer(Double(count))) letters "
                        + "(\(Format.bytes(size)))",
                    target: "≥ 200,000/s, flat memory",
                    measured: "\(Format.rate(rate)), peak RSS +\(Format.bytes(growth))",
                    pass: rate >= 200_000
                )
            )
        }

        for (count, path) in files {
            let store = settings.scratch + "/import.sqlite"
            SQLiteFixtures.remove(store)
            let validateTime = try await Measure.time {
                let validated = try JSONLinesReader.validate(path: path)
                guard validated == count else { throw BenchmarkError("validated \(validated) of \(count)") }
            }
            let target = try SQLiteDeadLetterStore(path: store)
            let rss = Measure.residentBytes()
            let sampler = PeakResidentSampler()
            var inserted = 0
            let elapsed = try await Measure.time {
                inserted = try await target.importLetters(JSONLinesFile(path: path), onConflict: .skip).inserted
            }
            let growth = sampler.stop() - rss
            try target.close()
            SQLiteFixtures.remove(store)
            // Raw SQLite inserting the same rows (decoded beforehand) in one transaction.
            let raw = try await SQLiteBaselines.importRate(file: path, path: store)
            try? FileManager.default.removeItem(atPath: path)
            guard inserted == count else { throw BenchmarkError("imported \(inserted) of \(count)") }
            let rate = Double(count) / Measure.seconds(elapsed)
            report.add(
                Figure(
                    "import, JSON Lines → SQLite (durable, one transaction): \(Format.integer(Double(count))) letters "
                        + "vs raw SQLite inserting the same rows and totals in one transaction",
                    target: "≥ 50% of raw SQLite; ≥ 200,000/s on a quiet machine, flat memory",
                    measured: "\(SQLiteBaselines.ratio(rate, raw, of: "raw SQLite")), peak RSS "
                        + "+\(Format.bytes(growth))",
                    pass: rate >= 0.5 * raw
                )
            )
            let validateRate = Double(count) / Measure.seconds(validateTime)
            report.add(
                Figure(
                    "import's validation pass (`JSONLinesReader.validate`): \(Format.integer(Double(count))) letters",
                    measured: Format.rate(validateRate)
                )
            )
        }
    }

    /// A filter for the first tenth of the letters (their first failures are spread evenly over 48 hours).
    static func firstTenth(of source: SQLiteDeadLetterStore) async throws -> DeadLetterFilter {
        let span = try await source.summary(DeadLetterFilter(), now: Date())
        let oldest = span.oldestFailedAt ?? Date()
        let newest = span.newestFailedAt ?? Date()
        return DeadLetterFilter(until: oldest.addingTimeInterval(newest.timeIntervalSince(oldest) / 10))
    }

    /// Writes the letters `filter` matches to a new JSON Lines file at `path`, as `dlq export` does.
    /// - Returns: how many were written.
    static func export(
        _ source: SQLiteDeadLetterStore,
        matching filter: DeadLetterFilter,
        to path: String
    ) async throws -> Int {
        let writer = try JSONLinesWriter(path: path)
        for try await letter in source.letters(matching: filter) { try writer.write(letter) }
        try writer.close()
        return writer.count
    }

    /// The export figure alone, for a profiler (`--profile-export`): the cached 1,000,000-letter store, all of
    /// it or its first tenth, to a scratch file that is removed after.
    /// - Returns: letters a second.
    static func exportRate(tenth: Bool, cacheFolder: String) async throws -> Double {
        let big = try await SQLiteFixtures.cachedStore(count: 1_000_000, cacheFolder: cacheFolder, report: nil)
        let source = try SQLiteDeadLetterStore(path: big)
        defer { try? source.close() }
        let filter = tenth ? try await self.firstTenth(of: source) : DeadLetterFilter()
        let path = "/tmp/dlq-bench-profile-export.jsonl"
        try? FileManager.default.removeItem(atPath: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var count = 0
        let elapsed = try await Measure.time { count = try await self.export(source, matching: filter, to: path) }
        return Double(count) / Measure.seconds(elapsed)
    }
}
