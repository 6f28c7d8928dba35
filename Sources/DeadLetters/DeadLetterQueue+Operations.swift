import CoreMetrics
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterQueue {
    /// The letter with `id`, or `nil`.
    public func letter(id: String) async throws -> DeadLetter? {
        try await self.metrics.measure("get") { try await self.store.letter(id: id) }
    }

    /// A page of the letters `filter` selects, oldest first.
    /// - Parameters:
    ///   - filter: which letters; all by default.
    ///   - cursor: the previous page's `nextCursor`, or `nil` for the first page.
    ///   - limit: at most this many letters. Default 100.
    ///   - includingPayloads: `false` for views that show no payload: every payload is empty, and sealed
    ///     payloads are not opened, so a letter sealed with a key that is not configured does not fail the page
    ///     (see ``DeadLetterStore/pageWithoutPayloads(_:after:limit:)``).
    public func letters(
        _ filter: DeadLetterFilter = DeadLetterFilter(),
        after cursor: String? = nil,
        limit: Int = 100,
        includingPayloads: Bool = true
    ) async throws -> DeadLetterPage {
        try await self.letters(filter, sortedBy: .id, after: cursor, limit: limit, includingPayloads: includingPayloads)
    }

    /// A page of the letters `filter` selects, in the order `sort` (ties by id).
    /// - Parameters:
    ///   - filter: which letters; all by default.
    ///   - sort: the order (see ``DeadLetterSort``).
    ///   - cursor: the previous page's ``DeadLetterPage/nextCursor`` (of the same order), or `nil`.
    ///   - limit: at most this many letters; 100 by default.
    ///   - includingPayloads: `false` leaves every payload empty (and sealed ones closed).
    /// - Throws: ``DeadLetterError/Code/invalidFilter`` for a cursor of another order; what the store throws.
    public func letters(
        _ filter: DeadLetterFilter = DeadLetterFilter(),
        sortedBy sort: DeadLetterSort,
        after cursor: String? = nil,
        limit: Int = 100,
        includingPayloads: Bool = true
    ) async throws -> DeadLetterPage {
        try await self.metrics.measure("page") {
            if includingPayloads {
                try await self.store.page(filter, sortedBy: sort, after: cursor, limit: max(1, limit))
            } else {
                try await self.store.pageWithoutPayloads(filter, sortedBy: sort, after: cursor, limit: max(1, limit))
            }
        }
    }

    /// How many letters `filter` selects.
    public func count(_ filter: DeadLetterFilter = DeadLetterFilter()) async throws -> Int {
        try await self.metrics.measure("count") { try await self.store.count(filter) }
    }

    /// Counts by reason, source, error type, status and age, the oldest and newest failure and the average
    /// number of attempts, over the letters `filter` selects.
    public func summary(_ filter: DeadLetterFilter = DeadLetterFilter()) async throws -> DeadLetterSummary {
        let now = self.clock.now()
        return try await self.metrics.measure("summary") { try await self.store.summary(filter, now: now) }
    }

    /// Failures over time: the letters `filter` selects counted per `bucket` by when they last failed, over
    /// the `count` buckets that end with the current one (buckets aligned to whole multiples of their width
    /// since 1970: whole hours, whole UTC days), by reason, with the failures first seen in that window.
    /// - Throws: ``DeadLetterError/Code/invalidConfiguration`` for a bucket under a minute or over 31 days, or
    ///   a count outside 1...1000.
    public func timeline(
        _ filter: DeadLetterFilter = DeadLetterFilter(),
        bucket: Duration,
        count: Int
    ) async throws -> DeadLetterTimeline {
        guard bucket >= .seconds(60), bucket <= .seconds(31 * 86_400) else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "a timeline's bucket must be between 1 minute and 31 days, not \(bucket)"
            )
        }
        guard (1...1000).contains(count) else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "a timeline has 1 to 1000 buckets, not \(count)"
            )
        }
        let window = DeadLetterTimeline.window(endingAt: self.clock.now(), bucket: bucket, count: count)
        let empty = DeadLetterTimeline(start: window.start, bucket: bucket, count: count)
        return try await self.metrics.measure("timeline") { try await self.store.timeline(filter, into: empty) }
    }

    /// The letters `filter` selects grouped by fingerprint (the same failure), largest group first.
    /// - Parameter limit: at most this many groups. Default 100.
    public func groups(
        _ filter: DeadLetterFilter = DeadLetterFilter(),
        limit: Int = 100
    ) async throws -> [DeadLetterGroup] {
        try await self.metrics.measure("groups") { try await self.store.groups(filter, limit: max(1, limit)) }
    }

    /// The filter for redrive and replay: parked letters are left alone unless the filter selects `parked`.
    func excludingParked(_ filter: DeadLetterFilter) -> DeadLetterFilter {
        var filter = filter
        if filter.statuses.isEmpty { filter.statuses = [.dead, .retrying] }
        return filter
    }

    /// Hands the selected letters back to the running service now: status `retrying`, due now. Parked
    /// letters are left alone unless `filter` selects the `parked` status; those are unparked. Each letter gets
    /// a `redriven` (or `unparked`) history entry with the actor and the operation's id; a letter being run
    /// (leased) is left alone. The redrive is recorded as an operation (see ``startRedrive(_:limit:rate:actor:)``).
    /// - Parameters:
    ///   - filter: which letters.
    ///   - limit: at most this many, oldest first; `nil` for all.
    ///   - dryRun: only count what would be redriven (no operation is recorded).
    ///   - actor: who redrives them (a person's name, `user@host`, a token's name); this instance by default.
    ///   - operation: the operation's id; a new one by default.
    /// - Returns: how many letters were (or would be) redriven.
    @discardableResult
    public func redrive(
        _ filter: DeadLetterFilter = DeadLetterFilter(),
        limit: Int? = nil,
        dryRun: Bool = false,
        actor: String? = nil,
        operation: String? = nil
    ) async throws -> Int {
        if dryRun {
            let count = try await self.count(self.excludingParked(filter))
            return limit.map { min($0, count) } ?? count
        }
        return try await self.startRedrive(filter, limit: limit, actor: actor, operation: operation).redriven
    }

    /// Hands the selected letters back to the running services, as a recorded operation: the letters selected
    /// now are its frozen set (letters that fail later are not swept in), and each letter's next attempt
    /// counts for it, so the operation shows how many succeeded, failed again or are still pending, and ends
    /// `finished` when none is pending. ``cancelOperation(id:actor:)`` returns the letters not yet run to
    /// `dead`.
    /// - Parameters:
    ///   - filter: which letters; parked letters only when it selects `parked` (they are unparked).
    ///   - limit: at most this many, oldest first; `nil` for all.
    ///   - rate: letters per second: the letters fall due `1/rate` seconds apart from now, so the running
    ///     services take them at that pace; `nil` for all due now.
    ///   - actor: who redrives them; this instance by default.
    ///   - operation: the operation's id; a new one by default.
    /// - Returns: the operation (`nil` when the store keeps none), how many letters were redriven and when
    ///   the last one falls due.
    /// - Throws: ``DeadLetterError`` `invalidConfiguration` for a rate that is not a positive number, or the
    ///   store's error.
    public func startRedrive(
        _ filter: DeadLetterFilter = DeadLetterFilter(),
        limit: Int? = nil,
        rate: Double? = nil,
        actor: String? = nil,
        operation: String? = nil
    ) async throws -> DeadLetterRedrive {
        if let rate, !(rate > 0 && rate.isFinite) {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be a positive number", field: "rate")
        }
        let id = operation ?? self.newOperationID()
        let record = await self.beginOperation(
            id,
            kind: .redrive,
            filter: filter,
            parameters: DeadLetterOperation.Parameters(limit: limit, rate: rate),
            actor: actor
        )
        let start = self.clock.now()
        let position = Locked(0)
        let redriven = try await self.metrics.measure("redrive") {
            try await self.changeSelected(
                self.excludingParked(filter),
                limit: limit,
                actor: actor,
                operation: id,
                record: record
            ) { _ in
                guard let rate else { return .redriven(dueAt: start) }
                let index = position.withLock { index in
                    defer { index += 1 }
                    return index
                }
                return .redriven(dueAt: start.adding(.nanoseconds(Int64((Double(index) / rate * 1e9).rounded()))))
            }
        }
        if !redriven.isEmpty {
            self.logger.info(
                "letters redriven",
                metadata: ["dlq.count": "\(redriven.count)", "dlq.operation.id": "\(id)"]
            )
            self.emit(.redriven, count: redriven.count)
            self.wakeups.signal()
        }
        let handedOver = await self.handOver(record)
        return DeadLetterRedrive(
            operation: handedOver,
            redriven: redriven.count,
            sources: Set(redriven.map(\.source)).sorted(),
            lastDueAt: redriven.compactMap(\.nextAttemptAt).max()
        )
    }

    /// Removes the letters with these ids. With a configured archive, each is archived first with a `deleted`
    /// history entry naming the actor.
    /// - Parameters:
    ///   - ids: the letters.
    ///   - actor: who deletes them; this instance by default.
    /// - Returns: how many were removed.
    @discardableResult
    public func delete(ids: [String], actor: String? = nil) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let operation = self.newOperationID()
        let filter = DeadLetterFilter(ids: ids)
        let record = await self.beginOperation(operation, kind: .delete, filter: filter, actor: actor)
        let page = try await self.store.pageWithoutPayloads(filter, after: nil, limit: ids.count)
        try await self.addLetters(page.letters.map(\.id), to: record, outcome: .pending)
        if let archive = self.configuration.archive {
            let full = try await self.store.page(filter, after: nil, limit: ids.count)
            let copies = full.letters.map { self.transition(.deleted, $0, actor: actor, operation: operation).letter }
            try await archive.archive(copies, reason: "deleted")
        }
        let count = try await self.durably { store in
            try await self.metrics.measure("delete") { try await store.delete(ids: ids) }
        }
        if count > 0 { self.metrics.counter("dlq_purged_total").increment(by: count) }
        // The ids removed are the operation's record of what went.
        let at = self.clock.now()
        await self.recordOutcomes(
            page.letters.map {
                DeadLetterOperationLetter(operation: operation, letterID: $0.id, outcome: .succeeded, at: at)
            }
        )
        await self.endOperation(record, .finished)
        return count
    }

    /// Removes the letters `filter` selects, writing them to `archive` first (or to the configured archive).
    ///
    /// Letters are read, archived and deleted a page at a time, so memory stays flat; a letter is deleted only
    /// after its archive write returned.
    /// - Parameters:
    ///   - filter: which letters; pass ``DeadLetterFilter/init(ids:sources:reasons:errorTypes:fingerprints:statuses:since:until:minAttempts:search:expiresBefore:metadata:)``
    ///     with no arguments to remove all.
    ///   - limit: at most this many, oldest first; `nil` for all.
    ///   - archive: where to write them first; defaults to the configuration's archive.
    ///   - dryRun: only count what would be removed.
    ///   - actor: who purges them, for the archived copies' `purged` entries; this instance by default.
    ///   - operation: the id of the operation recorded (``operation(id:)`` reads it); a new one by default.
    ///   - progress: called after each page with the number removed so far.
    /// - Returns: how many letters were (or would be) removed.
    @discardableResult
    public func purge(
        _ filter: DeadLetterFilter,
        limit: Int? = nil,
        archive: (any DeadLetterArchive)? = nil,
        dryRun: Bool = false,
        actor: String? = nil,
        operation: String? = nil,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> Int {
        if dryRun {
            let count = try await self.count(filter)
            return limit.map { min($0, count) } ?? count
        }
        let operation = operation ?? self.newOperationID()
        let record = await self.beginOperation(
            operation,
            kind: .purge,
            filter: filter,
            parameters: DeadLetterOperation.Parameters(limit: limit),
            actor: actor
        )
        let removed: Int
        do {
            removed = try await self.removeInPages(
                filter,
                limit: limit,
                archive: archive ?? self.configuration.archive,
                event: .purged,
                actor: actor,
                operation: operation,
                record: record,
                progress: progress
            )
        } catch {
            await self.endOperation(record, .cancelled, message: "stopped: \(error)")
            throw error
        }
        await self.endOperation(record, .finished)
        if removed > 0 {
            self.metrics.counter("dlq_purged_total").increment(by: removed)
            self.logger.info("letters purged", metadata: ["dlq.count": "\(removed)"])
        }
        return removed
    }

    /// Removes the letters whose `expiresAt` has passed, archiving them first.
    /// - Returns: how many expired.
    @discardableResult
    public func expireNow() async throws -> Int {
        let filter = DeadLetterFilter(expiresBefore: self.clock.now())
        let removed = try await self.removeInPages(
            filter,
            limit: nil,
            archive: self.configuration.archive,
            event: .expired,
            actor: nil,
            operation: self.newOperationID(),
            record: nil,
            progress: nil
        )
        if removed > 0 {
            self.metrics.counter("dlq_expired_total").increment(by: removed)
            self.logger.info("letters expired", metadata: ["dlq.count": "\(removed)"])
            self.emit(.expired, count: removed)
        }
        return removed
    }

    private func removeInPages(
        _ filter: DeadLetterFilter,
        limit: Int?,
        archive: (any DeadLetterArchive)?,
        event: DeadLetterLifecycle.Event,
        actor: String?,
        operation: String,
        record: DeadLetterOperation?,
        progress: (@Sendable (Int) -> Void)?
    ) async throws -> Int {
        let reason = if case .expired = event { "expired" } else { "purged" }
        var removed = 0
        let pageSize = 500
        while limit.map({ removed < $0 }) ?? true {
            let want = min(pageSize, (limit ?? Int.max) - removed)
            // Always the first page: what was removed is gone, so the next page starts at the front again.
            let page = try await self.metrics.measure("page") {
                try await self.store.page(filter, after: nil, limit: want)
            }
            if page.letters.isEmpty { break }
            // The archived copies record how the letters left the store.
            let copies = page.letters.map { self.transition(event, $0, actor: actor, operation: operation).letter }
            if let archive {
                try await archive.archive(copies, reason: reason)
            } else {
                await self.archive(copies, reason: reason)
            }
            let ids = page.letters.map(\.id)
            // Deleted even when the purge is cancelled now: these letters are archived already.
            removed += try await self.durably { store in
                try await self.metrics.measure("delete") { try await store.delete(ids: ids) }
            }
            // The ids removed are the operation's record of what went.
            try await self.addLetters(ids, to: record, outcome: .succeeded)
            progress?(removed)
            if page.nextCursor == nil { break }
        }
        return removed
    }

    /// Looks for expired letters on an adaptive interval until shutdown, and keeps the gauges current.
    func cleanupLoop() async {
        while !self.isShuttingDown {
            let startedAt = self.clock.now()
            do {
                try await self.expireNow()
            } catch {
                self.logger.error("could not expire letters", metadata: ["error": "\(error)"])
            }
            await self.pruneOperationsIfDue()
            await self.updateGauges()
            let interval = await self.nextCleanupInterval()
            await self.cleanupWakeups.wait(until: startedAt.adding(interval), clock: self.clock)
        }
    }

    /// Sooner when many letters expire within the longest interval; the longest interval when none do.
    func nextCleanupInterval() async -> Duration {
        let bounds = self.configuration.cleanupInterval
        let horizon = self.clock.now().adding(bounds.upperBound)
        guard let soon = try? await self.store.count(DeadLetterFilter(expiresBefore: horizon)), soon > 0 else {
            return bounds.upperBound
        }
        let scaled = bounds.upperBound / (1 + soon / max(1, self.configuration.batchSize))
        return min(bounds.upperBound, max(bounds.lowerBound, scaled))
    }

    /// Sets `dlq_depth{source}`, `dlq_oldest_age_seconds{source}` and `dlq_capacity_ratio` from the store.
    public func updateGauges() async {
        let now = self.clock.now()
        guard let summary = try? await self.store.summary(DeadLetterFilter(), now: now) else { return }
        let known = self.state.withLock { $0.gaugeSources }
        for source in known.union(summary.bySource.keys) {
            let count = summary.bySource[source] ?? 0
            self.metrics.gauge("dlq_depth", [("source", source)]).record(count)
            var age = 0.0
            if count > 0,
                let oldest = try? await self.store.summary(DeadLetterFilter(sources: [source]), now: now).oldestFailedAt
            {
                age = max(0, now.timeIntervalSince(oldest))
            }
            self.metrics.gauge("dlq_oldest_age_seconds", [("source", source)]).record(age)
        }
        self.state.withLock { $0.gaugeSources = known.union(summary.bySource.keys) }
        self.metrics.gauge("dlq_operations_running").record(await self.runningOperations())
        if self.configuration.limits.isBounded { await self.checkCapacity() }
    }
}
