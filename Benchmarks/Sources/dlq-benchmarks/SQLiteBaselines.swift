import DeadLetters
import DeadLettersSQLite
import Foundation

/// Raw SQLite doing the SQL work of a store figure, in the same run: the limit a figure is divided by.
enum SQLiteBaselines {
    /// Letter `index` as ``LetterFactory/add(_:to:payload:)`` has the queue store it: dead, one attempt, failed
    /// now, tenant metadata.
    static func added(_ index: Int, ids: DeadLetterIDGenerator, payload: Data) -> DeadLetter {
        let (type, message) = LetterFactory.failure(index)
        let now = Date()
        return DeadLetter(
            id: ids.next(at: now),
            source: LetterFactory.source(index),
            reason: LetterFactory.reason(index),
            errorType: type,
            errorMessage: message,
            firstFailedAt: now,
            status: .dead,
            metadata: ["tenant": "acme"],
            payload: payload
        )
    }

    /// Letters per second that raw SQLite inserts (with their running totals) into an empty store's tables,
    /// `batch` letters per transaction, as the 64 adders' letters.
    static func addRate(path: String, count: Int, batch: Int, durable: Bool) throws -> Double {
        let payload = LetterFactory.payload(0)
        let ids = DeadLetterIDGenerator()
        var batches: [RawBatch] = []
        var next = 0
        while next < count {
            let end = min(count, next + batch)
            batches.append(RawBatch((next..<end).map { self.added($0, ids: ids, payload: payload) }))
            next = end
        }
        let db = try RawSQLite.emptyStore(path: path, durable: durable)
        defer {
            db.close()
            SQLiteFixtures.remove(path)
        }
        let inserter = try RawInserter(db)
        let upkeep = try RawSearchUpkeep(db)
        let start = Measure.clock.now
        for batch in batches {
            try db.execute("BEGIN IMMEDIATE")
            try inserter.write(batch)
            try upkeep.run()
            try db.execute("COMMIT")
        }
        return Double(count) / Measure.seconds(start.duration(to: Measure.clock.now))
    }

    /// Letters per second that raw SQLite inserts (with their running totals, written once at the end as the
    /// import does) in one durable transaction: the letters of the JSON Lines file at `file`, read and decoded
    /// before the clock runs, 512 at a time.
    static func importRate(file: String, path: String) async throws -> Double {
        let db = try RawSQLite.emptyStore(path: path, durable: true)
        defer {
            db.close()
            SQLiteFixtures.remove(path)
        }
        let inserter = try RawInserter(db)
        let upkeep = try RawSearchUpkeep(db)
        try db.execute("PRAGMA wal_autocheckpoint = 0")
        var elapsed = Duration.zero
        var count = 0
        var all = RawBatch([])
        elapsed += try await Measure.time { try db.execute("BEGIN IMMEDIATE") }
        var chunk: [DeadLetter] = []
        chunk.reserveCapacity(512)
        func flush() async throws {
            var batch = RawBatch(chunk)
            count += chunk.count
            // The totals of the whole import are written once, at the end, as the import does.
            for (key, value) in batch.tallies {
                let old = all.tallies[key] ?? (0, 0, 0)
                all.tallies[key] = (old.count + value.count, old.bytes + value.bytes, old.attempts + value.attempts)
            }
            for (key, value) in batch.minutes { all.minutes[key, default: 0] += value }
            for (key, value) in batch.groups { all.groups[key, default: 0] += value }
            batch.tallies = [:]
            batch.minutes = [:]
            batch.groups = [:]
            elapsed += try await Measure.time { try inserter.write(batch) }
            chunk.removeAll(keepingCapacity: true)
        }
        for try await letter in JSONLinesFile(path: file) {
            chunk.append(letter)
            if chunk.count == 512 { try await flush() }
        }
        if !chunk.isEmpty { try await flush() }
        elapsed += try await Measure.time {
            try inserter.write(all)
            try upkeep.run(force: true)
            try db.execute("COMMIT")
        }
        return Double(count) / Measure.seconds(elapsed)
    }

    /// Letters per second that raw SQLite replays from the store at `path`: what the replay of every letter
    /// but the parked ones needs from SQLite, `batch` letters at a time: the claim (its rows read and leased
    /// in an immediate transaction, without a sync of its own as the store's claims) and the delete of each
    /// succeeded letter (a durable commit), each transaction ending with the search index's upkeep.
    static func replayRate(path: String, batch: Int, durable: Bool) throws -> (rate: Double, count: Int) {
        let db = try RawSQLite(path: path)
        defer { db.close() }
        try db.configure(durable: durable)
        var ids: [String] = []
        let select = try db.prepare("SELECT id FROM dlq_letters WHERE status != 'parked' ORDER BY id")
        while select.nextRow() { ids.append(select.text(0)) }
        let marks = Array(repeating: "?", count: batch).joined(separator: ", ")
        let claim = try db.prepare(
            """
            SELECT id, source, reason, error_type, error_message, attempts, first_failed_at, last_failed_at, \
            next_attempt_at, expires_at, status, fingerprint, replay_count, content_type, causes, metadata, \
            history, payload, abandoned_claims, seq, lease_owner IS NOT NULL FROM dlq_letters \
            WHERE id IN (\(marks)) AND (lease_expires_at IS NULL OR lease_expires_at <= ? OR lease_owner = ?) \
            ORDER BY id
            """
        )
        let lease = try db.prepare("UPDATE dlq_letters SET lease_owner = ?, lease_expires_at = ? WHERE id = ?")
        let delete = try db.prepare("DELETE FROM dlq_letters WHERE id = ? AND lease_owner = ?")
        let upkeep = try RawSearchUpkeep(db)
        let owner = "raw-baseline"
        let start = Measure.clock.now
        let now = Date().millisecondsSince1970
        for first in stride(from: 0, to: ids.count, by: batch) {
            let page = ids[first..<min(ids.count, first + batch)]
            if durable { try db.execute("PRAGMA synchronous = NORMAL") }
            try db.execute("BEGIN IMMEDIATE")
            for (offset, id) in page.enumerated() { claim.bind(id, Int32(offset + 1)) }
            for offset in page.count..<batch { claim.bind(nil as String?, Int32(offset + 1)) }
            claim.bind(now, Int32(batch + 1))
            claim.bind(owner, Int32(batch + 2))
            let rows = try claim.readRows(columns: 21)
            guard rows == page.count else { throw BenchmarkError("raw replay claimed \(rows) of \(page.count)") }
            for id in page {
                lease.bind(owner, 1)
                lease.bind(now + 300_000, 2)
                lease.bind(id, 3)
                try lease.run()
            }
            try upkeep.run()
            try db.execute("COMMIT")
            if durable { try db.execute("PRAGMA synchronous = FULL") }
            try db.execute("BEGIN IMMEDIATE")
            for id in page {
                delete.bind(id, 1)
                delete.bind(owner, 2)
                try delete.run()
            }
            try upkeep.run()
            try db.execute("COMMIT")
        }
        return (Double(ids.count) / Measure.seconds(start.duration(to: Measure.clock.now)), ids.count)
    }

    /// `figure` as a share of `limit`, for the table: "33,148/s = 45% of raw SQLite's 73,501/s".
    static func ratio(_ figure: Double, _ limit: Double, of what: String) -> String {
        "\(Format.rate(figure)) = \(Self.percent(figure / limit)) of \(what)'s \(Format.rate(limit))"
    }

    static func percent(_ share: Double) -> String { "\(Int((share * 100).rounded()))%" }
}
