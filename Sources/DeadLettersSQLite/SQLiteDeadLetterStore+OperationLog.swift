public import DeadLetters
import GRDB

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

// Operations and instances in the tables of schema version 4 (see `SQLiteSchema`).
extension SQLiteDeadLetterStore {
    public func createOperation(_ operation: DeadLetterOperation, letters: [DeadLetterOperationLetter]) async throws {
        let document = operation.document()
        try await self.write { db in
            let exists = try Bool.fetchOne(
                db,
                sql: "SELECT 1 FROM dlq_operations WHERE id = ?",
                arguments: [operation.id]
            )
            if exists == true {
                throw DeadLetterError(
                    code: .duplicateID,
                    message: "an operation with this id is stored",
                    id: operation.id
                )
            }
            try db.execute(
                sql: "INSERT INTO dlq_operations (id, created_at, state, document) VALUES (?, ?, ?, ?)",
                arguments: [
                    operation.id, operation.createdAt.millisecondsSince1970, operation.state.rawValue, document,
                ]
            )
            try Self.insertOperationLetters(db, letters.filter { $0.operation == operation.id })
        }
    }

    public func addOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws {
        guard !letters.isEmpty else { return }
        try await self.write { db in try Self.insertOperationLetters(db, letters) }
    }

    public func updateOperation(_ operation: DeadLetterOperation) async throws -> Bool {
        let document = operation.document()
        return try await self.write { db in
            try db.execute(
                sql: "UPDATE dlq_operations SET state = ?, document = ? WHERE id = ? AND state <> 'cancelled'",
                arguments: [operation.state.rawValue, document, operation.id]
            )
            return db.changesCount > 0
        }
    }

    public func recordOperationLetters(_ letters: [DeadLetterOperationLetter]) async throws -> Int {
        guard !letters.isEmpty else { return 0 }
        return try await self.write { db in
            var changed = 0
            for letter in letters { changed += try Self.recordOperationLetter(letter, db) }
            return changed
        }
    }

    /// Records one letter's outcome in its operation's set if it is still pending.
    /// - Returns: 1 if it changed, else 0.
    static func recordOperationLetter(_ letter: DeadLetterOperationLetter, _ db: Database) throws -> Int {
        try db.cachedStatement(
            sql: """
                UPDATE dlq_operation_letters SET outcome = ?, at = ?, error_type = ?, error_message = ?
                WHERE operation_id = ? AND letter_id = ? AND outcome = 'pending'
                """
        ).execute(arguments: [
            letter.outcome.rawValue, letter.at?.millisecondsSince1970, letter.errorType,
            letter.errorMessage, letter.operation, letter.letterID,
        ])
        return db.changesCount
    }

    public func operation(id: String) async throws -> DeadLetterOperation? {
        try await self.read { db in
            guard
                let document = try String.fetchOne(
                    db,
                    sql: "SELECT document FROM dlq_operations WHERE id = ?",
                    arguments: [id]
                )
            else { return nil }
            return try Self.operation(db, id: id, document: document)
        }
    }

    public func operations(
        states: [DeadLetterOperation.State],
        before cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperation] {
        var conditions = ["1"]
        var arguments: StatementArguments = []
        if !states.isEmpty {
            conditions.append("state IN (\(Array(repeating: "?", count: states.count).joined(separator: ",")))")
            arguments += StatementArguments(states.map(\.rawValue))
        }
        if let cursor {
            conditions.append("id < ?")
            arguments += [cursor]
        }
        arguments += [Swift.max(1, limit)]
        let sql =
            "SELECT id, document FROM dlq_operations WHERE \(conditions.joined(separator: " AND ")) ORDER BY id DESC LIMIT ?"
        return try await self.read { [arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                try Self.operation(db, id: row[0], document: row[1])
            }
        }
    }

    public func operationLetters(
        id: String,
        outcomes: [DeadLetterOperationLetter.Outcome],
        after cursor: String?,
        limit: Int
    ) async throws -> [DeadLetterOperationLetter] {
        var sql =
            "SELECT letter_id, outcome, at, error_type, error_message FROM dlq_operation_letters WHERE operation_id = ?"
        var arguments: StatementArguments = [id]
        if !outcomes.isEmpty {
            sql += " AND outcome IN (\(Array(repeating: "?", count: outcomes.count).joined(separator: ",")))"
            arguments += StatementArguments(outcomes.map(\.rawValue))
        }
        if let cursor {
            sql += " AND letter_id > ?"
            arguments += [cursor]
        }
        sql += " ORDER BY letter_id LIMIT ?"
        arguments += [Swift.max(1, limit)]
        return try await self.read { [sql, arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                DeadLetterOperationLetter(
                    operation: id,
                    letterID: row[0],
                    outcome: DeadLetterOperationLetter.Outcome(rawValue: row[1]),
                    at: (row[2] as Int64?).map { Date(millisecondsSince1970: $0) },
                    errorType: row[3],
                    errorMessage: row[4]
                )
            }
        }
    }

    public func pruneOperations(createdBefore date: Date) async throws -> Int {
        let cutoff = date.millisecondsSince1970
        return try await self.write { db in
            try db.execute(
                sql: """
                    DELETE FROM dlq_operation_letters WHERE operation_id IN
                        (SELECT id FROM dlq_operations WHERE created_at < ?)
                    """,
                arguments: [cutoff]
            )
            try db.execute(sql: "DELETE FROM dlq_operations WHERE created_at < ?", arguments: [cutoff])
            return db.changesCount
        }
    }

    public func saveInstance(_ instance: DeadLetterInstance) async throws {
        let document = instance.document()
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO dlq_instances (id, last_seen_at, document) VALUES (?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, document = excluded.document
                    """,
                arguments: [instance.id, instance.lastSeenAt.millisecondsSince1970, document]
            )
        }
    }

    public func removeInstance(id: String) async throws {
        try await self.write { db in try db.execute(sql: "DELETE FROM dlq_instances WHERE id = ?", arguments: [id]) }
    }

    public func instances() async throws -> [DeadLetterInstance] {
        try await self.read { db in
            try String.fetchAll(db, sql: "SELECT document FROM dlq_instances ORDER BY id").map {
                try DeadLetterInstance(document: $0)
            }
        }
    }

    private static func insertOperationLetters(_ db: Database, _ letters: [DeadLetterOperationLetter]) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO dlq_operation_letters (operation_id, letter_id, outcome, at, error_type, error_message)
                SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM dlq_operations WHERE id = ?)
                ON CONFLICT DO NOTHING
                """
        )
        for letter in letters {
            try statement.execute(arguments: [
                letter.operation, letter.letterID, letter.outcome.rawValue, letter.at?.millisecondsSince1970,
                letter.errorType, letter.errorMessage, letter.operation,
            ])
        }
    }

    private static func operation(_ db: Database, id: String, document: String) throws -> DeadLetterOperation {
        var counts = DeadLetterOperation.Counts()
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT outcome, count(*) FROM dlq_operation_letters WHERE operation_id = ? GROUP BY outcome"
            ),
            arguments: [id]
        )
        for row in rows {
            counts.add(DeadLetterOperationLetter.Outcome(rawValue: row[0]), count: row[1])
        }
        return try DeadLetterOperation(document: document, counts: counts)
    }
}
