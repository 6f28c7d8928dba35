import DeadLetters
import DeadLettersPostgres
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Raw postgres-nio beside the PostgreSQL store's durable `add`: a multi-row `INSERT … SELECT * FROM
/// unnest(…)` of the same rows into a table the store's own migration made (the same columns and indexes), in
/// batches of the size the store committed, as many at once as the store commits at once, from this process.
enum PostgresBaseline {
    /// A client for `url` (`postgres://user:password@host:port/database`), without TLS as the test servers.
    static func client(url: String) throws -> PostgresClient {
        guard let parts = URLComponents(string: url), let host = parts.host else {
            throw BenchmarkError("cannot read DLQ_POSTGRES_URL")
        }
        let database = String(parts.path.drop { $0 == "/" })
        let configuration = PostgresClient.Configuration(
            host: host,
            port: parts.port ?? 5432,
            username: parts.user ?? "postgres",
            password: parts.password,
            database: database.isEmpty ? nil : database,
            tls: .disable
        )
        return PostgresClient(configuration: configuration)
    }

    /// The server's transaction counter: write transactions between two reads, plus one for the read.
    static func transactionID(_ client: PostgresClient) async throws -> Int64 {
        for try await value in try await client.query("SELECT txid_current()").decode(Int64.self) { return value }
        throw BenchmarkError("no txid_current()")
    }

