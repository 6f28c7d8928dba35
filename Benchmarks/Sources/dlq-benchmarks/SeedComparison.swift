import DeadLetters
import Foundation
import SeedWorkload

/// The in-memory path beside the Python seed it descends from: Datapunk's asyncio dead-letter queue, as
/// reconstructed in `Benchmarks/python/datapunk_dlq_reconstruction.py` (its code is not available; see that
/// file). The workload of both: an error raised and caught, a small JSON payload, attempts 3, one metadata
/// pair; then a replay of everything with a no-op handler. Each configuration runs in a fresh process
/// (`dlq-benchmarks --child-seed WORKLOAD COUNT`, `python3 … add|replay COUNT`), seven times, Python and Swift
/// alternating, in this run.
enum SeedComparison {
    static let counts = [10_000, 100_000]

    /// How many alternating pairs (a Python run, then the Swift run it is compared with) each size takes.
    static let pairs = 7

    /// Rates of one size: each workload's runs, and the ratio of each Swift run to the Python run just before it.
    struct Runs {
        var rates: [String: [Double]] = [:]
        var ratios: [String: [Double]] = [:]

        /// The median rate of `workload`, 0 when it did not run.
        func rate(_ workload: String) -> Double {
            self.rates[workload].map { Measure.median($0) } ?? 0
        }
    }

    static func run(_ settings: Settings, report: Report) async throws {
        log("  beside the Python reconstruction of Datapunk's DLQ (fresh processes, alternating)")
        for count in Self.counts {
            // Python and Swift alternate, and each Swift rate is divided by the Python rate just before it: a
            // slow spell of this shared machine (the same build's rate moved from 370,000 to 700,000/s between
            // fresh processes a second apart) then slows both sides of a ratio, not only one side's median.
            var runs = Runs()
            for _ in 0..<Self.pairs {
                for (python, workloads) in [("add", ["add-error", "add-strings"]), ("replay", ["replay"])] {
                    let reference = try Self.python(python, count)
                    if let reference { runs.rates["python-" + python, default: []].append(reference) }
                    for workload in workloads {
                        let rate = try Self.child(workload, count)
                        runs.rates[workload, default: []].append(rate)
                        if let reference { runs.ratios[workload, default: []].append(rate / reference) }
                    }
                }
                for workload in ["loop", "add-caught"] {
                    runs.rates[workload, default: []].append(try Self.child(workload, count))
                }
            }
            let size = Format.integer(Double(count))
            let pythonAdd = runs.rates["python-add"].map { Measure.median($0) }
            report.add(
                Figure(
                    "`queue.add(payload:source:error:…)` of a thrown error, memory store, 1 caller, \(size) letters, "
                        + "vs the Python reconstruction of Datapunk's in-memory `add_message`",
                    target: "≥ 2× Python; ≥ 1,000,000/s on a quiet machine",
                    measured: Self.versus(runs, "add-error", python: "python-add"),
                    pass: runs.ratios["add-error"].map { Measure.median($0) >= 2 }
                )
            )
            report.add(
                Figure(
                    "`queue.add` with the error as type + message strings, memory store, 1 caller, \(size) letters",
                    measured: Self.versus(runs, "add-strings", python: "python-add")
                )
            )
            report.add(
                Figure(
                    "the workload's own loop without the queue (payload made, error thrown, caught and kept), "
                        + "\(size) letters: what of an add is the caller's",
                    measured: Self.shares(loop: runs.rate("loop"), add: runs.rate("add-error"), python: pythonAdd)
                )
            )
            let caught = runs.rate("add-caught")
            report.add(
                Figure(
                    "`queue.add(payload:source:error:…)` alone, 1 caller, \(size) letters: each error thrown and "
                        + "caught and each payload made beforehand (as a `catch` block has them), the call as the "
                        + "workload writes it",
                    target: "≥ 1,000,000/s",
                    measured: "\(Format.rate(caught)) = "
                        + String(format: "%.2f µs", caught > 0 ? 1_000_000 / caught : 0) + " an add",
                    pass: caught >= 1_000_000
                )
            )
            if count == Self.counts.last { try Self.memory(report: report) }
            report.add(
                Figure(
                    "`queue.replay` of everything, no-op handler, concurrency 1, memory store, \(size) letters, "
                        + "vs the reconstruction's `retry_messages`",
                    target: "≥ 1× Python; ≥ 1,000,000/s on a quiet machine",
                    measured: Self.versus(runs, "replay", python: "python-replay"),
                    pass: runs.ratios["replay"].map { Measure.median($0) >= 1 }
                )
            )
        }
    }

