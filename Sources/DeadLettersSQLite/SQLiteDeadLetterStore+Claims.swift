public import DeadLetters
import GRDB

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension SQLiteDeadLetterStore {
    /// Takes a lease on up to `limit` due letters (status `retrying`, `nextAttemptAt` at or before `now`, no
    /// live lease, a source among `sources`), earliest `nextAttemptAt` first (ties by id).
    ///
    /// It walks the partial index of retrying letters by `nextAttemptAt` (named, since SQLite's planner would
    /// rather sort every retrying letter), so a claim reads the due letters only.
    /// The selection and the lease are one `BEGIN IMMEDIATE` transaction, so two stores or processes on the
    /// same file never claim the same letter. An empty `sources` claims nothing.
    public func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] {
        guard limit > 0, !sources.isEmpty else { return [] }
        let (condition, arguments) = SQLiteRows.condition(DeadLetterFilter(sources: sources))
        let now = now.millisecondsSince1970
        let sql = """
            SELECT \(SQLiteRows.columns), seq, lease_owner IS NOT NULL FROM dlq_letters INDEXED BY dlq_letters_due
            WHERE status = 'retrying' AND next_attempt_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)
                AND \(condition)
            ORDER BY next_attempt_at, id LIMIT ?
            """
        let lease: StatementArguments = [owner, leaseUntil.millisecondsSince1970]
        return try await self.writeLeases { db in
            try Self.lease(db, sql: sql, arguments: [now, now] + arguments + [limit], lease: lease)
        }
    }

    /// Takes a lease on the letters with these ids that have no live lease at `now`, or whose live lease
    /// `owner` holds.
    /// - Returns: the letters claimed, as stored, in id order; one that is gone or leased is left out.
    public func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        guard !ids.isEmpty else { return [] }
        let (condition, arguments) = SQLiteRows.condition(DeadLetterFilter(ids: ids))
        let sql = """
            SELECT \(SQLiteRows.columns), seq, lease_owner IS NOT NULL FROM dlq_letters
            WHERE \(condition) AND (lease_expires_at IS NULL OR lease_expires_at <= ? OR lease_owner = ?) ORDER BY id
            """
        let lease: StatementArguments = [owner, leaseUntil.millisecondsSince1970]
        let now = now.millisecondsSince1970
        return try await self.writeLeases { db in
            try Self.lease(db, sql: sql, arguments: arguments + [now, owner], lease: lease)
        }
    }

    /// Runs a claim's transaction without waiting for its own fsync when durable (`synchronous=NORMAL` for
    /// this commit only).
    ///
    /// A lease need not survive a power loss: the instances holding leases die with the machine, and the
    /// letters are then claimable again, as after a lease ends. A crash of the process loses nothing (the log
    /// is written before the commit returns), and the next durable commit (an add, a completion) syncs the log
    /// with this commit in it, so the order of writes on disk is kept.
    private func writeLeases(
        _ body: @escaping @Sendable (Database) throws -> [DeadLetter]
    ) async throws -> [DeadLetter] {
        let durability = self.configuration.durability
        return try await self.writeWithoutTransaction { db in
            let relax = durability == .durable
            if relax { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            let outcome = Result {
                var letters: [DeadLetter] = []
                try db.inTransaction(.immediate) {
                    letters = try body(db)
                    return .commit
                }
                return letters
            }
            // Back to full sync before anything else runs on the writer, whatever the claim did. Should that fail,
            // the next write restores it before committing (or fails), so no add ever commits without it.
            if relax {
                do {
                    try db.execute(sql: "PRAGMA synchronous = \(durability.synchronousPragma)")
                } catch {
                    self.syncRelaxed.withLock { $0 = true }
                }
            }
            return try outcome.get()
        }
    }

    private static func lease(
        _ db: Database,
        sql: String,
        arguments: StatementArguments,
        lease: StatementArguments
    ) throws -> [DeadLetter] {
        var letters: [DeadLetter] = []
        var seqs: [(seq: Int64, abandoned: Bool)] = []
        let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
        while let row = try rows.next() {
            var letter = try SQLiteRows.decode(row)
            // A lease still recorded ran out without an outcome: an abandoned claim.
            let abandoned = try row.decode(Bool.self, atIndex: 20)
            if abandoned { letter.abandonedClaims = DeadLetterLifecycle.increment(letter.abandonedClaims) }
            letters.append(letter)
            seqs.append((try row.decode(Int64.self, atIndex: 19), abandoned))
        }
        let update = try db.cachedStatement(
            sql: "UPDATE dlq_letters SET lease_owner = ?, lease_expires_at = ? WHERE seq = ?"
        )
        let abandon = try db.cachedStatement(
            sql: """
                UPDATE dlq_letters SET lease_owner = ?, lease_expires_at = ?,
                    abandoned_claims = min(abandoned_claims + 1, max(abandoned_claims, ?)) WHERE seq = ?
                """
        )
        for (seq, abandoned) in seqs {
            if abandoned {
                try abandon.execute(arguments: lease + [DeadLetterLifecycle.maxCount, seq])
            } else {
                try update.execute(arguments: lease + [seq])
            }
        }
        return letters
    }
}
