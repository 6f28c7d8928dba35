import DeadLetters
import DeadLettersPostgres
import Foundation
import PostgresNIO
import Synchronization

/// PostgreSQL: durable `add` with 64 adders, replay by 4 instances (no letter twice), filtered pages and
/// summary at 1,000,000 letters. Needs `DLQ_POSTGRES_URL`.
enum PostgresBenchmarks {
    /// - Parameter only: the parts to run (`add`, `replay`, `queries`); all by default.
    static func run(
        _ settings: Settings,
        report: Report,
        only: Set<String> = ["add", "replay", "queries"]
    ) async throws {
        guard let url = ProcessInfo.processInfo.environment["DLQ_POSTGRES_URL"], !url.isEmpty else {
            log("PostgreSQL: skipped (DLQ_POSTGRES_URL is not set)")
            report.add(Figure("PostgreSQL figures", measured: "not measured: DLQ_POSTGRES_URL not set"))
            return
        }
        log("PostgreSQL")
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        if only.contains("add") {
            try await self.durableAdd(url: url, schema: "bench_add_\(run)", settings, report: report)
        }
        if only.contains("replay") {
            try await self.replay(url: url, schema: "bench_replay_\(run)", settings, report: report)
        }
        if only.contains("queries") {
            try await self.queries(url: url, schema: "bench_big_\(run)", settings, report: report)
        }
    }

    /// The store's defaults; `DLQ_POSTGRES_BENCH_COMMITS` overrides `maxConcurrentCommits`, for tuning.
    static func configuration(_ schema: String) -> PostgresDeadLetterStore.Configuration {
        var configuration = PostgresDeadLetterStore.Configuration(schema: schema, migrate: true)
        let environment = ProcessInfo.processInfo.environment
        if let commits = environment["DLQ_POSTGRES_BENCH_COMMITS"].flatMap({ Int($0) }) {
            configuration.maxConcurrentCommits = commits
        }
        return configuration
    }

