import DeadLetters
import GRDB

/// What a full check of a SQLite store file found: `dlq check`.
///
/// SQLite notices damage only in the pages an operation reads, so a damaged file can go on answering and
/// taking letters for a long time. ``run(path:)`` reads all of it, read-only:
/// - SQLite's `PRAGMA integrity_check` (every page, every index against its table);
/// - the schema version;
/// - the running totals (`dlq_tallies`, `dlq_first_failures`, `dlq_groups`, which counts, stats and limits
///   read) against the letters themselves;
/// - every letter's row, decoded as the store decodes it (a status or a JSON column no version writes).
public struct SQLiteStoreCheck: Sendable {
    /// The store file checked.
    public var path: String
    /// The schema version the file records (`PRAGMA user_version`), if it could be read.
    public var schemaVersion: Int?
    /// How many letters the file holds (rows of `dlq_letters`), if it could be counted.
    public var letters: Int?
    /// What is wrong, one sentence each; empty for a sound store.
    public var problems: [String]
    /// What is worth knowing but not wrong (an older schema that the next write migrates).
    public var notes: [String]

    /// Whether nothing is wrong.
    public var isSound: Bool { self.problems.isEmpty }

    /// The most problems of one kind listed; the rest are counted.
    static let listed = 10

    /// Checks the store file at `path` without writing to it (opened read-only, with SQLite's `immutable`
    /// parameter when this process cannot write the file or its folder). Reads the whole file.
    /// - Throws: ``DeadLetters/DeadLetterError`` when the file cannot be checked at all: it is missing, it is
    ///   not a store, or its header is damaged (`notAStore`); it was written by a newer version
    ///   (`incompatibleStore`).
    public static func run(path: String) throws -> SQLiteStoreCheck {
        guard try SQLiteStoreFile.inspect(path: path) == .store else {
            throw DeadLetterError(code: .storeUnavailable, message: "no store file exists", file: path)
        }
        var check = SQLiteStoreCheck(path: path, schemaVersion: nil, letters: nil, problems: [], notes: [])
        var configuration = Configuration()
        configuration.label = "dead-letters.check"
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA query_only = 1") }
        let opening = try SQLiteStoreFile.readOnlyOpening(path: path)
        configuration.readonly = opening != .queryOnly
        let location = opening == .immutable ? SQLiteStoreFile.immutableURI(path) : path
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: location, configuration: configuration)
        } catch {
            check.problems.append("the file cannot be opened: \(Self.describe(error))")
            return check
        }
        defer { try? queue.close() }
        let version: Int
        do {
            version = try queue.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 }
        } catch {
            check.problems.append("the schema version cannot be read: \(Self.describe(error))")
            return check
        }
        check.schemaVersion = version
        if version < SQLiteSchema.version {
            check.notes.append(
                "schema version \(version), older than \(SQLiteSchema.version): dlq migrate (or any command "
                    + "that writes) upgrades it"
            )
        }
        do {
            try queue.read { db in
                check.problems += try Self.integrity(db)
                guard version >= 1 else { return }
                check.letters = try Int.fetchOne(db, sql: "SELECT count(*) FROM dlq_letters")
                check.problems += try Self.totals(db)
                check.problems += try Self.rows(db)
            }
        } catch {
            check.problems.append("reading the file failed: \(Self.describe(error))")
        }
        return check
    }

    /// SQLite's integrity check, one problem per line it reports.
    private static func integrity(_ db: Database) throws -> [String] {
        do {
            let rows = try String.fetchAll(db, sql: "PRAGMA integrity_check(\(Self.listed))")
            if rows == ["ok"] { return [] }
            // A row may hold several lines, under a "*** in database main ***" heading.
            let lines = rows.flatMap { $0.split(whereSeparator: \.isNewline) }.map(String.init)
                .filter { !$0.isEmpty && !$0.hasPrefix("*** in database") }
            return (lines.isEmpty ? rows : lines).map { "SQLite's integrity check: \($0)" }
        } catch {
            return ["SQLite's integrity check failed: \(Self.describe(error))"]
        }
    }

    /// One running total compared with the letters: the query over the letters and the one over the totals
    /// give the same columns, the key first.
    private struct Totals {
        var name: String
        var key: [String]
        var values: [String]
        var fromLetters: String
        var fromTotals: String
    }

    /// The minute of `first_failed_at`, rounded down, as the schema's triggers compute it.
    private static let minute =
        "(CASE WHEN first_failed_at >= 0 THEN first_failed_at / 60000 ELSE (first_failed_at - 59999) / 60000 END)"

    private static let allTotals: [Totals] = [
        Totals(
            name: "letters, bytes and attempts by source, reason, error type and status (dlq_tallies)",
            key: ["source", "reason", "error type", "status"],
            values: ["letters", "bytes", "attempts"],
            fromLetters: """
                SELECT source, reason, error_type, status, count(*), sum(size), sum(attempts) FROM dlq_letters
                GROUP BY source, reason, error_type, status
                """,
            fromTotals: """
                SELECT source, reason, error_type, status, count, bytes, attempts FROM dlq_tallies
                WHERE count <> 0 OR bytes <> 0 OR attempts <> 0
                """
        ),
        Totals(
            name: "letters by minute of first failure (dlq_first_failures)",
            key: ["minute"],
            values: ["letters"],
            fromLetters: "SELECT \(minute), count(*) FROM dlq_letters GROUP BY 1",
            fromTotals: "SELECT minute, count FROM dlq_first_failures WHERE count <> 0"
        ),
        Totals(
            name: "letters by fingerprint and source (dlq_groups)",
            key: ["fingerprint", "source"],
            values: ["letters"],
            fromLetters: "SELECT fingerprint, source, count(*) FROM dlq_letters GROUP BY fingerprint, source",
            fromTotals: "SELECT fingerprint, source, count FROM dlq_groups WHERE count <> 0"
        ),
    ]

    /// The running totals that disagree with the letters, with the first such key's figures.
    private static func totals(_ db: Database) throws -> [String] {
        var problems: [String] = []
        for totals in Self.allTotals {
            let keys = totals.key.count
            let keyColumns = (1...keys).map { "k\($0)" }
            let named = (keyColumns + (1...totals.values.count).map { "v\($0)" }).joined(separator: ", ")
            let differing = """
                WITH l(\(named)) AS (\(totals.fromLetters)), t(\(named)) AS (\(totals.fromTotals)),
                only_l AS (SELECT * FROM l EXCEPT SELECT * FROM t), only_t AS (SELECT * FROM t EXCEPT SELECT * FROM l),
                differing AS (SELECT * FROM only_l UNION SELECT * FROM only_t)
                """
            let keyList = keyColumns.joined(separator: ", ")
            let count =
                try Int.fetchOne(
                    db,
                    sql: "\(differing) SELECT count(*) FROM (SELECT DISTINCT \(keyList) FROM differing)"
                )
                ?? 0
            guard count > 0,
                let example = try Row.fetchOne(
                    db,
                    sql: "\(differing) SELECT \(keyList) FROM differing ORDER BY \(keyList) LIMIT 1"
                )
            else { continue }
            let key = (0..<keys).map { example[$0] as DatabaseValue }
            let matching = keyColumns.map { "\($0) IS ?" }.joined(separator: " AND ")
            func figures(_ from: String) throws -> String {
                let row = try Row.fetchOne(
                    db,
                    sql: "WITH x(\(named)) AS (\(from)) SELECT * FROM x WHERE \(matching)",
                    arguments: StatementArguments(key)
                )
                guard let row else { return "nothing" }
                return totals.values.enumerated().map { "\(row[keys + $0.offset] as Int? ?? 0) \($0.element)" }
                    .joined(separator: ", ")
            }
            let place = zip(totals.key, key).map { "\($0) \(Self.show($1))" }.joined(separator: ", ")
            problems.append(
                "the running totals of \(totals.name) disagree with the letters for \(count) "
                    + (count == 1 ? "key" : "keys") + "; for \(place) they count \(try figures(totals.fromTotals)) "
                    + "but the letters make \(try figures(totals.fromLetters))"
            )
        }
        return problems
    }

    /// A key's value as people read it: text quoted, numbers as they are.
    private static func show(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .null: "NULL"
        case .int64(let number): "\(number)"
        case .double(let number): "\(number)"
        case .string(let text): "'\(text)'"
        case .blob(let bytes): "'\(String(decoding: bytes, as: UTF8.self))'"
        }
    }

    /// Every letter's row decoded as the store decodes it; a problem per row that cannot be.
    private static func rows(_ db: Database) throws -> [String] {
        var problems: [String] = []
        var failed = 0
        let rows = try Row.fetchCursor(db, sql: "SELECT \(SQLiteRows.columns) FROM dlq_letters ORDER BY seq")
        while let row = try rows.next() {
            do {
                _ = try SQLiteRows.decode(row)
            } catch {
                failed += 1
                if failed <= Self.listed {
                    let id: String = (try? row.decode(String.self, atIndex: 0)) ?? "?"
                    let reason = (error as? DeadLetterError)?.message ?? Self.describe(error)
                    problems.append("letter \(id) cannot be read: \(reason)")
                }
            }
        }
        if failed > Self.listed { problems.append("… and \(failed - Self.listed) more letters that cannot be read") }
        return problems
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return "SQLite: \(error.message ?? "\(error.resultCode)")" }
        return "\(error)"
    }
}
