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
        do {
            let rows = try await self.rows(
                PostgresQuery(
                    unsafeSQL: sql,
                    binds: Self.binds(batch.map(\.id), batch.map(\.owner))
                )
            )
            var removed = Set<Completion>()
            for row in rows {
                let (id, owner) = try row.decode((String, String).self)
                removed.insert(Completion(id: id, owner: owner))
            }
            // A letter completed twice in one batch counts once.
            return batch.map { .success(removed.remove(Completion(id: $0.id, owner: $0.owner)) != nil) }
        } catch {
            return batch.map { _ in .failure(error) }
        }
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
            let rows = try await self.rows(PostgresQuery(unsafeSQL: statement, binds: binds))
            return try rows.first?.decode(Int64.self) == 1
        }
    }

}

/// A letter removed by `complete`, and the owner whose lease it was.
private struct Completion: Hashable {
    let id: String
    let owner: String
}
