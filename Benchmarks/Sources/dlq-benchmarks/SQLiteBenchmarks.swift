import DeadLetters
import DeadLettersSQLite
import Foundation

/// The SQLite store: durable `add` (64 adders, one adder), opening a 1,000,000-letter store, filtered pages,
/// summary and groups at 1,000,000 letters, and replay.
enum SQLiteBenchmarks {
    static func run(_ settings: Settings, report: Report) async throws {
        log("SQLite store")
        try await self.durableAdd(settings, report: report)
        let big = try await SQLiteFixtures.cachedStore(
            count: settings.bigCount,
            cacheFolder: settings.cacheFolder,
            report: report
        )
        try await self.open(settings, big: big, report: report)
        try await self.queries(settings, big: big, report: report)
        try await self.replay(settings, report: report)
    }

    /// Adds through the engine from `adders` tasks, each awaiting its adds one after the other.
    static func addRate(
        path: String,
        adders: Int,
        perAdder: Int?,
        duration: Duration? = nil,
        durability: SQLiteDeadLetterStore.Durability = .durable
    ) async throws -> Double {
        SQLiteFixtures.remove(path)
        let store = try SQLiteDeadLetterStore(path: path, durability: durability)
        defer {
            try? store.close()
            SQLiteFixtures.remove(path)
        }
        let queue = try DeadLetterQueue(store: store)
        let payload = LetterFactory.payload(0)
        let deadline = duration.map { Measure.clock.now.advanced(by: $0) }
        let start = Measure.clock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for adder in 0..<adders {
                group.addTask {
                    var done = 0
                    while true {
                        if let perAdder, done >= perAdder { break }
                        if let deadline, Measure.clock.now >= deadline { break }
                        let index = adder + done * adders
                        try await LetterFactory.add(index, to: queue, payload: payload)
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = start.duration(to: Measure.clock.now)
        let stored = try await store.count(DeadLetterFilter())
        guard stored == total else { throw BenchmarkError("durable add stored \(stored) of \(total) letters") }
        return Double(total) / Measure.seconds(elapsed)
    }

    static func durableAdd(_ settings: Settings, report: Report) async throws {
        let path = settings.scratch + "/add.sqlite"
        // One run: at a few thousand letters per second on a busy disk, more runs cost minutes.
        let perAdder = settings.quick ? 250 : 1000
        var rates: [Double] = []
        let syncsBefore = syncCount()
        for _ in 0..<1 {
            rates.append(try await self.addRate(path: path, adders: 64, perAdder: perAdder))
        }
        // The store's commits (one log sync each) give the batch the raw baseline commits.
        let letters = 64 * perAdder
        let syncs = syncCount() - syncsBefore
        let batch = syncs > 0 ? max(1, Int((Double(letters) / Double(syncs)).rounded())) : 64
        var rate = Measure.median(rates)
        let raw = try SQLiteBaselines.addRate(path: path, count: letters, batch: batch, durable: true)
        report.add(
            Figure(
                "durable `add`, SQLite, 64 concurrent adders (`DeadLetterQueue.add`, 300-byte payloads, "
                    + "\(Format.integer(Double(letters))) letters; \(syncs) log syncs, so ≈ \(batch) letters a "
                    + "commit) vs raw SQLite inserting the same rows and totals, \(batch) a transaction",
                target: "≥ 50% of raw SQLite; ≥ 100,000/s on a quiet machine",
                measured: SQLiteBaselines.ratio(rate, raw, of: "raw SQLite"),
                pass: rate >= 0.5 * raw
            )
        )

        rates = []
        for _ in 0..<3 {
            rates.append(try await self.addRate(path: path, adders: 1, perAdder: nil, duration: .seconds(1)))
        }
        rate = Measure.median(rates)
        let fsyncs = settings.fsyncRate
        // Raw SQLite committing each letter alone, with the same tables, indexes and search upkeep: what the
        // schema's pages per commit leave of the fsync rate (the probe writes one page a sync).
        let alone = try SQLiteBaselines.addRate(path: path, count: max(500, Int(rate)), batch: 1, durable: true)
        report.add(
            Figure(
                "durable `add`, SQLite, one adder awaiting each (disk: \(Format.rate(fsyncs)) fsyncs) vs raw SQLite "
                    + "committing the same rows and totals one a transaction",
                target: "≥ 80% of the fsync rate (\(Format.rate(0.8 * fsyncs)))",
                measured: "\(Format.rate(rate)) (\(Int((100 * rate / fsyncs).rounded()))% of the fsync rate) = "
                    + "\(SQLiteBaselines.percent(rate / alone)) of raw SQLite's \(Format.rate(alone)) "
                    + "(\(Int((100 * alone / fsyncs).rounded()))% of the fsync rate)",
                pass: rate >= 0.8 * fsyncs
            )
        )
        rate = try await self.addRate(path: path, adders: 64, perAdder: perAdder, durability: .fast)
        report.add(Figure("`add`, SQLite, fast durability, 64 concurrent adders", measured: Format.rate(rate)))
    }

    /// Opens the store at `path` and reads its first page; returns the time and the RSS growth.
    static func openOnce(_ path: String) async throws -> (Duration, Int) {
        let rss = Measure.residentBytes()
        let start = Measure.clock.now
        let store = try SQLiteDeadLetterStore(path: path)
        let page = try await store.page(DeadLetterFilter(), after: nil, limit: 1)
        let elapsed = start.duration(to: Measure.clock.now)
        let growth = Measure.residentBytes() - rss
        try store.close()
        guard page.letters.count == 1 else { throw BenchmarkError("opened an empty store at \(path)") }
        return (elapsed, growth)
    }

    static func open(_ settings: Settings, big: String, report: Report) async throws {
        let small = settings.scratch + "/small.sqlite"
        try await SQLiteFixtures.build(path: small, count: 10)
        defer { SQLiteFixtures.remove(small) }
        _ = try await self.openOnce(small)  // warm up
        var results: [String: ([Duration], [Int])] = [small: ([], []), big: ([], [])]
        for _ in 0..<7 {
            for path in [small, big] {
                let (elapsed, growth) = try await self.openOnce(path)
                results[path]?.0.append(elapsed)
                results[path]?.1.append(growth)
            }
        }
        func median(_ path: String) -> (Duration, Int) {
            let (durations, growths) = results[path] ?? ([], [])
            return (Measure.median(durations), growths.sorted()[growths.count / 2])
        }
        let (smallTime, smallGrowth) = median(small)
        let (bigTime, bigGrowth) = median(big)
        report.add(
            Figure(
                "open a 10-letter SQLite store (init + first page)",
                measured: "\(Format.milliseconds(smallTime)), RSS +\(Format.bytes(smallGrowth))"
            )
        )
        report.add(
            Figure(
                "open a \(Format.integer(Double(settings.bigCount)))-letter SQLite store "
                    + "(\(Format.bytes(SQLiteFixtures.fileSize(big))) file; init + first page)",
                target: "< 50 ms",
                measured: Format.milliseconds(bigTime),
                pass: bigTime < .milliseconds(50)
            )
        )
        let flat = bigGrowth <= smallGrowth + (2 << 20)
        report.add(
            Figure(
                "memory to open, \(Format.integer(Double(settings.bigCount))) vs 10 letters (RSS growth)",
                target: "independent of size",
                measured: "+\(Format.bytes(bigGrowth)) vs +\(Format.bytes(smallGrowth))",
                pass: flat
            )
        )
    }

    static func queries(_ settings: Settings, big: String, report: Report) async throws {
        let store = try SQLiteDeadLetterStore(path: big)
        defer { try? store.close() }
        let size = Format.integer(Double(settings.bigCount))
        try await StoreQueries.measure(store, label: "SQLite", size: size, report: report)
    }

    /// Builds a store of `count` letters at `path` and replays everything with a no-op handler; the rate of
    /// the replay alone.
    static func replayRate(
        path: String,
        count: Int,
        concurrency: Int,
        durability: SQLiteDeadLetterStore.Durability
    ) async throws -> Double {
        SQLiteFixtures.remove(path)
        try await SQLiteFixtures.build(path: path, count: count)
        let store = try SQLiteDeadLetterStore(path: path, durability: durability)
        let queue = try DeadLetterQueue(store: store)
        var result: ReplayReport?
        let elapsed = try await Measure.time {
            result = try await queue.replay(
                options: ReplayOptions(concurrency: concurrency, maxConsecutiveFailures: nil)
            ) { _ in }
        }
        let left = try await store.count(DeadLetterFilter())
        try store.close()
        let succeeded = result?.succeeded ?? 0
        guard succeeded == result?.matched, left == count - succeeded else {
            throw BenchmarkError("SQLite replay: \(String(describing: result)), \(left) left")
        }
        return Double(succeeded) / Measure.seconds(elapsed)
    }

    static func replay(_ settings: Settings, report: Report) async throws {
        let path = settings.scratch + "/replay.sqlite"
        for durability in [SQLiteDeadLetterStore.Durability.durable, .fast] {
            // Completions of concurrent letters share commits, so durable replay runs long enough to measure too.
            let count = settings.quick ? 10_000 : 50_000
            let rate = try await Self.replayRate(path: path, count: count, concurrency: 8, durability: durability)
            let durable = durability == .durable
            // Raw SQLite's claims and deletes of the same letters, in batches of the replay's (100).
            try await SQLiteFixtures.build(path: path, count: count)
            let batch = DeadLetterQueue.Configuration().batchSize
            let raw = try SQLiteBaselines.replayRate(path: path, batch: batch, durable: durable)
            SQLiteFixtures.remove(path)
            report.add(
                Figure(
                    "replay, no-op handler, SQLite (\(durability)), concurrency 8 "
                        + "(\(Format.integer(Double(count))) letters) vs raw SQLite claiming and deleting the "
                        + "same \(Format.integer(Double(raw.count))) letters, \(batch) a transaction",
                    target: durable ? "≥ 50% of raw SQLite; ≥ 30,000/s on a quiet machine" : "—",
                    measured: SQLiteBaselines.ratio(rate, raw.rate, of: "raw SQLite"),
                    pass: durable ? rate >= 0.5 * raw.rate : nil
                )
            )
        }
    }
}
