public import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

// Operations and instances in the tables of schema version 5.
extension PostgresDeadLetterStore {
    static let operationLogMigration: [String] = [
        """
        CREATE TABLE $schema.operations (
            id text COLLATE "C" PRIMARY KEY,
            created_at bigint NOT NULL,
            state text COLLATE "C" NOT NULL,
            document text NOT NULL
        )
        """,
        "CREATE INDEX operations_created_at ON $schema.operations (created_at)",
        """
        CREATE TABLE $schema.operation_letters (
            operation_id text COLLATE "C" NOT NULL,
            letter_id text COLLATE "C" NOT NULL,
            outcome text COLLATE "C" NOT NULL,
            at bigint,
            error_type text,
            error_message text,
            PRIMARY KEY (operation_id, letter_id)
        )
        """,
        "CREATE INDEX operation_letters_outcome ON $schema.operation_letters (operation_id, outcome, letter_id)",
        """
        CREATE TABLE $schema.instances (
            id text COLLATE "C" PRIMARY KEY, last_seen_at bigint NOT NULL, document text NOT NULL
        )
        """,
    ]

    public func createOperation(_ operation: DeadLetterOperation, letters: [DeadLetterOperationLetter]) async throws {
        let document = operation.document()
        try await self.perform("create operation") {
            try await self.transaction { connection in
                let inserted = try await self.rows(
                    connection,
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO \(self.schema).operations (id, created_at, state, document)
                            VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING 1
                            """,
                        binds: Self.binds(
                            Self.text(operation.id),
                            operation.createdAt.millisecondsSince1970,
                            operation.state.rawValue,
                            Self.text(document)
                        )
                    )
                )
                guard !inserted.isEmpty else {
                    throw DeadLetterError(
                        code: .duplicateID,
                        message: "an operation with this id is stored",
                        id: operation.id
                    )
                }
                try await self.insertOperationLetters(connection, letters.filter { $0.operation == operation.id })
            }
        }
    }

    public func addOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws {
        guard !letters.isEmpty else { return }
        try await self.perform("add operation letters") {
            try await self.withConnection { connection in try await self.insertOperationLetters(connection, letters) }
        }
    }

    public func updateOperation(_ operation: DeadLetterOperation) async throws -> Bool {
        let document = operation.document()
        return try await self.perform("update operation") {
            !(try await self.rows(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE \(self.schema).operations SET state = $2, document = $3
                        WHERE id = $1 AND state <> 'cancelled' RETURNING 1
                        """,
                    binds: Self.binds(Self.text(operation.id), operation.state.rawValue, Self.text(document))
                )
            ).isEmpty)
        }
    }

    public func recordOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws -> Int {
        guard !letters.isEmpty else { return 0 }
        return try await self.perform("record operation letters") {
            try await self.rows(self.recordQuery(letters)).count
        }
    }

    /// The statement that records letters' outcomes in their operations' sets, each only while `pending`; it
    /// returns a row per letter changed.
    func recordQuery(_ letters: [DeadLetterOperationLetter]) -> PostgresQuery {
        let columns = Self.letterColumns(letters)
        return PostgresQuery(
            unsafeSQL: """
                UPDATE \(self.schema).operation_letters AS l
                SET outcome = t.o, at = NULLIF(t.a, '')::bigint, error_type = NULLIF(t.et, ''),
                    error_message = NULLIF(t.em, '')
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                    AS t(op, id, o, a, et, em)
                WHERE l.operation_id = t.op AND l.letter_id = t.id AND l.outcome = 'pending'
                RETURNING 1
                """,
            binds: Self.binds(
                columns.operations,
                columns.ids,
                columns.outcomes,
                columns.ats,
                columns.errorTypes,
                columns.errorMessages
            )
        )
    }

    public func operation(id: String) async throws -> DeadLetterOperation? {
        guard !id.utf8.contains(0) else { return nil }
        return try await self.perform("operation") {
            try await self.withConnection { connection in
                let rows = try await self.rows(
                    connection,
                    PostgresQuery(
                        unsafeSQL: "SELECT document FROM \(self.schema).operations WHERE id = $1",
                        binds: Self.binds(id)
                    )
                )
                guard let row = rows.first else { return nil }
                return try await self.counted(connection, id: id, document: try row.decode(String.self))
            }
        }
    }

    public func operations(
        states: [DeadLetterOperation.State],
        before cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperation] {
        try await self.perform("operations") {
            try await self.withConnection { connection in
                var binds = PostgresBindings()
                var conditions = ["TRUE"]
                if !states.isEmpty {
                    binds.append(states.map { Self.text($0.rawValue) })
                    conditions.append("state = ANY($\(binds.count)::text[])")
                }
                if let cursor {
                    binds.append(Self.text(cursor))
                    conditions.append("id < $\(binds.count)")
                }
                binds.append(Int64(max(1, limit)))
                let rows = try await self.rows(
                    connection,
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT id, document FROM \(self.schema).operations
                            WHERE \(conditions.joined(separator: " AND ")) ORDER BY id DESC LIMIT $\(binds.count)
                            """,
                        binds: binds
                    )
                )
                var operations: [DeadLetterOperation] = []
                for row in rows {
                    let (id, document) = try row.decode((String, String).self)
                    operations.append(try await self.counted(connection, id: id, document: document))
                }
                return operations
            }
        }
    }

    public func operationLetters(
        id: String,
        outcomes: [DeadLetterOperationLetter.Outcome],
        after cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperationLetter] {
        guard !id.utf8.contains(0) else { return [] }
        return try await self.perform("operation letters") {
            var binds = Self.binds(id)
            var conditions = ["operation_id = $1"]
            if !outcomes.isEmpty {
                binds.append(outcomes.map(\.rawValue))
                conditions.append("outcome = ANY($\(binds.count)::text[])")
            }
            if let cursor {
                binds.append(Self.text(cursor))
                conditions.append("letter_id > $\(binds.count)")
            }
            binds.append(Int64(max(1, limit)))
            let rows = try await self.rows(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT letter_id, outcome, at, error_type, error_message FROM \(self.schema).operation_letters
                        WHERE \(conditions.joined(separator: " AND ")) ORDER BY letter_id LIMIT $\(binds.count)
                        """,
                    binds: binds
                )
            )
            return try rows.map { row in
                let (letter, outcome, at, errorType, errorMessage) = try row.decode(
                    (String, String, Int64?, String?, String?).self
                )
                return DeadLetterOperationLetter(
                    operation: id,
                    letterID: letter,
                    outcome: DeadLetterOperationLetter.Outcome(rawValue: outcome),
                    at: at.map { Date(millisecondsSince1970: $0) },
                    errorType: errorType,
                    errorMessage: errorMessage
                )
            }
        }
    }

    public func pruneOperations(createdBefore date: Date) async throws -> Int {
        try await self.perform("prune operations") {
            try await self.transaction { connection in
                let cutoff = date.millisecondsSince1970
                try await self.rows(
                    connection,
                    PostgresQuery(
                        unsafeSQL: """
                            DELETE FROM \(self.schema).operation_letters WHERE operation_id IN
                                (SELECT id FROM \(self.schema).operations WHERE created_at < $1)
                            """,
                        binds: Self.binds(cutoff)
                    )
                )
                return try await self.rows(
                    connection,
                    PostgresQuery(
                        unsafeSQL: "DELETE FROM \(self.schema).operations WHERE created_at < $1 RETURNING 1",
                        binds: Self.binds(cutoff)
                    )
                ).count
            }
        }
    }

    public func saveInstance(_ instance: DeadLetterInstance) async throws {
        let document = instance.document()
        _ = try await self.perform("save instance") {
            try await self.rows(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(self.schema).instances (id, last_seen_at, document) VALUES ($1, $2, $3)
                        ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, document = excluded.document
                        """,
                    binds: Self.binds(
                        Self.text(instance.id),
                        instance.lastSeenAt.millisecondsSince1970,
                        Self.text(document)
                    )
                )
            )
        }
    }

    public func removeInstance(id: String) async throws {
        guard !id.utf8.contains(0) else { return }
        _ = try await self.perform("remove instance") {
            try await self.rows(
                PostgresQuery(
                    unsafeSQL: "DELETE FROM \(self.schema).instances WHERE id = $1",
                    binds: Self.binds(id)
                )
            )
        }
    }

    public func instances() async throws -> [DeadLetterInstance] {
        try await self.perform("instances") {
            try await self.rows(
                PostgresQuery(unsafeSQL: "SELECT document FROM \(self.schema).instances ORDER BY id")
            ).map { try DeadLetterInstance(document: try $0.decode(String.self)) }
        }
    }

    // MARK: - Helpers

    /// Text PostgreSQL accepts: it refuses NUL, which no stored value holds.
    private static func text(_ value: String) -> String {
        value.utf8.contains(0) ? String(value.unicodeScalars.filter { $0 != "\0" }) : value
    }

    private static func letterColumns(
        _ letters: [DeadLetterOperationLetter]
    ) -> (
        operations: [String], ids: [String], outcomes: [String], ats: [String], errorTypes: [String],
        errorMessages: [String]
    ) {
        (
            letters.map { Self.text($0.operation) },
            letters.map { Self.text($0.letterID) },
            letters.map(\.outcome.rawValue),
            letters.map { $0.at.map { String($0.millisecondsSince1970) } ?? "" },
            letters.map { Self.text($0.errorType ?? "") },
            letters.map { Self.text($0.errorMessage ?? "") }
        )
    }

    private func insertOperationLetters(
        _ connection: PostgresConnection,
        _ letters: [DeadLetterOperationLetter]
    )
        async throws
    {
        guard !letters.isEmpty else { return }
        let columns = Self.letterColumns(letters)
        try await self.rows(
            connection,
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO \(self.schema).operation_letters
                        (operation_id, letter_id, outcome, at, error_type, error_message)
                    SELECT t.op, t.id, t.o, NULLIF(t.a, '')::bigint, NULLIF(t.et, ''), NULLIF(t.em, '')
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                        AS t(op, id, o, a, et, em)
                    WHERE EXISTS (SELECT 1 FROM \(self.schema).operations AS o WHERE o.id = t.op)
                    ON CONFLICT DO NOTHING
                    """,
                binds: Self.binds(
                    columns.operations,
                    columns.ids,
                    columns.outcomes,
                    columns.ats,
                    columns.errorTypes,
                    columns.errorMessages
                )
            )
        )
    }

    private func counted(
        _ connection: PostgresConnection,
        id: String,
        document: String
    ) async throws
        -> DeadLetterOperation
    {
        var counts = DeadLetterOperation.Counts()
        let rows = try await self.rows(
            connection,
            PostgresQuery(
                unsafeSQL: """
                    SELECT outcome, count(*) FROM \(self.schema).operation_letters WHERE operation_id = $1
                    GROUP BY outcome
                    """,
                binds: Self.binds(id)
            )
        )
        for row in rows {
            let (outcome, count) = try row.decode((String, Int64).self)
            counts.add(DeadLetterOperationLetter.Outcome(rawValue: outcome), count: Int(count))
        }
        return try DeadLetterOperation(document: document, counts: counts)
    }
}
