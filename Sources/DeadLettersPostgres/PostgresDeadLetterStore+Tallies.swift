import DeadLetters
import PostgresNIO

/// Running totals for `summary()` of the whole store, kept in the same transaction as every change: by the
/// insert's own statement for new letters (``LetterTotals``, since schema version 3), by triggers for updates
/// and deletes.
///
/// `tallies` holds counts and attempt sums per (source, reason, error type, status) and `first_failures` counts
/// per 10-minute bucket of `first_failed_at`. Both are insert-only: a statement-level trigger (with transition
/// tables) adds one row per distinct key and statement, whatever the number of letters, so concurrent writers
/// never update the same row and never wait for each other, even behind a long import. Readers add the rows up.
/// An update that changes no counted column (a claim's lease) writes nothing. Now and then (one statement in
/// ``PostgresDeadLetterStore/compactionOdds``) the trigger also merges the rows no other transaction is merging
/// (`FOR UPDATE SKIP LOCKED`, so it never waits) into one row per key, in the writer's transaction: the rows it
/// removes stay visible to others until the merged rows replace them at its commit, so sums stay exact.
extension PostgresDeadLetterStore {
    /// One trigger call in this many also compacts the totals.
    static let compactionOdds = 32

    /// The width of a `first_failures` bucket, in milliseconds.
    static let firstFailureBucket: Int64 = 600_000

    /// The bucket of a time in milliseconds (floor division).
    static func bucket(ofMilliseconds milliseconds: Int64) -> Int64 {
        milliseconds >= 0
            ? milliseconds / Self.firstFailureBucket : (milliseconds + 1) / Self.firstFailureBucket - 1
    }

    /// The bucket of `first_failed_at` in SQL, as ``bucket(ofMilliseconds:)`` computes it.
    private static let bucketSQL = """
        CASE WHEN first_failed_at >= 0 THEN first_failed_at / \(firstFailureBucket) \
        ELSE (first_failed_at + 1) / \(firstFailureBucket) - 1 END
        """

    /// The rows a trigger counts: +1 for each new row, -1 for each old one.
    private static func deltas(_ table: String, _ sign: String) -> String {
        "SELECT source, reason, error_type, status, \(sign)1 AS n, \(sign)attempts AS a, \(bucketSQL) AS bucket "
            + "FROM \(table)"
    }

    /// The sum of a `bigint` expression as a `bigint`, stopping at its bounds instead of failing the
    /// statement: a store written before attempts were bounded may hold counts near `Int64.max`, and a failed
    /// compaction would fail the writer's transaction it runs in.
    static func clampedSum(_ expression: String) -> String {
        "least(greatest(sum(\(expression)), -9223372036854775808), 9223372036854775807)::int8"
    }

    /// Merges the rows of the totals that no other transaction is merging into one row per key, without
    /// waiting for anyone; `$schema` stands for the schema.
    static let compactionSQL = """
        WITH merged AS (
            DELETE FROM $schema.tallies WHERE ctid IN (SELECT ctid FROM $schema.tallies FOR UPDATE SKIP LOCKED)
            RETURNING source, reason, error_type, status, count, attempts
        )
        INSERT INTO $schema.tallies (source, reason, error_type, status, count, attempts)
        SELECT source, reason, error_type, status, \(clampedSum("count")), \(clampedSum("attempts")) FROM merged
        GROUP BY source, reason, error_type, status HAVING sum(count) <> 0 OR sum(attempts) <> 0;
        WITH merged AS (
            DELETE FROM $schema.first_failures
            WHERE ctid IN (SELECT ctid FROM $schema.first_failures FOR UPDATE SKIP LOCKED)
            RETURNING bucket, count
        )
        INSERT INTO $schema.first_failures (bucket, count)
        SELECT bucket, sum(count) FROM merged GROUP BY bucket HAVING sum(count) <> 0;
        """

    /// What an instance of an older version, still running after the migration to version 3, is told when it
    /// adds letters.
    static let olderWriterMessage =
        "this dead-letter schema is at version 3 or later, where writers count the letters they insert; "
        + "this instance runs an older swift-dead-letters: upgrade it"

    /// The transaction-local setting by which a writer says that it counts the letters it inserts (schema
    /// version 3 and later refuse inserts without it): set by `add_letters` itself, and by
    /// ``declareCountingWriter(_:)`` in the transactions of careful appends and imports.
    static let countingWriterSetting = "dead_letters.inserts_count_totals"

    /// Declares, for the rest of the transaction on `connection`, that its inserts count themselves.
    func declareCountingWriter(_ connection: PostgresConnection) async throws {
        try await self.execute(connection, "SELECT set_config('\(Self.countingWriterSetting)', 'on', true)")
    }

