public import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension PostgresDeadLetterStore {
    public func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] {
        guard limit > 0, !sources.isEmpty else { return [] }
        return try await self.perform("claimDue") {
            let sql = """
                UPDATE \(self.schema).letters AS l SET lease_owner = $1, lease_until = $2,
                    abandoned_claims = \(Self.abandonedClaimsSQL)
                WHERE l.id IN (
                    SELECT id FROM \(self.schema).letters
                    WHERE status = 'retrying' AND next_attempt_at <= $3
                        AND (lease_until IS NULL OR lease_until <= $3) AND source = ANY($4::text[])
                    ORDER BY next_attempt_at, id LIMIT $5
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING \(Self.qualifiedLetterColumns)
                """
            let binds = Self.binds(
                owner,
                leaseUntil.millisecondsSince1970,
                now.millisecondsSince1970,
                sources,
                Int64(limit)
            )
            let letters = try await self.rows(PostgresQuery(unsafeSQL: sql, binds: binds)).map(Self.decodeLetter)
            return letters.sorted {
                let left = $0.nextAttemptAt?.millisecondsSince1970 ?? 0
                let right = $1.nextAttemptAt?.millisecondsSince1970 ?? 0
                return left != right ? left < right : $0.id < $1.id
            }
        }
    }

    public func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        let ids = ids.filter { !$0.utf8.contains(0) }
        guard !ids.isEmpty else { return [] }
        return try await self.perform("claim") {
            let sql = """
                UPDATE \(self.schema).letters AS l SET lease_owner = $1, lease_until = $2,
                    abandoned_claims = \(Self.abandonedClaimsSQL)
                WHERE l.id IN (
                    SELECT id FROM \(self.schema).letters
                    WHERE id = ANY($4::text[]) AND (lease_until IS NULL OR lease_until <= $3 OR lease_owner = $1)
                    ORDER BY id
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING \(Self.qualifiedLetterColumns)
                """
            let binds = Self.binds(owner, leaseUntil.millisecondsSince1970, now.millisecondsSince1970, ids)
            return try await self.rows(PostgresQuery(unsafeSQL: sql, binds: binds)).map(Self.decodeLetter)
                .sorted { $0.id < $1.id }
        }
    }

    /// A claim's new `abandoned_claims`: one more when a lease is still recorded (it ran out without an
    /// outcome), stopping at ``DeadLetterLifecycle/maxCount``.
    static let abandonedClaimsSQL = """
        CASE WHEN l.lease_owner IS NOT NULL AND l.abandoned_claims < \(DeadLetterLifecycle.maxCount) \
        THEN l.abandoned_claims + 1 ELSE l.abandoned_claims END
        """

    public func complete(id: String, owner: String) async throws -> Bool {
        guard !id.utf8.contains(0), !owner.utf8.contains(0) else { return false }
        return try await self.perform("complete") {
            try await self.completions.submit((id, owner)) { batch in await self.complete(batch) }
        }
    }

    /// Removes a batch of completed letters in one statement (one transaction, one commit); each caller learns
    /// whether its letter was still leased to it.
    private func complete(_ batch: [(id: String, owner: String)]) async -> [Result<Bool, any Error>] {
        do {
            return try await self.withConnection { try await self.complete(batch, on: $0) }.map { .success($0) }
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    /// Removes completed letters in one statement on `connection`.
    /// - Returns: for each, whether it was still leased to its owner.
    private func complete(
        _ batch: [(id: String, owner: String)],
        on connection: PostgresConnection
    ) async throws -> [Bool] {
        let sql = """
            WITH removed AS (
                DELETE FROM \(self.schema).letters AS l USING unnest($1::text[], $2::text[]) AS r(id, owner)
                WHERE l.id = r.id AND l.lease_owner = r.owner
                RETURNING l.id, l.lease_owner, l.size
            ),
            counted AS (
                UPDATE \(self.schema).usage
                SET count = count - (SELECT count(*) FROM removed), bytes = bytes - (SELECT sum(size) FROM removed)
                WHERE slot = \(Self.usageSlotSQL) AND EXISTS (SELECT 1 FROM removed)
            )
            SELECT id, lease_owner FROM removed
            """
        let rows = try await self.rows(
            connection,
            PostgresQuery(unsafeSQL: sql, binds: Self.binds(batch.map(\.id), batch.map(\.owner)))
        )
        var removed = Set<Completion>()
        for row in rows {
            let (id, owner) = try row.decode((String, String).self)
            removed.insert(Completion(id: id, owner: owner))
        }
        // A letter completed twice in one batch counts once.
        return batch.map { removed.remove(Completion(id: $0.id, owner: $0.owner)) != nil }
    }

    public func delete(ids: [String]) async throws -> Int {
        let ids = ids.filter { !$0.utf8.contains(0) }
        guard !ids.isEmpty else { return 0 }
        return try await self.perform("delete") {
            try await self.removing("id = ANY($1::text[])", Self.binds(ids))
        }
    }

    /// Deletes the letters `condition` selects and updates the usage counters, in one statement (its own
    /// transaction); returns how many were removed.
    private func removing(_ condition: String, _ binds: PostgresBindings) async throws -> Int {
        let sql = """
            WITH removed AS (DELETE FROM \(self.schema).letters WHERE \(condition) RETURNING size),
            counted AS (
                UPDATE \(self.schema).usage
                SET count = count - (SELECT count(*) FROM removed), bytes = bytes - (SELECT sum(size) FROM removed)
                WHERE slot = \(Self.usageSlotSQL) AND EXISTS (SELECT 1 FROM removed)
            )
            SELECT count(*) FROM removed
            """
        // Two deletes of overlapping letters may lock them in opposite orders: PostgreSQL then cancels one
        // (deadlock detected), which changed nothing and is run again.
        var attempt = 0
        while true {
            attempt += 1
            do {
                let rows = try await self.rows(PostgresQuery(unsafeSQL: sql, binds: binds))
                return Int(try rows.first?.decode(Int64.self) ?? 0)
            } catch let error as PSQLError where attempt < 5 && Self.isRetryable(error) {
                continue
            }
        }
    }

    public func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        try Self.validateStorable(letter)
        return try await self.perform("release") {
            let query = try self.releaseQuery(letter, owner: owner)
            return try await self.withConnection { try await self.release(query, on: $0) }
        }
    }

    /// Writes the outcomes in one transaction, so that they share one commit: the removals in one statement,
    /// then each new state. A single outcome goes through ``complete(id:owner:)`` or ``release(_:owner:)``
    /// (whose concurrent calls share statements).
    /// - Throws: ``DeadLetterError`` `invalidFormat` before anything is written when a released letter holds
    ///   what PostgreSQL cannot store, or the store's error (then none of the outcomes is written).
    public func write(_ outcomes: [DeadLetterOutcome], owner: String) async throws -> [Bool] {
        guard outcomes.count > 1 else {
            switch outcomes.first {
            case .complete(let id): return [try await self.complete(id: id, owner: owner)]
            case .release(let letter): return [try await self.release(letter, owner: owner)]
            case nil: return []
            }
        }
        return try await self.write(outcomes, owner: owner, recording: [])
    }

    /// Writes the outcomes and, for those written, their operation records, in one transaction.
    public func write(
        _ outcomes: [DeadLetterOutcome],
        owner: String,
        recording records: [DeadLetterOperationLetter?]
    ) async throws -> [Bool] {
        // One outcome without a record needs no transaction of its own.
        guard outcomes.count > 1 || records.contains(where: { $0 != nil }) else {
            return try await self.write(outcomes, owner: owner)
        }
        for case .release(let letter) in outcomes { try Self.validateStorable(letter) }
        return try await self.perform("write") {
            var completions: [(index: Int, id: String)] = []
            var releases: [(index: Int, query: PostgresQuery)] = []
            for (index, outcome) in outcomes.enumerated() {
                switch outcome {
                case .complete(let id):
                    // Stored text never holds NUL: such a letter is not leased to this owner.
                    if !id.utf8.contains(0), !owner.utf8.contains(0) { completions.append((index, id)) }
                case .release(let letter):
                    releases.append((index, try self.releaseQuery(letter, owner: owner)))
                }
            }
            return try await self.transaction { connection in
                var written = [Bool](repeating: false, count: outcomes.count)
                if !completions.isEmpty {
                    let removed = try await self.complete(completions.map { ($0.id, owner) }, on: connection)
                    for (completion, done) in zip(completions, removed) { written[completion.index] = done }
                }
                for release in releases {
                    written[release.index] = try await self.release(release.query, on: connection)
                }
                let recorded = zip(records, written).compactMap { record, done in done ? record : nil }
                if !recorded.isEmpty { try await self.rows(connection, self.recordQuery(recorded)) }
                return written
            }
        }
    }

    /// Runs a release's statement on `connection`.
    /// - Returns: whether the letter was still leased to the owner (and so written).
    private func release(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> Bool {
        try await self.rows(connection, query).first?.decode(Int64.self) == 1
    }

    /// The statement that writes a released letter's new state and ends its lease, if `owner` holds it, and
    /// keeps the usage counters.
    private func releaseQuery(_ letter: DeadLetter, owner: String) throws -> PostgresQuery {
        var columns = LetterColumns()
        try columns.append(letter)
        let sql = """
            UPDATE \(self.schema).letters AS l SET source = $3, reason = $4, error_type = $5, error_message = $6,
                causes = $7::jsonb, attempts = $8, first_failed_at = $9, last_failed_at = $10,
                next_attempt_at = $11, expires_at = $12, status = $13, fingerprint = $14, replay_count = $15,
                metadata = $16::jsonb, content_type = $17, payload = $18, history = $19::jsonb, size = $20,
                abandoned_claims = $21, lease_owner = NULL, lease_until = NULL
            FROM (SELECT id, size FROM \(self.schema).letters WHERE id = $1 AND lease_owner = $2 FOR UPDATE) AS old
            WHERE l.id = old.id
            RETURNING old.size AS old_size
            """
        let statement = """
            WITH released AS (\(sql)),
            counted AS (
                UPDATE \(self.schema).usage SET bytes = bytes + $20 - (SELECT old_size FROM released)
                WHERE slot = \(Self.usageSlotSQL) AND EXISTS (SELECT 1 FROM released WHERE old_size <> $20)
            )
            SELECT count(*) FROM released
            """
        var binds = PostgresBindings(capacity: 21)
        binds.append(letter.id)
        binds.append(owner)
        binds.append(letter.source)
        binds.append(letter.reason.rawValue)
        binds.append(letter.errorType)
        binds.append(letter.errorMessage)
        binds.append(columns.causes[0])
        binds.append(Int64(letter.attempts))
        binds.append(letter.firstFailedAt.millisecondsSince1970)
        binds.append(letter.lastFailedAt.millisecondsSince1970)
        binds.append(letter.nextAttemptAt?.millisecondsSince1970)
        binds.append(letter.expiresAt?.millisecondsSince1970)
        binds.append(letter.status.rawValue)
        binds.append(letter.fingerprint)
        binds.append(Int64(letter.replayCount))
        binds.append(columns.metadata[0])
        binds.append(letter.contentType)
        binds.append(columns.payloads[0])
        binds.append(columns.history[0])
        binds.append(columns.sizes[0])
        binds.append(Int64(letter.abandonedClaims))
        return PostgresQuery(unsafeSQL: statement, binds: binds)
    }
}

/// A letter removed by `complete`, and the owner whose lease it was.
private struct Completion: Hashable {
    let id: String
    let owner: String
}
