import DeadLetters
import DeadLettersPostgres
import DeadLettersSQLite
import Foundation

/// Search, metadata pairs and sorted pages at 1,000,000 letters (100,000 with `--quick`), on SQLite and (with
/// `DLQ_POSTGRES_URL`) PostgreSQL: `dlq-benchmarks --only search`.
enum SearchBenchmarks {
    /// Letter `index` of ``LetterFactory`` with a customer in its metadata (about 10 letters per customer in a
    /// million), so that one metadata pair selects a few letters.
    static func letters(_ factory: LetterFactory, _ range: Range<Int>, of count: Int) -> [DeadLetter] {
        range.map { index in
            var letter = factory.letter(index, of: count)
            letter.metadata["customer"] = "cust-\(LetterFactory.mix(index, 6) % 100_000)"
            return letter
        }
    }

    /// The searches measured: a payload substring in one letter, one in a few hundred, a message phrase in
    /// one letter in ten, a metadata pair of about 10 letters, and both.
    static func filters(count: Int) -> [(String, DeadLetterFilter, String)] {
        let order = "ord-\(count / 2 + 12_345 % max(count / 2, 1))"
        let customer = "cust-\(LetterFactory.mix(count / 3, 6) % 100_000)"
        return [
            ("payload substring, 1 letter (`\(order)`)", DeadLetterFilter(search: order), "< 50 ms"),
            ("payload substring, a few hundred letters (`SKU-4242`)", DeadLetterFilter(search: "SKU-4242"), "< 50 ms"),
            ("message substring, 1 letter in 10 (`timed out`)", DeadLetterFilter(search: "timed out"), "< 50 ms"),
            (
                "one metadata pair (`customer=\(customer)`)", DeadLetterFilter(metadata: ["customer": customer]),
                "< 5 ms"
            ),
            (
                "metadata pair + source",
                DeadLetterFilter(sources: ["orders"], metadata: ["tenant": "acme"]), "< 5 ms"
            ),
        ]
    }