    /// Compacts the totals now, in one transaction (the triggers also do it now and then).
    func compactTotals() async throws {
        try await self.perform("compact") {
            try await self.transaction { connection in
                for statement in Self.compactionSQL.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try await self.execute(connection, String(statement).replacing("$schema", with: self.schema))
                }
            }
        }
    }

    /// A trigger function that adds `deltas` to the totals, and now and then compacts them.
    private static func tallyFunction(_ name: String, deltas: String) -> String {
        """
        CREATE FUNCTION $schema.\(name)() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            INSERT INTO $schema.tallies (source, reason, error_type, status, count, attempts)
            SELECT d.source, d.reason, d.error_type, d.status, sum(d.n), \(clampedSum("d.a"))
            FROM (\(deltas)) AS d
            GROUP BY d.source, d.reason, d.error_type, d.status
            HAVING sum(d.n) <> 0 OR sum(d.a) <> 0;
            INSERT INTO $schema.first_failures (bucket, count)
            SELECT d.bucket, sum(d.n) FROM (\(deltas)) AS d GROUP BY d.bucket HAVING sum(d.n) <> 0;
            IF random() * \(compactionOdds) < 1 THEN
        \(compactionSQL)
            END IF;
            RETURN NULL;
        END
        $body$
        """
    }

    /// Version 2: the running totals and their triggers, filled from the stored letters; `add_letters` (the
    /// group commit's insert, planned once per connection); an index on
    /// `first_failed_at` (oldest letter, partial age buckets); `(fingerprint, source, id)` instead of
    /// `(fingerprint, id)`, so that a page of one group in one source is an index range; no index on `reason`
    /// or `error_type`.
    static let talliesMigration: [String] = [
        """
        CREATE TABLE $schema.tallies (
            source text COLLATE "C" NOT NULL,
            reason text COLLATE "C" NOT NULL,
            error_type text COLLATE "C" NOT NULL,
            status text COLLATE "C" NOT NULL,
            count bigint NOT NULL,
            attempts bigint NOT NULL
        )
        """,
        "CREATE TABLE $schema.first_failures (bucket bigint NOT NULL, count bigint NOT NULL)",
        tallyFunction("count_inserted", deltas: deltas("new_rows", "")),
        tallyFunction("count_deleted", deltas: deltas("old_rows", "-")),
        tallyFunction(
            "count_updated",
            deltas: deltas("new_rows", "") + " UNION ALL " + deltas("old_rows", "-")
        ),
        // Creating the triggers locks the table against writes until the migration commits, so the totals
        // below count exactly the letters the triggers will not see.
        """
        CREATE TRIGGER letters_count_inserted AFTER INSERT ON $schema.letters REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION $schema.count_inserted()
        """,
        """
        CREATE TRIGGER letters_count_deleted AFTER DELETE ON $schema.letters REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION $schema.count_deleted()
        """,
        """
        CREATE TRIGGER letters_count_updated AFTER UPDATE ON $schema.letters
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION $schema.count_updated()
        """,
        """
        INSERT INTO $schema.tallies (source, reason, error_type, status, count, attempts)
        SELECT source, reason, error_type, status, count(*), \(clampedSum("attempts")) FROM $schema.letters
        GROUP BY source, reason, error_type, status
        """,
        """
        INSERT INTO $schema.first_failures (bucket, count)
        SELECT \(bucketSQL), count(*) FROM $schema.letters GROUP BY 1
        """,
        LetterColumns.addLettersFunctionVersion2,
        "CREATE INDEX letters_first_failed_at ON $schema.letters (first_failed_at)",
        "CREATE INDEX letters_fingerprint_source ON $schema.letters (fingerprint, source, id)",
        "DROP INDEX IF EXISTS $schema.letters_fingerprint",
        // As in the SQLite store: a reason or error type filter is served by walking the ids (or the source
        // index) with a filter; two fewer indexes make every insert cheaper.
        "DROP INDEX IF EXISTS $schema.letters_reason",
        "DROP INDEX IF EXISTS $schema.letters_error_type",
    ]

    /// The stored functions that add to or compact the totals, created anew with ``clampedSum(_:)`` (schema
    /// version 4): stores migrated before it summed attempts into `bigint` without a bound.
    static let clampedTotalsFunctions: [String] = [
        tallyFunction("count_deleted", deltas: deltas("old_rows", "-")),
        tallyFunction("count_updated", deltas: deltas("new_rows", "") + " UNION ALL " + deltas("old_rows", "-")),
        LetterTotals.addTotalsFunction,
        LetterColumns.addLettersFunction,
    ].map { $0.replacing("CREATE FUNCTION", with: "CREATE OR REPLACE FUNCTION") }

    /// Version 3: inserts count themselves. The insert trigger copied every new row into a transition table
    /// and scanned it twice; the group commit now sends what its letters add to the totals (``LetterTotals``)
    /// with the letters, and `add_totals` does the same for the other inserts (careful appends, imports).
    static let insertTotalsMigration: [String] = [
        // An instance of an older version still running (it checked the schema when it opened) would insert
        // letters without counting them: its inserts are refused, with a message that says to upgrade it. A
        // statement-level check, without the transition table that made the old trigger costly.
        """
        CREATE FUNCTION $schema.refuse_uncounted_inserts() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            IF current_setting('\(countingWriterSetting)', true) IS DISTINCT FROM 'on' THEN
                RAISE EXCEPTION '\(olderWriterMessage)' USING ERRCODE = '55000';
            END IF;
            RETURN NULL;
        END
        $body$
        """,
        """
        CREATE TRIGGER letters_refuse_uncounted_inserts BEFORE INSERT ON $schema.letters
        FOR EACH STATEMENT EXECUTE FUNCTION $schema.refuse_uncounted_inserts()
        """,
        "DROP TRIGGER letters_count_inserted ON $schema.letters",
        "DROP FUNCTION $schema.count_inserted()",
        // Version 2's group-commit function, which an older instance still calls: it now says to upgrade.
        """
        CREATE OR REPLACE FUNCTION $schema.add_letters(text[], text[], text[], text[], text[], text[], int8[], int8[],
            int8[], int8[], int8[], text[], text[], int8[], text[], text[], bool[], bytea[], text[], int8[])
        RETURNS int8 LANGUAGE plpgsql AS $body$
        BEGIN
            RAISE EXCEPTION '\(olderWriterMessage)' USING ERRCODE = '55000';
        END
        $body$
        """,
        LetterTotals.addTotalsFunction,
        LetterColumns.addLettersFunction,
    ]
}
