import DeadLetters
import Foundation

/// The memory store: `add` throughput and memory per letter, and replay throughput.
enum MemoryBenchmarks {
    static func run(_ settings: Settings, report: Report) async throws {
        log("memory store")
        let count = settings.quick ? 200_000 : 1_000_000
        try await SeedComparison.run(settings, report: report)
        try await self.addThroughput(count: count / 2, report: report)
        try await self.memoryPerLetter(count: 100_000, report: report)
        try await self.memoryPerLetter(count: count, report: report)
        try await self.replay(count: settings.quick ? 50_000 : 200_000, report: report)
    }

    /// Arguments of `count` adds, made beforehand so that only `add` is timed. Messages are distinct strings
    /// (a number in each), the payload is one shared 300-byte value.
    static func arguments(_ count: Int) -> [(source: String, reason: FailureReason, type: String, message: String)] {
        (0..<count).map { index in
            let (type, message) = LetterFactory.failure(index)
            return (LetterFactory.source(index), LetterFactory.reason(index), type, message)
        }
    }

    static func addThroughput(count: Int, report: Report) async throws {
        let arguments = self.arguments(count)
        let payload = LetterFactory.payload(0)

        // Through the engine, one caller awaiting each add.
        var rates: [Double] = []
        for _ in 0..<3 {
            let queue = try DeadLetterQueue(store: MemoryDeadLetterStore())
            let elapsed = try await Measure.time {
                for argument in arguments {
                    try await queue.add(
                        payload: payload,
                        source: argument.source,
                        reason: argument.reason,
                        errorType: argument.type,
                        errorMessage: argument.message
                    )
                }
            }
            rates.append(Double(count) / Measure.seconds(elapsed))
        }
        var rate = Measure.median(rates)
        report.add(
            Figure(
                "`add`, memory store, `DeadLetterQueue.add`, 1 caller (\(Format.integer(Double(count))) letters)",
                target: "≥ 1,000,000/s",
                measured: Format.rate(rate),
                pass: rate >= 1_000_000,
                note: rate >= 1_000_000 ? nil : "see the profile notes in RESULTS.md"
            )
        )

        // Through the engine, 8 concurrent callers (both cores busy).
        rates = []
        let callers = 8
        for _ in 0..<3 {
            let queue = try DeadLetterQueue(store: MemoryDeadLetterStore())
            let elapsed = try await Measure.time {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for caller in 0..<callers {
                        group.addTask {
                            for index in stride(from: caller, to: count, by: callers) {
                                let argument = arguments[index]
                                try await queue.add(
                                    payload: payload,
                                    source: argument.source,
                                    reason: argument.reason,
                                    errorType: argument.type,
                                    errorMessage: argument.message
                                )
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            rates.append(Double(count) / Measure.seconds(elapsed))
        }
        rate = Measure.median(rates)
        report.add(
            Figure(
                "`add`, memory store, `DeadLetterQueue.add`, \(callers) concurrent callers",
                target: "≥ 1,000,000/s",
                measured: Format.rate(rate),
                pass: rate >= 1_000_000
            )
        )

        // The store alone: one letter per `append`, letters built beforehand.
        let factory = LetterFactory()
        let letters = (0..<count).map { factory.letter($0, of: count, payload: payload) }
        rates = []
        for _ in 0..<3 {
            let store = MemoryDeadLetterStore()
            let elapsed = try await Measure.time {
                for letter in letters {
                    _ = try await store.append([letter], onConflict: .fail, limits: .unbounded)
                }
            }
            rates.append(Double(count) / Measure.seconds(elapsed))
        }
        rate = Measure.median(rates)
        report.add(
            Figure(
                "`add`, memory store, raw `MemoryDeadLetterStore.append`, 1 letter per call",
                target: "≥ 1,000,000/s",
                measured: Format.rate(rate),
                pass: rate >= 1_000_000
            )
        )
    }

    /// Runs ``measureMemoryPerLetter(count:)`` in a child process of its own with `MALLOC_ARENA_MAX=1`, so that
    /// memory freed by the earlier figures is not reused and `mallinfo2` sees every thread's allocations.
    static func memoryPerLetter(count: Int, report: Report) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["MALLOC_ARENA_MAX"] = "1"
        let fields = try Measure.numbers(
            ["--child-memory-per-letter", String(count)],
            environment: environment,
            count: 3
        )
        let (heap, rss, messageBytes) = (fields[0], fields[1], fields[2])
        report.add(
            Figure(
                "memory per letter beside its payload, memory store (heap growth over "
                    + "\(Format.integer(Double(count))) `DeadLetterQueue.add`s; \(Format.integer(messageBytes))-byte "
                    + "messages, no metadata)",
                target: "≤ 300 bytes",
                measured: "\(Format.integer(heap)) bytes (RSS: \(Format.integer(rss)))",
                pass: heap <= 300
            )
        )
    }

    /// Heap and RSS growth per letter over `count` adds through the engine, with 8-byte payloads and distinct
    /// messages made on the fly (so the store holds the only reference), minus the payload bytes. Prints
    /// "heap rss messageBytes".
    static func measureMemoryPerLetter(count: Int) async throws {
        let queue = try DeadLetterQueue(store: MemoryDeadLetterStore())
        let payload = Data("12345678".utf8)
        // Warm up the engine's own allocations (metrics, id generator) before the baseline.
        try await queue.add(
            payload: payload,
            source: "warmup",
            reason: .processing,
            errorType: "E",
            errorMessage: "warm up"
        )
        let heapBefore = Measure.heapInUse()
        let rssBefore = Measure.residentBytes()
        var messageBytes = 0
        for index in 0..<count {
            let (type, message) = LetterFactory.failure(index)
            messageBytes += message.utf8.count
            try await queue.add(
                payload: payload,
                source: LetterFactory.source(index),
                reason: LetterFactory.reason(index),
                errorType: type,
                errorMessage: message
            )
        }
        let heapGrowth = Measure.heapInUse() - heapBefore
        let rssGrowth = Measure.residentBytes() - rssBefore
        let total = try await queue.count()
        guard total == count + 1 else { throw BenchmarkError("the memory store lost letters: \(total)") }
        let heap = Double(heapGrowth - count * payload.count) / Double(count)
        let rss = Double(rssGrowth - count * payload.count) / Double(count)
        print(heap, rss, Double(messageBytes) / Double(count))
        withExtendedLifetime(queue) {}
    }

    static func replay(count: Int, report: Report) async throws {
        var rates: [Double] = []
        for _ in 0..<3 { rates.append(try await self.replayRate(count: count, concurrency: 8)) }
        let rate = Measure.median(rates)
        report.add(
            Figure(
                "replay, no-op handler, memory store, concurrency 8 (\(Format.integer(Double(count))) letters, "
                    + "parked excluded)",
                target: "≥ 100,000/s",
                measured: Format.rate(rate),
                pass: rate >= 100_000
            )
        )
    }

    /// Replays `count` letters from a memory store with a no-op handler: letters per second.
    static func replayRate(count: Int, concurrency: Int) async throws -> Double {
        let letters = LetterFactory().letters(0..<count, of: count)
        let store = MemoryDeadLetterStore()
        for start in stride(from: 0, to: count, by: 10_000) {
            try await store.append(Array(letters[start..<min(count, start + 10_000)]))
        }
        let queue = try DeadLetterQueue(store: store)
        var result: ReplayReport?
        let elapsed = try await Measure.time {
            result = try await queue.replay(
                options: ReplayOptions(concurrency: concurrency, maxConsecutiveFailures: nil)
            ) { _ in }
        }
        let succeeded = result?.succeeded ?? 0
        guard succeeded == result?.matched, try await store.count(DeadLetterFilter()) == count - succeeded else {
            throw BenchmarkError("memory replay: \(String(describing: result))")
        }
        return Double(succeeded) / Measure.seconds(elapsed)
    }
}