    /// What keeping the search table and the metadata pairs costs an append: the same appends (fast
    /// durability, 1,000 letters each) into a store with its search triggers and into one whose triggers were
    /// dropped with the `sqlite3` shell (skipped without it).
    static func addCost(_ settings: Settings, report: Report) async throws {
        let shell = "/usr/bin/sqlite3"
        guard FileManager.default.isExecutableFile(atPath: shell) else {
            report.add(Figure("SQLite: cost of the search triggers", measured: "not measured: no \(shell)"))
            return
        }
        let count = settings.quick ? 20_000 : 100_000
        let factory = LetterFactory()
        var rates: [Bool: Double] = [:]
        for withSearch in [true, false] {
            let path = "\(settings.scratch)/add-\(withSearch).sqlite"
            try SQLiteDeadLetterStore(path: path, durability: .fast).close()
            if !withSearch {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: shell)
                process.arguments = [
                    path,
                    "DROP TRIGGER dlq_letters_search_inserted; DROP TRIGGER dlq_letters_search_deleted; "
                        + "DROP TRIGGER dlq_letters_search_updated;",
                ]
                try process.run()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else {
                    throw BenchmarkError("sqlite3 could not drop the triggers")
                }
            }
            let store = try SQLiteDeadLetterStore(path: path, durability: .fast)
            let batches = (0..<(count / 1000)).map {
                self.letters(factory, ($0 * 1000)..<($0 * 1000 + 1000), of: count)
            }
            let elapsed = try await Measure.time {
                for batch in batches { try await store.append(batch) }
            }
            try store.close()
            SQLiteFixtures.remove(path)
            rates[withSearch] = Double(count) / Measure.seconds(elapsed)
        }
        let with = rates[true] ?? 0
        let without = rates[false] ?? 0
        report.add(
            Figure(
                "SQLite: appends of 1,000 (fast durability), \(Format.integer(Double(count))) letters: with the search "
                    + "triggers · without",
                measured:
                    "\(Format.rate(with)) · \(Format.rate(without)) (\(Int((100 * (1 - with / max(without, 1))).rounded()))% "
                    + "slower)"
            )
        )
    }

    static func run(_ settings: Settings, report: Report) async throws {
        try await self.addCost(settings, report: report)
        let count = settings.bigCount
        log("search: SQLite, \(count) letters")
        let path = "\(settings.scratch)/search.sqlite"
        let factory = LetterFactory()
        var store = try SQLiteDeadLetterStore(path: path, durability: .fast)
        let load = try await Measure.time {
            var next = 0
            while next < count {
                let end = min(count, next + 5000)
                try await store.append(self.letters(factory, next..<end, of: count))
                next = end
            }
        }
        report.add(
            Figure(
                "SQLite: load \(Format.integer(Double(count))) letters with the search index (fast durability, "
                    + "appends of 5,000)",
                measured: "\(Format.rate(Double(count) / Measure.seconds(load)))"
            )
        )
        try store.close()
        store = try SQLiteDeadLetterStore(path: path, durability: .fast)
        report.add(
            Figure(
                "SQLite: file size at \(Format.integer(Double(count))) letters (with the search index)",
                measured: Format.bytes(SQLiteFixtures.fileSize(path))
            )
        )
        try await self.measure(store, label: "SQLite", count: count, report: report)
        try store.close()
        SQLiteFixtures.remove(path)

        guard let url = ProcessInfo.processInfo.environment["DLQ_POSTGRES_URL"], !url.isEmpty else {
            report.add(Figure("PostgreSQL search figures", measured: "not measured: DLQ_POSTGRES_URL not set"))
            return
        }
        log("search: PostgreSQL, \(count) letters")
        let schema = "bench_search_\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        try await PostgresDeadLetterStore.withStore(url: url, configuration: PostgresBenchmarks.configuration(schema)) {
            store in
            try await store.migrate()
            let indexed = try await store.searchIsIndexed()
            let elapsed = try await Measure.time {
                var next = 0
                while next < count {
                    let end = min(count, next + 2000)
                    try await store.append(self.letters(factory, next..<end, of: count))
                    next = end
                }
            }
            report.add(
                Figure(
                    "PostgreSQL: load \(Format.integer(Double(count))) letters with the trigram and metadata indexes "
                        + "(appends of 2,000\(indexed ? "" : "; pg_trgm missing: no trigram index"))",
                    measured: Format.rate(Double(count) / Measure.seconds(elapsed))
                )
            )
            try await store.analyze()
            try await self.measure(store, label: "PostgreSQL", count: count, report: report)
        }
    }

    static func measure(_ store: some DeadLetterStore, label: String, count: Int, report: Report) async throws {
        let size = Format.integer(Double(count))
        for (name, filter, target) in self.filters(count: count) {
            var got = 0
            let elapsed = try await Measure.median(runs: 21, warmup: 2) {
                got = try await store.page(filter, sortedBy: .id, after: nil, limit: 100).letters.count
            }
            guard got > 0 else { throw BenchmarkError("\(label) search \(name): no letter") }
            let limit: Duration = target == "< 5 ms" ? .milliseconds(5) : .milliseconds(50)
            report.add(
                Figure(
                    "first page (up to 100) of \(size) letters, \(label): \(name), \(got) found",
                    target: target,
                    measured: Format.milliseconds(elapsed),
                    pass: elapsed < limit
                )
            )
        }
        for sort in [DeadLetterSort.lastFailed, .firstFailed, .attempts, .source] {
            let first = try await store.page(DeadLetterFilter(), sortedBy: sort, after: nil, limit: 100)
            let elapsed = try await Measure.median(runs: 21, warmup: 2) {
                _ = try await store.page(DeadLetterFilter(), sortedBy: sort, after: first.nextCursor, limit: 100)
            }
            report.add(
                Figure(
                    "second page of 100 of \(size) letters sorted by \(sort), \(label)",
                    target: "< 5 ms",
                    measured: Format.milliseconds(elapsed),
                    pass: elapsed < .milliseconds(5)
                )
            )
        }
    }
}