    /// Letters per second that raw postgres-nio inserts: `count` letters like the 64 adders', `batch` a
    /// statement, `concurrency` statements at once, into `schema.letters` (made by the store's migration).
    static func addRate(
        client: PostgresClient,
        schema: String,
        count: Int,
        batch: Int,
        concurrency: Int
    ) async throws -> Double {
        let payload = LetterFactory.payload(0)
        let ids = DeadLetterIDGenerator()
        var batches: [[DeadLetter]] = []
        var next = 0
        while next < count {
            let end = min(count, next + batch)
            batches.append((next..<end).map { SQLiteBaselines.added($0, ids: ids, payload: payload) })
            next = end
        }
        // The letters are made before the clock starts, as the store's adders are given theirs; each statement's
        // binds are encoded while it runs, as the store encodes each commit's.
        let work = Work(batches)
        let start = Measure.clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    try await client.withConnection { connection in
                        // The schema's trigger refuses inserts from writers that do not declare that they keep
                        // the running totals (the store declares it per transaction); declared per connection.
                        let logger = Logger(label: "raw-baseline", factory: { _ in SwiftLogNoOpLogHandler() })
                        _ = try await connection.query(
                            "SELECT set_config('dead_letters.inserts_count_totals', 'on', false)",
                            logger: logger
                        )
                        while let letters = work.next() {
                            let query = Self.insert(letters, into: schema)
                            for try await _ in try await connection.query(query, logger: logger) {}
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(count) / Measure.seconds(start.duration(to: Measure.clock.now))
    }

    /// The batches, handed out one at a time to the tasks that insert them.
    final class Work: Sendable {
        let batches: [[DeadLetter]]
        let cursor = Mutex(0)

        init(_ batches: [[DeadLetter]]) { self.batches = batches }

        func next() -> [DeadLetter]? {
            self.cursor.withLock { cursor in
                guard cursor < self.batches.count else { return nil }
                defer { cursor += 1 }
                return self.batches[cursor]
            }
        }
    }

    /// The store's column arrays for `letters` and its insert, with what the store writes beside the letters
    /// in the same statement: its usage counters (one of 16 slots, by transaction) and its running totals (a
    /// row per distinct source, reason, error type and status, and per 10-minute bucket of first failures).
    /// The ratio then measures the store's code, not its schema. Left out: the totals' compaction, which the
    /// store runs about once per 4,096 letters inserted.
    static func insert(_ letters: [DeadLetter], into schema: String) -> PostgresQuery {
        var binds = PostgresBindings(capacity: 28)
        binds.append(letters.map(\.id))
        binds.append(letters.map(\.source))
        binds.append(letters.map(\.reason.rawValue))
        binds.append(letters.map(\.errorType))
        binds.append(letters.map(\.errorMessage))
        binds.append(letters.map { _ in "[]" })
        binds.append(letters.map { Int64($0.attempts) })
        binds.append(letters.map { $0.firstFailedAt.millisecondsSince1970 })
        binds.append(letters.map { $0.lastFailedAt.millisecondsSince1970 })
        binds.append(letters.map { $0.nextAttemptAt?.millisecondsSince1970 ?? Int64.min })
        binds.append(letters.map { $0.expiresAt?.millisecondsSince1970 ?? Int64.min })
        binds.append(letters.map(\.status.rawValue))
        binds.append(letters.map(\.fingerprint))
        binds.append(letters.map { Int64($0.replayCount) })
        binds.append(letters.map { RawBatch.json($0.metadata) })
        binds.append(letters.map { $0.contentType ?? "" })
        binds.append(letters.map { $0.contentType != nil })
        binds.append(letters.map { ByteBuffer(bytes: $0.payload) })
        binds.append(letters.map { $0.storedHistoryJSON ?? "[]" })
        binds.append(letters.map { Int64($0.storageSize) })
        var tallies: [[String]: (count: Int64, attempts: Int64)] = [:]
        var buckets: [Int64: Int64] = [:]
        for letter in letters {
            let key = [letter.source, letter.reason.rawValue, letter.errorType, letter.status.rawValue]
            let old = tallies[key] ?? (0, 0)
            tallies[key] = (old.count + 1, old.attempts + Int64(letter.attempts))
            let milliseconds = letter.firstFailedAt.millisecondsSince1970
            let bucket = milliseconds >= 0 ? milliseconds / 600_000 : (milliseconds + 1) / 600_000 - 1
            buckets[bucket, default: 0] += 1
        }
        for column in 0..<4 { binds.append(tallies.keys.map { $0[column] }) }
        binds.append(tallies.values.map(\.count))
        binds.append(tallies.values.map(\.attempts))
        binds.append(Array(buckets.keys))
        binds.append(Array(buckets.values))
        return PostgresQuery(
            unsafeSQL: """
                WITH inserted AS (
                INSERT INTO \(schema).letters (id, source, reason, error_type, error_message, causes, attempts,
                    first_failed_at, last_failed_at, next_attempt_at, expires_at, status, fingerprint, replay_count,
                    metadata, content_type, payload, history, size)
                SELECT u.id, u.source, u.reason, u.error_type, u.error_message, u.causes::jsonb, u.attempts,
                    u.first_failed_at, u.last_failed_at, NULLIF(u.next_attempt_at, \(Int64.min)),
                    NULLIF(u.expires_at, \(Int64.min)), u.status, u.fingerprint, u.replay_count, u.metadata::jsonb,
                    CASE WHEN u.has_content_type THEN u.content_type END, u.payload, u.history::jsonb, u.size
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[],
                    $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::text[], $13::text[], $14::int8[],
                    $15::text[], $16::text[], $17::bool[], $18::bytea[], $19::text[], $20::int8[])
                    AS u(id, source, reason, error_type, error_message, causes, attempts, first_failed_at,
                        last_failed_at, next_attempt_at, expires_at, status, fingerprint, replay_count, metadata,
                        content_type, has_content_type, payload, history, size)
                ), counted AS (
                    UPDATE \(schema).usage SET count = count + cardinality($1::text[]),
                        bytes = bytes + (SELECT coalesce(sum(s), 0) FROM unnest($20::int8[]) AS s)
                    WHERE slot = txid_current() % 16
                ), tallied AS (
                    INSERT INTO \(schema).tallies (source, reason, error_type, status, count, attempts)
                    SELECT * FROM unnest($21::text[], $22::text[], $23::text[], $24::text[], $25::int8[], $26::int8[])
                )
                INSERT INTO \(schema).first_failures (bucket, count) SELECT * FROM unnest($27::int8[], $28::int8[])
                """,
            binds: binds
        )
    }
}
