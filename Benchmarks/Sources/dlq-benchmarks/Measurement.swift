import CMallocInfo
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Timing and memory probes shared by every group of figures.
enum Measure {
    static let clock = ContinuousClock()

    /// Seconds in a duration.
    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// How long `work` takes.
    static func time(_ work: () async throws -> Void) async rethrows -> Duration {
        let start = self.clock.now
        try await work()
        return start.duration(to: self.clock.now)
    }

    /// The median duration of `runs` runs of `work`, after `warmup` runs that are not counted.
    static func median(runs: Int, warmup: Int = 1, _ work: () async throws -> Void) async rethrows -> Duration {
        for _ in 0..<warmup { try await work() }
        var durations: [Duration] = []
        for _ in 0..<max(1, runs) { durations.append(try await self.time(work)) }
        return self.median(durations)
    }

    static func median(_ durations: [Duration]) -> Duration {
        let sorted = durations.sorted()
        return sorted[sorted.count / 2]
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }

    /// The resident set size of this process, in bytes (from /proc/self/statm).
    static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return 0 }
        let fields = buffer[0..<count].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    /// The numbers a program prints (whitespace between them), run to its end; with no `program`, this one
    /// again (a child of the suite: `--child-…` arguments).
    /// - Throws: when it fails or prints other than `count` numbers, with what it printed.
    static func numbers(
        of program: String = CommandLine.arguments[0],
        _ arguments: [String],
        environment: [String: String]? = nil,
        count: Int
    ) throws -> [Double] {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: program)
        child.arguments = arguments
        if let environment { child.environment = environment }
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let fields = text.split(whereSeparator: \.isWhitespace)
        let numbers = fields.compactMap { Double($0) }
        guard child.terminationStatus == 0, fields.count == count, numbers.count == count else {
            let command = ([program] + arguments).joined(separator: " ")
            throw BenchmarkError("\(command) failed: \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return numbers
    }

    /// Bytes of the malloc heap in use (glibc's `mallinfo2`), after trimming free memory.
    static func heapInUse() -> Int {
        Int(cmallocinfo_heap_in_use())
    }

    /// `fsync`s per second on a file in `folder`: 4 KiB written at the end of the file, then `fsync`, in a loop
    /// for about `seconds` seconds.
    static func fsyncRate(folder: String, seconds: Double) throws -> Double {
        let path = folder + "/fsync-probe"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BenchmarkError("cannot create \(path): errno \(errno)") }
        defer {
            close(fd)
            unlink(path)
        }
        let block = [UInt8](repeating: 0x5A, count: 4096)
        var count = 0
        let start = self.clock.now
        let limit = Duration.milliseconds(Int(seconds * 1000))
        var elapsed = Duration.zero
        while elapsed < limit {
            let written = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == 4096, fsync(fd) == 0 else { throw BenchmarkError("write/fsync failed: errno \(errno)") }
            count += 1
            elapsed = start.duration(to: self.clock.now)
        }
        return Double(count) / self.seconds(elapsed)
    }
}

/// Samples the resident set size on a thread of its own (the cooperative pool may be saturated) and keeps the
/// highest value seen.
final class PeakResidentSampler: Sendable {
    private let state = Mutex((running: true, peak: 0))
    private let done = Mutex(false)

    init(interval: Duration = .milliseconds(5)) {
        let micros = useconds_t(Measure.seconds(interval) * 1e6)
        let thread = Thread { [self] in
            while true {
                let rss = Measure.residentBytes()
                let running = self.state.withLock { state in
                    state.peak = max(state.peak, rss)
                    return state.running
                }
                if !running { break }
                usleep(micros)
            }
            self.done.withLock { $0 = true }
        }
        thread.start()
    }

    /// Stops sampling and returns the peak.
    func stop() -> Int {
        let rss = Measure.residentBytes()
        self.state.withLock { state in
            state.running = false
            state.peak = max(state.peak, rss)
        }
        while !self.done.withLock({ $0 }) { usleep(1000) }
        return self.state.withLock { $0.peak }
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Number formatting for the table.
enum Format {
    /// `1234567.8` → `1,234,568`.
    static func integer(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        let digits = String(Int(value.rounded()))
        var out = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0, index % 3 == 0, character != "-" { out.append(",") }
            out.append(character)
        }
        return String(out.reversed())
    }

    static func rate(_ value: Double) -> String { "\(self.integer(value))/s" }

    static func milliseconds(_ duration: Duration) -> String {
        let ms = Measure.seconds(duration) * 1000
        return ms < 10 ? String(format: "%.2f ms", ms) : String(format: "%.1f ms", ms)
    }

    static func bytes(_ value: Int) -> String {
        let magnitude = abs(Double(value))
        if magnitude >= Double(1 << 30) { return String(format: "%.2f GiB", Double(value) / Double(1 << 30)) }
        if magnitude >= Double(1 << 20) { return String(format: "%.1f MiB", Double(value) / Double(1 << 20)) }
        if magnitude >= Double(1 << 10) { return String(format: "%.1f KiB", Double(value) / Double(1 << 10)) }
        return "\(value) B"
    }
}
