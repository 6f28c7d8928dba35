import DeadLettersSQLite
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a run measures and where it keeps its files.
struct Settings: Sendable {
    static let groups = ["memory", "sqlite", "export", "postgres", "search"]

    var quick = false
    var only: Set<String> = Set(Settings.groups)
    /// This run's scratch folder (removed at the end).
    var scratch = ""
    /// Where the big SQLite store is kept between runs.
    var cacheFolder = "/tmp/dlq-bench-cache"
    /// The size of the "1,000,000-letter" stores (100,000 with `--quick`).
    var bigCount: Int { self.quick ? 100_000 : 1_000_000 }
    /// This disk's fsyncs per second, measured at the start of the run in the scratch folder.
    var fsyncRate = 0.0
    /// The 1-, 5- and 15-minute load averages at the start and at the end (other work on the machine).
    var loadBefore = ""
    var loadAfter = ""
}

/// `dlq-benchmarks [--only memory,sqlite,export,postgres] [--quick]`: measures every figure of DESIGN.md's
/// "Figures to reach" and prints the results as Markdown on stdout (progress on stderr).
@main
struct DLQBenchmarks {
    static func main() async {
        var settings = Settings()
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            switch argument {
            case "--quick": settings.quick = true
            case "--only":
                guard let list = arguments.next() else { self.usage("--only needs a list") }
                let groups = Set(list.split(separator: ",").map(String.init))
                guard groups.isSubset(of: Settings.groups) else { self.usage("unknown group in \(list)") }
                settings.only = groups
            case "--cache":
                guard let folder = arguments.next() else { self.usage("--cache needs a folder") }
                settings.cacheFolder = folder
            case "--child-memory-per-letter":
                let count = arguments.next().flatMap { Int($0) } ?? 1_000_000
                await self.runAlone { try await MemoryBenchmarks.measureMemoryPerLetter(count: count) }
            case "--child-seed":
                // One configuration of the comparison with the Python seed: --child-seed WORKLOAD COUNT
                let workload = arguments.next() ?? ""
                let count = arguments.next().flatMap { Int($0) } ?? 10_000
                await self.runAlone { print(try await SeedComparison.child(workload: workload, count: count)) }
            case "--profile-sqlite-add":
                // For profiling one figure alone: --profile-sqlite-add ADDERS LETTERS-PER-ADDER durable|fast
                let adders = arguments.next().flatMap { Int($0) } ?? 64
                let perAdder = arguments.next().flatMap { Int($0) } ?? 500
                let durability: SQLiteDeadLetterStore.Durability = arguments.next() == "fast" ? .fast : .durable
                await self.runAlone {
                    let rate = try await SQLiteBenchmarks.addRate(
                        path: "/tmp/dlq-bench-profile.sqlite",
                        adders: adders,
                        perAdder: perAdder,
                        durability: durability
                    )
                    print(Format.rate(rate))
                }
            case "--profile-postgres-add":
                // For profiling one figure alone: --profile-postgres-add [LETTERS-PER-ADDER] (64 adders)
                let perAdder = arguments.next().flatMap { Int($0) } ?? 1500
                guard let url = ProcessInfo.processInfo.environment["DLQ_POSTGRES_URL"] else {
                    self.usage("--profile-postgres-add needs DLQ_POSTGRES_URL")
                }
                await self.runAlone {
                    let schema = "bench_profile_" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
                    let rate = try await PostgresBenchmarks.addRate(url: url, schema: schema, perAdder: perAdder)
                    print(Format.rate(rate))
                }
            case "--profile-sqlite-replay":
                // For profiling one figure alone: --profile-sqlite-replay [LETTERS] [CONCURRENCY] [durable|fast]
                let count = arguments.next().flatMap { Int($0) } ?? 10_000
                let concurrency = arguments.next().flatMap { Int($0) } ?? 8
                let durability: SQLiteDeadLetterStore.Durability = arguments.next() == "fast" ? .fast : .durable
                await self.runAlone {
                    let rate = try await SQLiteBenchmarks.replayRate(
                        path: "/tmp/dlq-bench-profile-replay.sqlite",
                        count: count,
                        concurrency: concurrency,
                        durability: durability
                    )
                    print(Format.rate(rate))
                }
            case "--profile-memory-replay":
                // For profiling one figure alone: --profile-memory-replay [LETTERS] [CONCURRENCY]
                let count = arguments.next().flatMap { Int($0) } ?? 100_000
                let concurrency = arguments.next().flatMap { Int($0) } ?? 8
                await self.runAlone {
                    print(Format.rate(try await MemoryBenchmarks.replayRate(count: count, concurrency: concurrency)))
                }
            case "--profile-postgres-replay":
                // For profiling one figure alone: --profile-postgres-replay (4 instances, 10,000 letters)
                guard ProcessInfo.processInfo.environment["DLQ_POSTGRES_URL"] != nil else {
                    self.usage("--profile-postgres-replay needs DLQ_POSTGRES_URL")
                }
                settings.quick = true
                let quick = settings
                await self.runAlone {
                    try await PostgresBenchmarks.run(quick, report: Report(), only: ["replay"])
                }
            case "--profile-export":
                // For profiling one figure alone: --profile-export [all|tenth] (the cached 1,000,000-letter store)
                let tenth = arguments.next() == "tenth"
                let cache = settings.cacheFolder
                await self.runAlone {
                    let rate = try await ExportImportBenchmarks.exportRate(tenth: tenth, cacheFolder: cache)
                    print(Format.rate(rate))
                }
            case "-h", "--help": self.usage(nil)
            default: self.usage("unknown argument \(argument)")
            }
        }
        do {
            try await self.run(&settings)
        } catch {
            log("dlq-benchmarks: \(String(reflecting: error))")
            exit(2)
        }
    }

    /// Runs one mode that stands alone (a child process's configuration, a figure for a profiler), then exits:
    /// 0, or 2 with the error on standard error.
    static func runAlone(_ body: @Sendable () async throws -> Void) async -> Never {
        do {
            try await body()
            exit(0)
        } catch {
            log("dlq-benchmarks: \(error)")
            exit(2)
        }
    }

    static func usage(_ problem: String?) -> Never {
        if let problem { log("dlq-benchmarks: \(problem)") }
        log(
            """
            usage: dlq-benchmarks [--only \(Settings.groups.joined(separator: ","))] [--quick] [--cache FOLDER]
              --quick   smaller runs (100,000-letter stores instead of 1,000,000); for checking, not for the README
              --cache   where the big SQLite store is kept between runs (default /tmp/dlq-bench-cache)
            PostgreSQL figures need DLQ_POSTGRES_URL (scripts/postgres start prints one).
            One figure alone, for a profiler (perf record -g):
              --profile-sqlite-add [ADDERS] [LETTERS-PER-ADDER] [durable|fast]
              --profile-sqlite-replay [LETTERS] [CONCURRENCY] [durable|fast]
              --profile-memory-replay [LETTERS] [CONCURRENCY]
              --profile-postgres-add [LETTERS-PER-ADDER]     (64 adders; needs DLQ_POSTGRES_URL)
              --profile-postgres-replay     (4 instances, 10,000 letters; needs DLQ_POSTGRES_URL)
              --profile-export [all|tenth]     (the cached 1,000,000-letter store, to a scratch file)
              --child-seed add-error|add-strings|add-caught|loop|replay|memory|payloads COUNT   (one configuration of the Python comparison)
            """
        )
        exit(problem == nil ? 0 : 64)
    }

    static func run(_ settings: inout Settings) async throws {
        var template = Array("/tmp/dlq-bench-XXXXXX".utf8CString)
        guard let folder = mkdtemp(&template) else { throw BenchmarkError("cannot make a scratch folder") }
        settings.scratch = String(cString: folder)
        defer { try? FileManager.default.removeItem(atPath: settings.scratch) }
        try FileManager.default.createDirectory(atPath: settings.cacheFolder, withIntermediateDirectories: true)

        log("measuring the fsync rate in \(settings.scratch)")
        settings.fsyncRate = try Measure.fsyncRate(folder: settings.scratch, seconds: 2)
        let report = Report()
        settings.loadBefore = self.loadAverage()
        let start = Measure.clock.now
        if settings.only.contains("memory") { try await MemoryBenchmarks.run(settings, report: report) }
        if settings.only.contains("sqlite") { try await SQLiteBenchmarks.run(settings, report: report) }
        if settings.only.contains("export") { try await ExportImportBenchmarks.run(settings, report: report) }
        if settings.only.contains("postgres") { try await PostgresBenchmarks.run(settings, report: report) }
        if settings.only.contains("search") { try await SearchBenchmarks.run(settings, report: report) }
        let total = Measure.seconds(start.duration(to: Measure.clock.now))
        settings.loadAfter = self.loadAverage()
        print(self.header(settings, seconds: total))
        print(report.markdown())
    }

    static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func header(_ settings: Settings, seconds: Double) -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "" }
            ?? "unknown"
        let memory = ProcessInfo.processInfo.physicalMemory
        let formatter = ISO8601DateFormatter()
        var arguments = CommandLine.arguments.dropFirst().joined(separator: " ")
        if !arguments.isEmpty { arguments = " " + arguments }
        return """
            # swift-dead-letters benchmarks

            - date: \(formatter.string(from: Date()))
            - command: `swift run -c release --package-path Benchmarks dlq-benchmarks\(arguments)`
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores (nproc), \(model), \
            \(Format.bytes(Int(memory))) RAM
            - disk: \(Format.rate(settings.fsyncRate)) fsyncs (4 KiB appended + fsync, in a loop for 2 s, \
            in the folder of the stores)
            - load average (1, 5, 15 min) at the start: \(settings.loadBefore); at the end: \(settings.loadAfter)
            - run time: \(Int(seconds.rounded())) s\(settings.quick ? " (--quick: 100,000-letter stores)" : "")

            """
    }
}