    /// Heap and RSS growth per letter beside its payload, over 100,000 adds of the workload, in a fresh process;
    /// and, in another, what the same 100,000 payloads cost kept alone beside their bytes (each a `Data` whose
    /// storage object and byte block the caller made, and the store keeps as it is given).
    static func memory(report: Report) throws {
        let letters = try Self.growth("memory")
        let payloads = try Self.growth("payloads")
        // Less the payloads' heap, the smaller of their two figures: alone, their RSS also holds the holes that
        // freed temporaries leave between them, which the queue's own blocks fill when it runs.
        let own = (heap: letters.heap - payloads.heap, rss: letters.rss - payloads.heap)
        report.add(
            Figure(
                "memory per letter beside its payload, the seed workload (100,000 adds of a thrown error, one "
                    + "metadata pair, a fresh 50-byte `Data` each; fresh processes): the queue's part, that is the "
                    + "growth beside the payloads' bytes less the heap the same payloads hold kept alone",
                target: "≤ 300 B",
                measured: "RSS \(Format.integer(own.rss)) B, heap \(Format.integer(own.heap)) B (beside the bytes: "
                    + "RSS \(Format.integer(letters.rss)) B, heap \(Format.integer(letters.heap)) B; the payloads "
                    + "alone: RSS \(Format.integer(payloads.rss)) B, heap \(Format.integer(payloads.heap)) B)",
                pass: own.rss <= 300
            )
        )
    }

    /// Runs `--child-seed WORKLOAD 100000`, which prints heap and RSS growth per letter.
    static func growth(_ workload: String) throws -> (heap: Double, rss: Double) {
        let fields = try Measure.numbers(["--child-seed", workload, "100000"], count: 2)
        return (fields[0], fields[1])
    }

    /// The loop's rate, the time per letter of the loop and of the queue's part of an add, and what 2× Python
    /// leaves the queue.
    static func shares(loop: Double, add: Double, python: Double?) -> String {
        guard loop > 0, add > 0 else { return "not measured" }
        let micro = { (rate: Double) in String(format: "%.2f µs", 1_000_000 / rate) }
        var text = "\(Format.rate(loop)) = \(micro(loop)) a letter; the queue's part of an add: "
        text += String(format: "%.2f µs", 1_000_000 / add - 1_000_000 / loop)
        if let python, python > 0 {
            text += String(format: "; 2× Python leaves it %.2f µs", 1_000_000 / (2 * python) - 1_000_000 / loop)
        }
        return text
    }

    /// "median rate = median ratio× Python's median rate (pairs: lowest–highest ratio)".
    static func versus(_ runs: Runs, _ workload: String, python: String) -> String {
        let swift = runs.rate(workload)
        guard let ratios = runs.ratios[workload], !ratios.isEmpty else {
            return "\(Format.rate(swift)) (Python not measured)"
        }
        let ratio = { (value: Double) in String(format: "%.2f", value) }
        return "\(Format.rate(swift)) = \(ratio(Measure.median(ratios)))× Python's \(Format.rate(runs.rate(python))) "
            + "(the median of \(ratios.count) alternating pairs' ratios; "
            + "\(ratio(ratios.min() ?? 0))–\(ratio(ratios.max() ?? 0))×)"
    }

