import DeadLetters
import PostgresNIO

extension PostgresDeadLetterStore {
    /// Schema version 6, search and sorting:
    /// - `pg_trgm` is created when the server has it and the role may (`CREATE EXTENSION IF NOT EXISTS`; since
    ///   PostgreSQL 13 a database owner may create it). Without it, searches read every letter (the same
    ///   answers, slower): ``searchIsIndexed()`` says which.
    /// - `payload_text(bytea)`: the payload as text when it is UTF-8 without NUL, else `NULL` (a sealed payload
    ///   starts with NUL, so it is never searched); `meta_values(jsonb)`: the metadata values, one per line;
    ///   `search_text(message, metadata, payload)`: the message, the metadata values and the payload text, one
    ///   per line, the expression the trigram index (`letters_search`, GIN `gin_trgm_ops`) is built on.
    ///   PostgreSQL keeps the index in step with every write, whatever statement makes it.
    /// - `letters_metadata`: a GIN `jsonb_path_ops` index on `metadata`, the index of its (key, value) pairs
    ///   that `metadata @> '{"key": "value"}'` reads.
    /// - Indexes for the sorts: `(last_failed_at, id)` and `(first_failed_at, id)` (replacing the one-column
    ///   ones), `(attempts, id)`; `(source, id)` exists since version 1.
    /// Existing letters are indexed as the indexes are built.
    static let searchMigration: [String] = [
        createTrigramExtension,
        """
        CREATE FUNCTION $schema.payload_text(bytea) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $body$
        BEGIN
            RETURN convert_from($1, 'UTF8');
        EXCEPTION WHEN others THEN
            RETURN NULL;
        END
        $body$
        """,
        """
        CREATE FUNCTION $schema.meta_values(jsonb) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $body$
            SELECT coalesce(string_agg(value, chr(10)), '') FROM jsonb_each_text($1)
        $body$
        """,
        """
        CREATE FUNCTION $schema.search_text(text, jsonb, bytea) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $body$
            SELECT $1 || chr(10) || coalesce($schema.meta_values($2), '') || chr(10)
                || coalesce($schema.payload_text($3), '')
        $body$
        """,
        createTrigramIndex,
        "CREATE INDEX letters_metadata ON $schema.letters USING gin (metadata jsonb_path_ops)",
        "DROP INDEX IF EXISTS $schema.letters_last_failed_at",
        "CREATE INDEX letters_last_failed_at ON $schema.letters (last_failed_at, id)",
        "DROP INDEX IF EXISTS $schema.letters_first_failed_at",
        "CREATE INDEX letters_first_failed_at ON $schema.letters (first_failed_at, id)",
        "CREATE INDEX letters_attempts ON $schema.letters (attempts, id)",
    ]

    /// Creates `pg_trgm` when the server has it and the role may; a notice otherwise.
    static let createTrigramExtension = """
        DO $$ BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN others THEN
            RAISE NOTICE 'pg_trgm is not available (%): searches will read every letter', SQLERRM;
        END $$
        """

    /// Builds the trigram index when `pg_trgm` is there and the index is not.
    ///
    /// Its pending list (where GIN gathers new entries until they are merged into the index, and which every
    /// search reads whole) is kept to 1 MB instead of the server's default 4 MB. Measured at 1,000,000 letters
    /// on a loaded 2-core machine, first page of a payload substring held by 204 letters (827 candidates):
    /// 33-42 ms with a 3 MB pending list, 21-24 ms once merged.
    static let createTrigramIndex = """
        DO $$ DECLARE
            trgm name;
        BEGIN
            SELECT n.nspname INTO trgm FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
            WHERE e.extname = 'pg_trgm';
            IF trgm IS NOT NULL THEN
                EXECUTE 'CREATE INDEX IF NOT EXISTS letters_search ON $schema.letters USING gin '
                    || '($schema.search_text(error_message, metadata, payload) ' || quote_ident(trgm) || '.gin_trgm_ops) '
                    || 'WITH (gin_pending_list_limit = 1024)';
            END IF;
        END $$
        """

    /// Builds the trigram index of a schema migrated while `pg_trgm` was not available, if it is now
    /// (`migrate()` calls it, so `dlq migrate` after installing the extension makes searches indexed).
    func indexSearchIfPossible() async throws {
        guard try await !self.searchIsIndexed() else { return }
        try await self.transaction { connection in
            try await self.execute(connection, Self.createTrigramExtension)
            try await self.execute(connection, Self.createTrigramIndex.replacing("$schema", with: self.schema))
        }
    }

    /// Whether searches are served by a trigram index (`pg_trgm` was available when the schema was migrated);
    /// without it they read every letter.
    public func searchIsIndexed() async throws -> Bool {
        try await self.perform("searchIsIndexed") {
            let rows = try await self.rows(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'letters_search'
                        """,
                    binds: Self.binds(self.configuration.schema)
                )
            )
            return try rows.first?.decode(Int64.self) ?? 0 > 0
        }
    }
}
