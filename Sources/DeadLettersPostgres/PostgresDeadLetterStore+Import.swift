public import DeadLetters
import PostgresNIO
import Synchronization

extension PostgresDeadLetterStore {
    /// An error thrown by the letters being imported, passed on unchanged.
    struct SourceError: Error {
        let underlying: any Error
    }

    /// Streams `letters` into one transaction, 1,000 at a time: all of them are stored or none.
    public func importLetters<Letters: AsyncSequence & Sendable>(
        _ letters: Letters,
        onConflict: DeadLetterConflictPolicy
    ) async throws -> DeadLetterAppendResult where Letters.Element == DeadLetter {
        do {
            let result = try await self.perform("import") {
                try await self.transaction { connection in
                    try await self.declareCountingWriter(connection)
                    var result = DeadLetterAppendResult(inserted: 0)
                    var bytes: Int64 = 0
                    var chunk: [DeadLetter] = []
                    var iterator = letters.makeAsyncIterator()
                    var finished = false
                    while !finished {
                        let next: DeadLetter?
                        do {
                            next = try await iterator.next()
                        } catch {
                            throw SourceError(underlying: error)
                        }
                        if let letter = next {
                            try Self.validateStorable(letter)
                            chunk.append(letter)
                        } else {
                            finished = true
                        }
                        // A full chunk, or what is left at the end.
                        if chunk.count == 1000 || finished {
                            try await self.importChunk(
                                chunk,
                                onConflict: onConflict,
                                into: &result,
                                bytes: &bytes,
                                on: connection
                            )
                            chunk.removeAll(keepingCapacity: true)
                        }
                    }
                    // The usage counters last, just before the commit: the slot's row stays locked until then,
                    // and a group commit that uses the same slot would wait for the whole import.
                    try await self.addUsage(connection, count: result.inserted, bytes: bytes)
                    return result
                }
            }
            // The planner's statistics would otherwise lag until autovacuum's next round.
            if result.inserted >= Self.analyzeAfterImport { try? await self.analyze() }
            return result
        } catch let error as SourceError {
            throw error.underlying
        }
    }

    private func importChunk(
        _ chunk: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        into result: inout DeadLetterAppendResult,
        bytes totalBytes: inout Int64,
        on connection: PostgresConnection
    ) async throws {
        guard !chunk.isEmpty else { return }
        var seen = Set<ExactText>()  // by bytes, as the primary key compares ids
        for row in try await self.rows(
            connection,
            PostgresQuery(
                unsafeSQL: "SELECT id FROM \(self.schema).letters WHERE id = ANY($1::text[])",
                binds: Self.binds(chunk.map(\.id))
            )
        ) {
            seen.insert(ExactText(try row.decode(String.self)))
        }
        var columns = LetterColumns()
        for letter in chunk {
            if seen.contains(ExactText(letter.id)) {
                if onConflict == .fail {
                    throw DeadLetterError(
                        code: .duplicateID,
                        message: "a letter with this id is already stored",
                        id: letter.id
                    )
                }
                result.skipped += 1
                continue
            }
            seen.insert(ExactText(letter.id))
            try columns.append(letter)
        }
        guard columns.count > 0 else { return }
        let inserted = try await self.rows(connection, columns.insert(into: self.schema))
        if inserted.count != columns.count {
            // Another transaction stored some of these ids meanwhile.
            if onConflict == .fail {
                throw DeadLetterError(
                    code: .duplicateID,
                    message: "a letter of the import was stored meanwhile by another writer"
                )
            }
            result.skipped += columns.count - inserted.count
        }
        var bytes: Int64 = 0
        let insertedIDs = Set(try inserted.map { ExactText(try $0.decode(String.self)) })
        for (index, id) in columns.ids.enumerated() where insertedIDs.contains(ExactText(id)) {
            bytes += columns.sizes[index]
        }
        result.inserted += inserted.count
        totalBytes += bytes
        let totals = columns.totals { insertedIDs.contains(ExactText(columns.ids[$0])) }
        if !totals.isEmpty { try await self.rows(connection, totals.add(into: self.schema)) }
        // Only rows this import inserted: a skipped id keeps the stored letter's count.
        var arrived = columns
        for index in arrived.ids.indices where !insertedIDs.contains(ExactText(arrived.ids[index])) {
            arrived.abandonedClaims[index] = 0
        }
        if let update = arrived.abandonedClaimsUpdate(in: self.schema) { try await self.rows(connection, update) }
    }

    /// An import of at least this many letters refreshes the planner's statistics.
    static let analyzeAfterImport = 10_000

    /// When this instance's appends pass these counts, it refreshes the planner's statistics.
    static let analyzeAfterAppends = [10_000, 100_000, 1_000_000]

    /// Counts appended letters; when the count passes one of ``analyzeAfterAppends``, asks ``run()`` to analyze
    /// the table (best effort, not in the appender's way; a store whose `run()` is not running leaves it to
    /// autovacuum). A new store's first burst of letters would otherwise
    /// be queried with no statistics at all until autovacuum's next round, and the planner then sorts every
    /// matching letter of a filtered page instead of walking an index; later growth is autovacuum's to follow.
    func countInserted(_ count: Int) {
        guard count > 0 else { return }
        let before = self.inserted.wrappingAdd(count, ordering: .relaxed).oldValue
        guard Self.analyzeAfterAppends.contains(where: { before < $0 && before + count >= $0 }) else { return }
        _ = self.analyzeRequests.withLock { $0 }?.yield()
    }

    /// Refreshes PostgreSQL's statistics of the store's tables (`ANALYZE`), which the planner needs to pick
    /// index walks for filtered pages.
    ///
    /// Autovacuum does it within a minute or so of large changes; call this after loading many letters at once
    /// when they are queried at once. ``importLetters(_:onConflict:)`` calls it after large imports.
    public func analyze() async throws {
        _ = try await self.perform("analyze") {
            try await self.rows(PostgresQuery(unsafeSQL: "ANALYZE \(self.schema).letters"))
        }
    }
}
