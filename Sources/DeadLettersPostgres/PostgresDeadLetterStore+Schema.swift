import DeadLetters
import Logging
import PostgresNIO
import Synchronization

extension PostgresDeadLetterStore {
    /// The newest schema version this code writes and reads.
    public static let schemaVersion = 6

    /// The migrations, in order: version N's statements turn version N-1 into N. `$schema` is replaced by the
    /// quoted, validated schema name. Never change a released migration; add one.
    static let migrations: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE $schema.letters (
                    id text COLLATE "C" PRIMARY KEY,
                    source text COLLATE "C" NOT NULL,
                    reason text COLLATE "C" NOT NULL,
                    error_type text COLLATE "C" NOT NULL,
                    error_message text COLLATE "C" NOT NULL,
                    causes jsonb NOT NULL,
                    attempts bigint NOT NULL,
                    first_failed_at bigint NOT NULL,
                    last_failed_at bigint NOT NULL,
                    next_attempt_at bigint,
                    expires_at bigint,
                    status text COLLATE "C" NOT NULL,
                    fingerprint text COLLATE "C" NOT NULL,
                    replay_count bigint NOT NULL,
                    metadata jsonb NOT NULL,
                    content_type text,
                    payload bytea NOT NULL,
                    history jsonb NOT NULL,
                    size bigint NOT NULL,
                    lease_owner text,
                    lease_until bigint
                )
                """,
                "CREATE INDEX letters_due ON $schema.letters (next_attempt_at, id) WHERE status = 'retrying'",
                "CREATE INDEX letters_source ON $schema.letters (source, id)",
                "CREATE INDEX letters_reason ON $schema.letters (reason, id)",
                "CREATE INDEX letters_error_type ON $schema.letters (error_type, id)",
                "CREATE INDEX letters_fingerprint ON $schema.letters (fingerprint, id)",
                "CREATE INDEX letters_status ON $schema.letters (status, id)",
                "CREATE INDEX letters_last_failed_at ON $schema.letters (last_failed_at)",
                "CREATE INDEX letters_expires_at ON $schema.letters (expires_at) WHERE expires_at IS NOT NULL",
                """
                CREATE TABLE $schema.usage (
                    slot bigint PRIMARY KEY, count bigint NOT NULL, bytes bigint NOT NULL
                )
                """,
                "INSERT INTO $schema.usage SELECT slot, 0, 0 FROM generate_series(0, \(usageSlots - 1)) AS slot",
            ]
        ),
        (2, talliesMigration),
        (3, insertTotalsMigration),
        // The letter's lifecycle: claims that ended without an outcome are counted. Histories keep stored
        // format version 2's entries in the same column (version-1 histories read as they are). The totals'
        // functions sum attempts without failing on counts written before attempts were bounded.
        (
            4,
            ["ALTER TABLE $schema.letters ADD COLUMN abandoned_claims bigint NOT NULL DEFAULT 0"]
                + clampedTotalsFunctions
        ),
        // Recovery as operations: each operation (a JSON document beside its creation time and stored state),
        // its frozen set with one row per letter and outcome, and the instances that run a queue.
        (5, operationLogMigration),
        // Search (a trigram index when pg_trgm is there), metadata pairs and the sort indexes.
        (6, searchMigration),
    ]

    /// Creates or upgrades the store's schema to ``schemaVersion``, in one transaction.
    ///
    /// Several instances may call it at once: an advisory lock makes them take turns, and the later ones find
    /// the work done. Nothing is half-migrated: a failure rolls every statement back.
    /// - Throws: ``DeadLetters/DeadLetterError/Code/incompatibleStore`` when the schema was written by a newer
    ///   version of this package; ``DeadLetters/DeadLetterError/Code/storeUnavailable`` when the server cannot be
    ///   reached or refuses the login.
    /// - Returns: the schema version before the migration: 0 for a new store, ``schemaVersion`` when it was
    ///   already current.
    @discardableResult
    public func migrate() async throws -> Int {
        do {
            try await self.probe()
            let previous = try await self.applyMigrations()
            self.opened.store(true, ordering: .releasing)
            try await self.indexSearchIfPossible()
            return previous
        } catch {
            throw self.storeError(error, "migrate")
        }
    }

    /// Opens the store on first use: checks that the server answers and the schema is current (migrating it
    /// when ``Configuration/migrate`` is set).
    func open() async throws {
        if self.opened.load(ordering: .acquiring) { return }
        try await self.gate.run(
            {
                try await self.probe()
                if self.configuration.migrate {
                    _ = try await self.applyMigrations()
                } else {
                    try await self.checkVersion()
                }
                self.opened.store(true, ordering: .releasing)
            },
            isOpen: { self.opened.load(ordering: .acquiring) }
        )
    }

    /// Connects once outside the pool, so that an unreachable server or a refused login is reported at once
    /// with its cause instead of after the pool's retries.
    func probe() async throws {
        guard let endpoint = self.endpoint else { return }
        let connection = try await PostgresConnection.connect(
            configuration: endpoint.connectionConfiguration(self.configuration),
            id: 0,
            logger: self.logger
        )
        try? await connection.close()
    }

    private func applyMigrations() async throws -> Int {
        let lockKey = Self.advisoryLockKey(self.configuration.schema)
        return try await self.transaction { connection in
            try await self.rows(connection, "SELECT pg_advisory_xact_lock(\(lockKey))")
            try await self.execute(connection, "CREATE SCHEMA IF NOT EXISTS \(self.schema)")
            try await self.execute(
                connection,
                "CREATE TABLE IF NOT EXISTS \(self.schema).schema_version (id int PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)"
            )
            let rows = try await self.rows(
                connection,
                PostgresQuery(unsafeSQL: "SELECT version FROM \(self.schema).schema_version WHERE id = 1")
            )
            let current = try rows.first.map { try $0.decode(Int64.self) } ?? 0
            try self.checkNotNewer(current)
            for migration in Self.migrations where migration.version > current {
                for statement in migration.statements {
                    try await self.execute(connection, statement.replacing("$schema", with: self.schema))
                }
                self.logger.info(
                    "migrated the dead-letter schema",
                    metadata: [
                        "dlq.postgres.schema": "\(self.configuration.schema)",
                        "dlq.postgres.version": "\(migration.version)",
                    ]
                )
            }
            try await self.rows(
                connection,
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(self.schema).schema_version (id, version) VALUES (1, $1)
                        ON CONFLICT (id) DO UPDATE SET version = excluded.version
                        """,
                    binds: Self.binds(Int64(Self.schemaVersion))
                )
            )
            return Int(current)
        }
    }

    private func checkVersion() async throws {
        let rows: [PostgresRow]
        do {
            rows = try await self.rows(
                PostgresQuery(unsafeSQL: "SELECT version FROM \(self.schema).schema_version WHERE id = 1")
            )
        } catch let error as PSQLError where ["42P01", "3F000"].contains(Self.sqlState(error) ?? "") {
            throw DeadLetterError(
                code: .notAStore,
                message: "\(self.place) has no dead-letter tables in schema '\(self.configuration.schema)'; "
                    + "run `dlq migrate` or open the store with configuration.migrate = true"
            )
        }
        let current = try rows.first.map { try $0.decode(Int64.self) } ?? 0
        try self.checkNotNewer(current)
        if current < Self.schemaVersion {
            throw DeadLetterError(
                code: .incompatibleStore,
                message: "schema '\(self.configuration.schema)' in \(self.place) is at version \(current), "
                    + "this version of swift-dead-letters needs \(Self.schemaVersion); run `dlq migrate`"
            )
        }
    }

    private func checkNotNewer(_ version: Int64) throws {
        if version > Self.schemaVersion {
            throw DeadLetterError(
                code: .incompatibleStore,
                message: "schema '\(self.configuration.schema)' in \(self.place) is at version \(version), "
                    + "written by a newer version of swift-dead-letters (this one knows up to \(Self.schemaVersion)); "
                    + "upgrade the package"
            )
        }
    }

    /// A stable 64-bit key for `pg_advisory_xact_lock`, from the schema name (FNV-1a).
    static func advisoryLockKey(_ schema: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "swift-dead-letters:\(schema)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    /// Bindings of plain values.
    static func binds(_ values: any PostgresDynamicTypeEncodable...) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values { binds.append(value) }
        return binds
    }
}
