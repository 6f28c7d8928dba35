import CMallocCount
import DeadLetters
import DeadLettersSQLite
import Foundation
import SeedWorkload

#if canImport(Glibc)
import Glibc
#endif

/// `dlq-alloc-check [--thresholds FILE] [--update FILE]`: counts the allocations (malloc and its relatives,
/// from every thread) of the hot paths and fails when one grows beyond its threshold in FILE.
///
/// Wall-clock figures cannot gate CI on a shared machine; allocation counts can: they are the same from run to
/// run, whatever else the machine does. Measured:
/// - `memory.add.error`: one `DeadLetterQueue.add(payload:source:error:attempts:metadata:)` of a thrown
///   error, memory store;
/// - `memory.add.strings`: one `add` with the error as type and message strings, memory store;
/// - `memory.replay.letter`: one letter of `replay`, no-op handler, concurrency 1, memory store;
/// - `sqlite.page.filtered`: one filtered page of 100 letters (source + status) from a 5,000-letter SQLite store.
///
/// The threshold file has one `name maximum` per line (`#` starts a comment). `--update FILE` writes the
/// measured figures with 15% headroom (at least 2) as the new thresholds. Exits 1 when a figure is over its
/// threshold or missing from the file, 2 when the check cannot run.
@main
struct AllocationCheck {
    static func main() async {
        var thresholdsPath: String?
        var updatePath: String?
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            switch argument {
            case "--thresholds": thresholdsPath = arguments.next()
            case "--update": updatePath = arguments.next()
            default:
                print("usage: dlq-alloc-check [--thresholds FILE] [--update FILE]")
                exit(argument == "-h" || argument == "--help" ? 0 : 2)
            }
        }
        guard Self.countingWorks() else {
            print("dlq-alloc-check: allocations are not counted in this process (not glibc?)")
            exit(2)
        }
        let figures: [(String, Double)]
        do {
            figures = try await Self.measure()
        } catch {
            print("dlq-alloc-check: \(error)")
            exit(2)
        }
        var failed = false
        let thresholds = thresholdsPath.map(Self.readThresholds) ?? [:]
        for (name, value) in figures {
            let shown = String(format: "%.2f", value)
            guard let path = thresholdsPath else {
                print("\(name): \(shown) allocations")
                continue
            }
            guard let limit = thresholds[name] else {
                print("FAIL \(name): \(shown) allocations, and no threshold in \(path)")
                failed = true
                continue
            }
            if value > limit {
                print("FAIL \(name): \(shown) allocations, over its threshold of \(limit) in \(path)")
                failed = true
            } else {
                print("ok   \(name): \(shown) allocations (threshold \(limit))")
            }
        }
        if let updatePath {
            var text = """
                # Allocations per operation that dlq-alloc-check allows (scripts/alloc-check). Written by
                # `scripts/alloc-check --update`: the measured figure plus 15% (at least 2). Lower a figure when the
                # code allocates less; raise one only with the reason in the commit.

                """
            for (name, value) in figures {
                text += "\(name) \(Int((max(value * 1.15, value + 2)).rounded(.up)))\n"
            }
            do {
                try text.write(toFile: updatePath, atomically: true, encoding: .utf8)
                print("wrote \(updatePath)")
            } catch {
                print("dlq-alloc-check: cannot write \(updatePath): \(error)")
                exit(2)
            }
        }
        exit(failed ? 1 : 0)
    }

    /// Whether an allocation made by Swift code is counted (the executable's wrappers are the ones in use).
    static func countingWorks() -> Bool {
        cmalloccount_start()
        let array = [Int](repeating: 7, count: Int(getpid() % 7) + 100)
        let counted = cmalloccount_stop()
        return counted > 0 && array.count > 99
    }

    static func readThresholds(_ path: String) -> [String: Double] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            print("dlq-alloc-check: cannot read \(path)")
            exit(2)
        }
        var thresholds: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let fields = content.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2, let value = Double(fields[1]) { thresholds[String(fields[0])] = value }
        }
        return thresholds
    }

    /// Allocations per operation of each figure, counted over many operations after a warm-up.
    static func measure() async throws -> [(String, Double)] {
        var figures: [(String, Double)] = []
        let count = 5000
        let payload = Data(#"{"orderId":"ord-1","total":"308.97","currency":"EUR"}"#.utf8)

        // add, a thrown error
        do {
            let queue = try DeadLetterQueue(store: .memory)
            try await SeedWorkload.fill(queue, orders: 0..<500, payload: payload)
            cmalloccount_start()
            try await SeedWorkload.fill(queue, orders: 500..<(500 + count), payload: payload)
            figures.append(("memory.add.error", Double(cmalloccount_stop()) / Double(count)))
        }
        // add, type and message strings (made before counting)
        do {
            let queue = try DeadLetterQueue(store: .memory)
            let messages = (0..<(500 + count)).map { "processing failed for order \($0)" }
            for index in 0..<500 { try await SeedWorkload.add(queue, message: messages[index], payload: payload) }
            cmalloccount_start()
            for index in 500..<(500 + count) {
                try await SeedWorkload.add(queue, message: messages[index], payload: payload)
            }
            figures.append(("memory.add.strings", Double(cmalloccount_stop()) / Double(count)))
        }
        // replay, per letter
        do {
            let warm = try DeadLetterQueue(store: .memory)
            try await SeedWorkload.fill(warm, orders: 0..<500, payload: payload)
            _ = try await Self.replayAll(warm)
            let queue = try DeadLetterQueue(store: .memory)
            try await SeedWorkload.fill(queue, orders: 0..<count, payload: payload)
            cmalloccount_start()
            let replayed = try await Self.replayAll(queue)
            let allocations = cmalloccount_stop()
            guard replayed == count else { throw CheckError("replayed \(replayed) of \(count) letters") }
            figures.append(("memory.replay.letter", Double(allocations) / Double(count)))
        }
        // SQLite, a filtered page of 100
        do {
            let path = NSTemporaryDirectory() + "/dlq-alloc-check-\(getpid()).sqlite"
            defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
            let store = try SQLiteDeadLetterStore(path: path, durability: .fast)
            defer { try? store.close() }
            let sources = ["orders", "payments", "emails", "webhooks", "inventory"]
            let now = Date()
            let ids = DeadLetterIDGenerator()
            var letters: [DeadLetter] = []
            for index in 0..<5000 {
                letters.append(
                    DeadLetter(
                        id: ids.next(at: now),
                        source: sources[index % 5],
                        reason: .processing,
                        errorType: "OrderError",
                        errorMessage: "processing failed for order \(index)",
                        firstFailedAt: now,
                        status: index % 7 == 0 ? .parked : .dead,
                        metadata: ["tenant": "acme"],
                        payload: payload
                    )
                )
            }
            try await store.append(letters)
            let filter = DeadLetterFilter(sources: ["orders"], statuses: [.dead])
            for _ in 0..<20 { _ = try await store.page(filter, after: nil, limit: 100) }
            let pages = 200
            var got = 0
            cmalloccount_start()
            for _ in 0..<pages { got += try await store.page(filter, after: nil, limit: 100).letters.count }
            let allocations = cmalloccount_stop()
            guard got == 100 * pages else { throw CheckError("pages held \(got) letters") }
            figures.append(("sqlite.page.filtered", Double(allocations) / Double(pages)))
        }
        return figures
    }

    static func replayAll(_ queue: DeadLetterQueue) async throws -> Int {
        let report = try await queue.replay(options: ReplayOptions(concurrency: 1, maxConsecutiveFailures: nil)) {
            _ in
        }
        return report.succeeded
    }

    struct CheckError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