    static var pythonScript: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/datapunk_dlq_reconstruction.py").path
    }

    /// The reconstruction's rate, or `nil` without `python3`.
    static func python(_ operation: String, _ count: Int) throws -> Double? {
        try? Self.rate(of: "/usr/bin/env", ["python3", Self.pythonScript, operation, String(count)])
    }

    static func child(_ workload: String, _ count: Int) throws -> Double {
        try Measure.numbers(["--child-seed", workload, String(count)], count: 1)[0]
    }

    /// Runs a program that prints one rate.
    static func rate(of program: String, _ arguments: [String]) throws -> Double {
        try Measure.numbers(of: program, arguments, count: 1)[0]
    }

    // MARK: the Swift side, in a child process

    static func payload(_ order: Int) -> Data { SeedWorkload.payload(order) }

    static func process(_ order: Int) throws { try SeedWorkload.process(order) }

    static func fill(_ queue: DeadLetterQueue, count: Int) async throws {
        try await SeedWorkload.fill(queue, orders: 0..<count)
    }

    /// `dlq-benchmarks --child-seed add-error|add-strings|add-caught|loop|replay COUNT`: prints the rate of one
    /// workload; `memory|payloads COUNT`: heap and RSS growth per letter.
    static func child(workload: String, count: Int) async throws -> Double {
        let queue = try DeadLetterQueue(store: .memory)
        switch workload {
        case "loop":
            // The caller's side of `add-error` alone: the same payload and thrown error, kept instead of added.
            var kept: [(Data, any Error)] = []
            let elapsed = await Measure.time {
                for order in 0..<count {
                    let payload = Self.payload(order)
                    do {
                        try Self.process(order)
                    } catch {
                        kept.append((payload, error))
                    }
                }
            }
            guard kept.count == count else { throw BenchmarkError("seed loop kept \(kept.count) of \(count)") }
            return Double(count) / Measure.seconds(elapsed)
        case "add-caught":
            // The add alone: each payload made and its error thrown and caught beforehand, as the workload's loop
            // does, then every add timed as the workload writes it (its metadata literal included).
            var caught: [(payload: Data, error: any Error)] = []
            caught.reserveCapacity(count)
            for order in 0..<count {
                do { try Self.process(order) } catch { caught.append((Self.payload(order), error)) }
            }
            let elapsed = try await Measure.time {
                for index in caught.indices {
                    try await queue.add(
                        payload: caught[index].payload,
                        source: "orders",
                        error: caught[index].error,
                        attempts: 3,
                        metadata: ["tenant": "acme"]
                    )
                }
            }
            return Double(count) / Measure.seconds(elapsed)
        case "add-error":
            let elapsed = try await Measure.time { try await Self.fill(queue, count: count) }
            return Double(count) / Measure.seconds(elapsed)
        case "add-strings":
            let elapsed = try await Measure.time {
                for order in 0..<count {
                    try await SeedWorkload.add(
                        queue,
                        message: "processing failed for order \(order)",
                        payload: Self.payload(order)
                    )
                }
            }
            return Double(count) / Measure.seconds(elapsed)
        case "memory":
            // Heap (glibc's count of bytes in use) and RSS growth per letter over `count` adds of the workload,
            // less the payloads' bytes; prints "heap rss" (the caller reads two numbers, not a rate).
            try await Self.fill(queue, count: 100)
            let heap = Measure.heapInUse()
            let rss = Measure.residentBytes()
            var payloadBytes = 0
            for order in 100..<(100 + count) { payloadBytes += Self.payload(order).count }
            try await Self.fill(queue, count: count)
            let heapGrowth = Double(Measure.heapInUse() - heap - payloadBytes) / Double(count)
            let rssGrowth = Double(Measure.residentBytes() - rss - payloadBytes) / Double(count)
            print(heapGrowth, rssGrowth)
            exit(0)
        case "payloads":
            // The payloads of `memory` alone, kept as the store keeps them: heap and RSS growth per payload beside
            // its bytes (the array's own room is taken before the measure starts).
            var kept: [Data] = []
            kept.reserveCapacity(count + 100)
            for order in 0..<100 { kept.append(Self.payload(order)) }
            let heap = Measure.heapInUse()
            let rss = Measure.residentBytes()
            var payloadBytes = 0
            for order in 100..<(100 + count) {
                let payload = Self.payload(order)
                payloadBytes += payload.count
                kept.append(payload)
            }
            let heapGrowth = Double(Measure.heapInUse() - heap - payloadBytes) / Double(count)
            let rssGrowth = Double(Measure.residentBytes() - rss - payloadBytes) / Double(count)
            print(heapGrowth, rssGrowth)
            exit(kept.count == count + 100 ? 0 : 1)
        case "replay-warm":
            // For profiling, not in the table: the same replay after a first one of one letter in this process, so
            // that what a process pays once (type metadata, symbol binding, first-touched pages) is paid before.
            try await Self.fill(queue, count: 1)
            _ = try await queue.replay(options: ReplayOptions(concurrency: 1, maxConsecutiveFailures: nil)) { _ in }
            return try await Self.child(workload: "replay", count: count)
        case "replay":
            try await Self.fill(queue, count: count)
            var result: ReplayReport?
            let elapsed = try await Measure.time {
                result = try await queue.replay(options: ReplayOptions(concurrency: 1, maxConsecutiveFailures: nil)) {
                    _ in
                }
            }
            guard result?.succeeded == count else {
                throw BenchmarkError("seed replay: \(String(describing: result))")
            }
            return Double(count) / Measure.seconds(elapsed)
        default:
            throw BenchmarkError("unknown seed workload \(workload)")
        }
    }
}