    static func durableAdd(url: String, schema: String, _ settings: Settings, report: Report) async throws {
        let perAdder = settings.quick ? 300 : 1500
        let letters = 64 * perAdder
        let client = try PostgresBaseline.client(url: url)
        let concurrency = self.configuration(schema).maxConcurrentCommits
        let (rate, raw, batch) = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            // The store's commits are its write transactions: the server's transaction ids between two reads
            // (less the second read and the warm-up add).
            let before = try await PostgresBaseline.transactionID(client)
            let rate = try await self.addRate(url: url, schema: schema, perAdder: perAdder)
            let commits = try await PostgresBaseline.transactionID(client) - before - 2
            let batch = commits > 0 ? max(1, Int((Double(letters) / Double(commits)).rounded())) : 30
            let rawSchema = schema + "_raw"
            _ = try await PostgresDeadLetterStore.withStore(url: url, configuration: self.configuration(rawSchema)) {
                try await $0.migrate()
            }
            let raw = try await PostgresBaseline.addRate(
                client: client,
                schema: rawSchema,
                count: letters,
                batch: batch,
                concurrency: concurrency
            )
            return (rate, raw, batch)
        }
        report.add(
            Figure(
                "PostgreSQL durable `add`, 64 concurrent adders (\(Format.integer(Double(letters))) letters, ≈ \(batch) "
                    + "a commit) vs raw postgres-nio `INSERT … SELECT * FROM unnest(…)` of the same rows into the "
                    + "store's table and indexes, with the same usage and running-total rows, \(batch) a statement, "
                    + "\(concurrency) at once",
                target: "≥ 70% of raw postgres-nio",
                measured: SQLiteBaselines.ratio(rate, raw, of: "raw postgres-nio"),
                pass: rate >= 0.7 * raw
            )
        )
    }

    /// Letters per second that 64 tasks add through one queue, `perAdder` each, into a new schema.
    static func addRate(url: String, schema: String, perAdder: Int) async throws -> Double {
        let adders = 64
        return try await PostgresDeadLetterStore.withStore(url: url, configuration: self.configuration(schema)) {
            store in
            try await store.migrate()
            let queue = try DeadLetterQueue(store: store)
            let payload = LetterFactory.payload(0)
            // Warm up the connections.
            try await queue.add(
                payload: payload,
                source: "warmup",
                reason: .processing,
                errorType: "E",
                errorMessage: "w"
            )
            let elapsed = try await Measure.time {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for adder in 0..<adders {
                        group.addTask {
                            for done in 0..<perAdder {
                                let index = adder + done * adders
                                try await LetterFactory.add(index, to: queue, payload: payload)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let stored = try await store.count(DeadLetterFilter())
            guard stored == adders * perAdder + 1 else { throw BenchmarkError("PostgreSQL add stored \(stored)") }
            return Double(adders * perAdder) / Measure.seconds(elapsed)
        }
    }

    /// Four queues with their own instance ids, each on its own store (its own client), replay the same
    /// letters at once; every letter must be handled exactly once.
    static func replay(url: String, schema: String, _ settings: Settings, report: Report) async throws {
        let count = settings.quick ? 10_000 : 50_000
        let factory = LetterFactory()
        try await PostgresDeadLetterStore.withStore(url: url, configuration: self.configuration(schema)) { loader in
            try await loader.migrate()
            for start in stride(from: 0, to: count, by: 2000) {
                try await loader.append(factory.letters(start..<min(count, start + 2000), of: count))
            }
        }
        let handled = HandledLetters()
        let instances = 4
        let stores = try (0..<instances).map { _ in
            try PostgresDeadLetterStore(url: url, configuration: self.configuration(schema))
        }
        var reports: [ReplayReport] = []
        let elapsed = try await withThrowingTaskGroup(of: Void.self) { clients in
            for store in stores { clients.addTask { try await store.run() } }
            defer { clients.cancelAll() }
            return try await Measure.time {
                reports = try await withThrowingTaskGroup(of: ReplayReport.self) { group in
                    for (instance, store) in stores.enumerated() {
                        group.addTask {
                            var configuration = DeadLetterQueue.Configuration()
                            configuration.instanceID = "bench-\(instance)"
                            let queue = try DeadLetterQueue(store: store, configuration: configuration)
                            return try await queue.replay(
                                options: ReplayOptions(concurrency: 8, maxConsecutiveFailures: nil)
                            ) { letter in
                                handled.counts.withLock { $0[letter.id, default: 0] += 1 }
                            }
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
        }
        let counts = handled.counts.withLock { $0 }
        let twice = counts.values.filter { $0 > 1 }.count
        let succeeded = reports.reduce(0) { $0 + $1.succeeded }
        let replayable = factory.letters(0..<count, of: count).filter { $0.status != .parked }.count
        let rate = Double(counts.count) / Measure.seconds(elapsed)
        report.add(
            Figure(
                "PostgreSQL replay by 4 instances at once, no-op handler (\(Format.integer(Double(replayable))) "
                    + "letters)",
                target: "no letter twice",
                measured: "\(twice) twice, \(counts.count) handled, \(succeeded) succeeded; \(Format.rate(rate))",
                pass: twice == 0 && counts.count == replayable
            )
        )
    }

    static func queries(url: String, schema: String, _ settings: Settings, report: Report) async throws {
        let count = settings.bigCount
        let factory = LetterFactory()
        try await PostgresDeadLetterStore.withStore(url: url, configuration: self.configuration(schema)) { store in
            try await store.migrate()
            log("  loading \(count) letters into PostgreSQL")
            let elapsed = try await Measure.time {
                var next = 0
                while next < count {
                    let end = min(count, next + 2000)
                    try await store.append(factory.letters(next..<end, of: count))
                    next = end
                }
            }
            report.add(
                Figure(
                    "PostgreSQL: load \(Format.integer(Double(count))) letters (appends of 2,000)",
                    measured: Format.rate(Double(count) / Measure.seconds(elapsed))
                )
            )
            // A steady-state store: autovacuum would have refreshed the statistics within a minute of the load,
            // and without them the planner may sort every matching letter instead of walking an index.
            try await store.analyze()
            try await StoreQueries.measure(
                store,
                label: "PostgreSQL",
                size: Format.integer(Double(count)),
                report: report
            )
        }
    }
}

/// How many times each letter was handled, across replaying instances.
final class HandledLetters: Sendable {
    let counts = Mutex([String: Int]())
}
