import DeadLetters
import DeadLettersSQLite
import Foundation

/// Store files for the SQLite figures: fresh ones in the run's scratch folder, and the 1,000,000-letter store
/// built once and cached in /tmp between runs.
enum SQLiteFixtures {
    /// A key that changes when the store's schema or the generated letters change: a hash of the schema's
    /// source file (found beside this package) and ``LetterFactory/version``.
    static func cacheKey() -> String {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let schema = root.appendingPathComponent("Sources/DeadLettersSQLite/SQLiteSchema.swift")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        if let data = try? Data(contentsOf: schema) {
            for byte in data {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
        }
        return "s\(String(hash, radix: 16))-l\(LetterFactory.version)"
    }

    /// A store of `count` letters from ``LetterFactory``, in the cache folder; built (fast durability, appends
    /// of 5,000 letters) when missing or unreadable.
    static func cachedStore(count: Int, cacheFolder: String, report: Report?) async throws -> String {
        let path = "\(cacheFolder)/dlq-bench-\(count)-\(self.cacheKey()).sqlite"
        if FileManager.default.fileExists(atPath: path) {
            do {
                let store = try SQLiteDeadLetterStore(path: path, durability: .fast)
                let usage = try await store.usage()
                try store.close()
                if usage.count == count {
                    log("  using the cached store \(path)")
                    return path
                }
            } catch {
                log("  the cached store \(path) does not open (\(error)); rebuilding")
            }
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        log("  building a \(count)-letter store at \(path)")
        let elapsed = try await Measure.time {
            try await self.build(path: path, count: count)
        }
        report?.add(
            Figure(
                "build the \(Format.integer(Double(count)))-letter store (fast durability, appends of 5,000, "
                    + "letters made on the fly)",
                measured: "\(Format.rate(Double(count) / Measure.seconds(elapsed))) "
                    + "(\(String(format: "%.1f", Measure.seconds(elapsed))) s)"
            )
        )
        return path
    }

    /// Builds a store of `count` letters at `path`.
    static func build(path: String, count: Int, durability: SQLiteDeadLetterStore.Durability = .fast) async throws {
        let store = try SQLiteDeadLetterStore(path: path, durability: durability)
        let factory = LetterFactory()
        var next = 0
        while next < count {
            let end = min(count, next + 5000)
            try await store.append(factory.letters(next..<end, of: count))
            next = end
        }
        try store.close()
    }

    /// Removes a store file and its WAL.
    static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// The size of a file and its WAL.
    static func fileSize(_ path: String) -> Int {
        ["", "-wal"].reduce(0) { total, suffix in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + suffix)
            return total + ((attributes?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }
}
