public import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension PostgresDeadLetterStore {
    public func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult {
        try await self.perform("append") {
            guard !letters.isEmpty else { return DeadLetterAppendResult(inserted: 0) }
            for letter in letters { try Self.validateStorable(letter) }
            let (id, lead) = self.commits.enqueue(
                letters,
                onConflict: onConflict,
                limits: limits,
                maxCommitters: self.configuration.maxConcurrentCommits
            )
            var outcome = lead ? GroupCommit.Outcome.lead : await self.commits.wait(id)
            while true {
                switch outcome {
                case .done(let result): return try result.get()
                case .lead: outcome = await self.commitBatches(until: id)
                }
            }
        }
    }

    /// Commits batches of waiting appends until the append `id` is done.
    private func commitBatches(until id: UInt64) async -> GroupCommit.Outcome {
        var held = false
        while true {
            let batch: [GroupCommit.Request]
            // After one hold the committer takes what waits, whatever its size: the commit in progress may be
            // stuck on a lock.
            switch self.commits.takeBatch(maxLetters: self.configuration.maxBatchSize, leader: id, mayHold: !held) {
            case .none: return await self.commits.wait(id)
            case .hold:
                await self.commits.hold { try? await Task.sleep(for: GroupCommit.maxHold) }
                held = true
                // Another committer's batch may have taken this append meanwhile.
                if let outcome = self.commits.takeReady(id) {
                    self.commits.handOver(from: id)
                    return outcome
                }
                continue
            case .batch(let taken):
                batch = taken
                held = false
            }
            let results = await self.commit(batch)
            self.commits.committed()
            self.countInserted(results.reduce(0) { $0 + ((try? $1.get())?.inserted ?? 0) })
            self.logger.trace(
                "committed a batch",
                metadata: [
                    "dlq.postgres.batch.appends": "\(batch.count)",
                    "dlq.postgres.batch.letters": "\(batch.reduce(0) { $0 + $1.letters.count })",
                ]
            )
            let mine = zip(batch, results).first { $0.0.id == id }.map { GroupCommit.Outcome.done($0.1) }
            let outcome = mine ?? self.commits.takeReady(id)
            // The next committer is woken before the callers of this batch, so that it runs first and the
            // letters that arrived during this commit go to the server while those callers make their next ones.
            if outcome != nil { self.commits.handOver(from: id) }
            for (request, result) in zip(batch, results) where request.id != id {
                self.commits.deliver(request.id, .done(result))
            }
            if let outcome { return outcome }
        }
    }

    /// Another transaction inserted one of the batch's ids after the batch looked for them.
    private struct InsertRace: Error {}

    /// Commits a batch in one transaction; each append's result is its own.
    private func commit(_ batch: [GroupCommit.Request]) async -> [Result<DeadLetterAppendResult, any Error>] {
        do {
            if let results = try await self.commitWithoutConflicts(batch) { return results }
        } catch {
            let mapped = self.storeError(error, "append")
            return batch.map { _ in .failure(mapped) }
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await self.transaction { connection in try await self.commit(batch, on: connection) }
            } catch is InsertRace where attempt < 5 {
                continue
            } catch {
                let mapped = self.storeError(error, "append")
                return batch.map { _ in .failure(mapped) }
            }
        }
    }

    /// The common case in one statement and one round trip: an unbounded batch whose ids are all new is
    /// inserted with the usage update by `add_letters`, in the statement's own transaction. Returns `nil` when
    /// an id is already stored (the statement then changed nothing), so that the batch takes the careful path.
    private func commitWithoutConflicts(
        _ batch: [GroupCommit.Request]
    ) async throws -> [Result<DeadLetterAppendResult, any Error>]? {
        guard !batch[0].limits.isBounded else { return nil }
        var columns = LetterColumns()
        // Ids compare by bytes, as the primary key does (``ExactText``).
        var ids = Set<ExactText>()
        for request in batch {
            for letter in request.letters {
                guard ids.insert(ExactText(letter.id)).inserted else { return nil }
                try columns.append(letter)
            }
        }
        // A letter that arrives with abandoned claims (an import) takes the careful path, which writes them.
        if columns.hasAbandonedClaims { return nil }
        let query = columns.add(into: self.schema)
        do {
            try await self.rows(query)
        } catch let error as PSQLError where Self.sqlState(error) == "23505" {
            return nil
        }
        return batch.map { .success(DeadLetterAppendResult(inserted: $0.letters.count)) }
    }

    private func commit(
        _ batch: [GroupCommit.Request],
        on connection: PostgresConnection
    ) async throws -> [Result<DeadLetterAppendResult, any Error>] {
        try await self.declareCountingWriter(connection)
        let limits = batch[0].limits
        var totals: (count: Int, bytes: Int)?
        if limits.isBounded {
            var count = 0
            var bytes = 0
            let usage = try await self.rows(
                connection,
                PostgresQuery(unsafeSQL: "SELECT count, bytes FROM \(self.schema).usage ORDER BY slot FOR UPDATE")
            )
            for row in usage {
                let (c, b) = try row.decode((Int64, Int64).self)
                count += Int(c)
                bytes += Int(b)
            }
            totals = (count, bytes)
        }
        let allIDs = Set(batch.lazy.flatMap { $0.letters.lazy.map { ExactText($0.id) } }).map(\.string)
        var seen = Set<ExactText>()
        for row in try await self.rows(
            connection,
            PostgresQuery(
                unsafeSQL: "SELECT id FROM \(self.schema).letters WHERE id = ANY($1::text[])",
                binds: Self.binds(allIDs)
            )
        ) {
            seen.insert(ExactText(try row.decode(String.self)))
        }

        var results: [Result<DeadLetterAppendResult, any Error>] = []
        var columns = LetterColumns()
        var evictionPlans: [(result: Int, count: Int, bytes: Int)] = []
        for request in batch {
            var accepted: [DeadLetter] = []
            var local = Set<ExactText>()
            var skipped = 0
            var duplicate: String?
            for letter in request.letters {
                let id = ExactText(letter.id)
                if seen.contains(id) || local.contains(id) {
                    if request.onConflict == .fail {
                        duplicate = letter.id
                        break
                    }
                    skipped += 1
                    continue
                }
                local.insert(id)
                accepted.append(letter)
            }
            if let duplicate {
                results.append(
                    .failure(
                        DeadLetterError(
                            code: .duplicateID,
                            message: "a letter with this id is already stored",
                            id: duplicate
                        )
                    )
                )
                continue
            }
            let bytes = accepted.reduce(0) { $0 + $1.storageSize }
            if let current = totals {
                let after = (count: current.count + accepted.count, bytes: current.bytes + bytes)
                if limits.overflow == .rejectNew, Self.exceeds(after, limits) {
                    results.append(.failure(Self.capacityError(limits, current, adding: accepted.count)))
                    continue
                }
                totals = after
                if limits.overflow == .dropOldest { evictionPlans.append((results.count, after.count, after.bytes)) }
            }
            seen.formUnion(local)
            for letter in accepted { try columns.append(letter) }
            results.append(.success(DeadLetterAppendResult(inserted: accepted.count, skipped: skipped)))
        }
        if columns.count > 0 {
            let inserted = try await self.rows(connection, columns.insert(into: self.schema))
            if inserted.count != columns.count { throw InsertRace() }
            try await self.addUsage(connection, count: columns.count, bytes: columns.sizes.reduce(0, +))
            try await self.rows(connection, columns.totals().add(into: self.schema))
            if let update = columns.abandonedClaimsUpdate(in: self.schema) { try await self.rows(connection, update) }
        }
        if !evictionPlans.isEmpty {
            try await self.evict(evictionPlans, limits: limits, into: &results, on: connection)
        }
        return results
    }

    static func exceeds(_ totals: (count: Int, bytes: Int), _ limits: DeadLetterLimits) -> Bool {
        if let maxEntries = limits.maxEntries, totals.count > maxEntries { return true }
        if let maxBytes = limits.maxBytes, totals.bytes > maxBytes { return true }
        return false
    }

    static func capacityError(
        _ limits: DeadLetterLimits,
        _ current: (count: Int, bytes: Int),
        adding: Int
    ) -> DeadLetterError {
        var bounds: [String] = []
        if let maxEntries = limits.maxEntries { bounds.append("\(maxEntries) letters") }
        if let maxBytes = limits.maxBytes { bounds.append("\(maxBytes) bytes") }
        return DeadLetterError(
            code: .capacityExceeded,
            message: "the store is full (\(current.count) letters, \(current.bytes) bytes; limit "
                + bounds.joined(separator: ", ") + ") and its overflow policy is rejectNew; \(adding) letter(s) refused"
        )
    }

    /// Removes the oldest letters so that the store is within `limits` after each dropOldest append, and gives
    /// each append the letters it evicted.
    private func evict(
        _ plans: [(result: Int, count: Int, bytes: Int)],
        limits: DeadLetterLimits,
        into results: inout [Result<DeadLetterAppendResult, any Error>],
        on connection: PostgresConnection
    ) async throws {
        var oldest: [(id: String, size: Int)] = []
        var next = 0
        var exhausted = false
        var evictedCount = 0
        var evictedBytes = 0
        var assignment: [(result: Int, ids: [String])] = []
        for plan in plans {
            var ids: [String] = []
            while Self.exceeds((plan.count - evictedCount, plan.bytes - evictedBytes), limits) {
                if next == oldest.count {
                    if exhausted { break }
                    let after = oldest.last?.id ?? ""
                    let rows = try await self.rows(
                        connection,
                        PostgresQuery(
                            unsafeSQL:
                                "SELECT id, size FROM \(self.schema).letters WHERE id > $1 ORDER BY id LIMIT 500",
                            binds: Self.binds(after)
                        )
                    )
                    for row in rows {
                        let (id, size) = try row.decode((String, Int64).self)
                        oldest.append((id, Int(size)))
                    }
                    exhausted = rows.count < 500
                    if next == oldest.count { break }
                }
                ids.append(oldest[next].id)
                evictedCount += 1
                evictedBytes += oldest[next].size
                next += 1
            }
            assignment.append((plan.result, ids))
        }
        let allIDs = assignment.flatMap(\.ids)
        guard !allIDs.isEmpty else { return }
        var letters: [String: DeadLetter] = [:]
        for row in try await self.rows(
            connection,
            PostgresQuery(
                unsafeSQL:
                    "DELETE FROM \(self.schema).letters AS l WHERE l.id = ANY($1::text[]) RETURNING \(Self.qualifiedLetterColumns)",
                binds: Self.binds(allIDs)
            )
        ) {
            let letter = try Self.decodeLetter(row)
            letters[letter.id] = letter
        }
        try await self.addUsage(connection, count: -evictedCount, bytes: -Int64(evictedBytes))
        for (index, ids) in assignment {
            guard case .success(var result) = results[index] else { continue }
            result.evicted = ids.compactMap { letters[$0] }
            results[index] = .success(result)
        }
    }

    /// Adds to one slot of the usage counters.
    func addUsage(_ connection: PostgresConnection, count: Int, bytes: Int64) async throws {
        guard count != 0 || bytes != 0 else { return }
        try await self.rows(
            connection,
            PostgresQuery(
                unsafeSQL:
                    "UPDATE \(self.schema).usage SET count = count + $1, bytes = bytes + $2 WHERE slot = \(Self.usageSlotSQL)",
                binds: Self.binds(Int64(count), bytes)
            )
        )
    }
}
