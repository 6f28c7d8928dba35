import CoreMetrics
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterQueue {
    /// Runs the selected letters through `handler` now, at a bounded rate and concurrency.
    ///
    /// Parked letters are left alone unless `filter` selects `parked`. Each letter is leased while it runs, so
    /// two replays (or a replay and ``run()``, or several instances) never run the same letter at once. A
    /// success removes the letter (or keeps it with a history entry, with `keepOnSuccess`); a failure records
    /// the new error, counts a failed replay and parks the letter after `parkAfterFailedReplays`. After
    /// `maxConsecutiveFailures` failures in a row the replay stops and the rest are skipped.
    /// - Parameters:
    ///   - filter: which letters.
    ///   - options: rate, concurrency, dry run, …
    ///   - progress: called after each letter with the report so far.
    ///   - handler: the work; returning is success.
    /// - Returns: matched, succeeded, failed and skipped counts.
    /// - Throws: ``DeadLetterError`` for invalid options, or the store's error.
    public func replay(
        _ filter: DeadLetterFilter = DeadLetterFilter(),
        options: ReplayOptions = ReplayOptions(),
        progress: (@Sendable (ReplayReport) -> Void)? = nil,
        handler: @escaping Handler
    ) async throws -> ReplayReport {
        try options.validate()
        let selection = self.excludingParked(filter)
        var matched = try await self.count(selection)
        if let limit = options.limit { matched = min(matched, limit) }
        if options.dryRun {
            let sample = try await self.store.page(
                selection,
                after: nil,
                limit: max(1, min(options.sampleSize, max(matched, 1)))
            )
            return ReplayReport(matched: matched, dryRun: true, sample: Array(sample.letters.prefix(matched)))
        }
        let id = self.newOperationID()
        let lease = options.leaseDuration ?? self.configuration.leaseDuration
        let record = await self.beginOperation(
            id,
            kind: .replay,
            filter: filter,
            parameters: DeadLetterOperation.Parameters(
                limit: options.limit,
                rate: options.rate,
                concurrency: options.concurrency,
                maxFailures: options.maxConsecutiveFailures,
                command: options.command,
                lease: lease,
                canary: options.canary,
                keepOnSuccess: options.keepOnSuccess ? true : nil
            ),
            actor: options.actor
        )
        var source = ReplaySource.filter(selection)
        if let record {
            // The frozen set: the letters selected now; letters that fail later are not swept in.
            matched = try await self.freeze(selection, limit: matched, into: record)
            source = .operation(record.id)
        }
        return try await self.runReplay(
            source,
            matched: matched,
            operation: id,
            record: record,
            options: options,
            canary: options.canary,
            progress: progress,
            handler: handler
        )
    }

    /// Goes on with a replay that was interrupted (its process stopped) or paused (its canary failed): runs the
    /// letters of its frozen set that have no outcome yet, with the parameters it was started with, under the
    /// same operation, which ends `finished` (or stops as a replay does).
    /// - Parameters:
    ///   - id: the replay's operation.
    ///   - actor: who resumes it; recorded in the letters' history.
    ///   - progress: called after each letter with the report so far.
    ///   - handler: the work; for `dlq`, the recorded ``DeadLetterOperation/Parameters/command``.
    /// - Returns: what this run did (`matched` is the number of letters that were left).
    /// - Throws: ``DeadLetterError`` `notFound` for an unknown operation, `invalidConfiguration` for one that is
    ///   not a replay or is running, finished or cancelled; or the store's error.
    public func resumeReplay(
        id: String,
        actor: String? = nil,
        progress: (@Sendable (ReplayReport) -> Void)? = nil,
        handler: @escaping Handler
    ) async throws -> ReplayReport {
        guard var operation = try await self.store.operation(id: id) else {
            throw DeadLetterError(code: .notFound, message: "no operation has id \(id)")
        }
        guard operation.kind == .replay else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "operation \(id) is a \(operation.kind), not a replay; only replays resume"
            )
        }
        let state = operation.state(now: self.clock.now())
        guard state == .interrupted || state == .paused else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "replay \(id) is \(state); only an interrupted or paused replay resumes"
            )
        }
        let parameters = operation.parameters
        var options = ReplayOptions(
            rate: parameters.rate,
            concurrency: parameters.concurrency ?? 1,
            keepOnSuccess: parameters.keepOnSuccess ?? false,
            maxConsecutiveFailures: parameters.maxFailures
        )
        options.actor = actor ?? operation.actor
        options.leaseDuration = parameters.lease
        options.command = parameters.command
        operation.state = .running
        operation.heartbeatAt = self.clock.now().roundedToMilliseconds
        operation.finishedAt = nil
        operation.message = nil
        _ = try await self.store.updateOperation(operation)
        return try await self.runReplay(
            .operation(id),
            matched: operation.counts.pending,
            operation: id,
            record: operation,
            options: options,
            canary: nil,
            progress: progress,
            handler: handler
        )
    }

    /// Adds the letters `filter` selects (at most `limit`, oldest first) to a replay's frozen set as pending.
    /// - Returns: how many letters the set holds.
    private func freeze(_ filter: DeadLetterFilter, limit: Int, into record: DeadLetterOperation) async throws -> Int {
        var cursor: String?
        var frozen = 0
        while frozen < limit {
            let ids: [String]
            let more: Bool
            if let memory = self.memoryStore {
                // Only the ids, straight into the set: no letter is rebuilt to be dropped again.
                (ids, more) = memory.freeze(
                    filter,
                    after: cursor,
                    limit: min(1000, limit - frozen),
                    into: record.id,
                    expected: limit
                )
            } else {
                let page = try await self.store.pageWithoutPayloads(
                    filter,
                    after: cursor,
                    limit: min(1000, limit - frozen)
                )
                (ids, more) = (page.letters.map(\.id), page.nextCursor != nil)
                try await self.addLetters(ids, to: record, outcome: .pending)
            }
            guard let last = ids.last else { break }
            cursor = last
            frozen += ids.count
            if !more { break }
        }
        return frozen
    }

    /// Runs a replay's letters (its canary first, when it has one), with a heartbeat that keeps its operation
    /// alive, records outcomes and notices a cancel; ends the operation.
    private func runReplay(
        _ source: ReplaySource,
        matched: Int,
        operation: String,
        record: DeadLetterOperation?,
        options: ReplayOptions,
        canary: Int?,
        progress: (@Sendable (ReplayReport) -> Void)?,
        handler: @escaping Handler
    ) async throws -> ReplayReport {
        var start = ReplayReport(matched: matched)
        start.operation = operation
        let run = ReplayRun(
            source: source,
            operation: operation,
            owner: "replay/\(operation)",
            lease: options.leaseDuration ?? self.configuration.leaseDuration,
            tally: Locked(start),
            outcomes: Locked([]),
            cancelled: ReplayFlag(),
            // The outcomes that wait while a write is in flight are written together, in one store call. Two
            // writes at a time: measured on PostgreSQL (2,000 failing letters, concurrency 8), one at a time cut
            // the commits from about 1,400 to 90 but took longer than unbatched (2.2-3.1 s against 2.1 s); two
            // took 1.7 s with about 110 commits.
            writes: ReplayWrites(maxLeaders: 2, maxBatch: Self.replayMaxPendingWrites)
        )
        let result: Result<Void, any Error> = await withTaskGroup(of: Void.self) { group in
            if let record {
                group.addTask { await self.heartbeat(record, run: run) }
            }
            defer { group.cancelAll() }
            do {
                var left = matched
                if let canary, canary < matched {
                    try await self.replayPass(
                        run,
                        limit: canary,
                        options: options,
                        progress: progress,
                        handler: handler
                    )
                    if run.tally.withLock({ $0.failed > 0 }) {
                        run.tally.withLock { $0.paused = true }
                        return .success(())
                    }
                    // A frozen set's next pass reads what is still pending: the canary's outcomes first.
                    await self.flushOutcomes(run)
                    if case .filter = source { left -= canary }
                }
                try await self.replayPass(run, limit: left, options: options, progress: progress, handler: handler)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        await self.flushOutcomes(run)
        var report = run.tally.withLock { $0 }
        report.cancelled = self.isCancelled(run)
        let interrupted = Task.isCancelled
        self.cancelledOperations.remove(operation)
        let counted = try? await self.store.operation(id: operation)
        if case .failure(let failure) = result {
            self.logger.error("replay stopped: the store failed", metadata: ["error": "\(failure)"])
            await self.endOperation(counted ?? record, .interrupted, message: "stopped: \(failure)")
            throw failure
        }
        report.skipped = max(0, report.matched - report.succeeded - report.failed)
        if let message = report.stoppedByOperator {
            report.stoppedByOperator = nil
            await self.endOperation(counted ?? record, .paused, message: message)
            var stopped = ReplayStoppedError(message)
            stopped.report = report
            self.logger.info("replay stopped by its handler", metadata: ["error": "\(message)"])
            throw stopped
        }
        if report.cancelled {
            // The canceller recorded the state already; the letters not run are skipped.
            await self.skipRest(run, record: record)
        } else if interrupted {
            // Stopped from outside (Ctrl-C, a shutdown): what was not run stays pending, to resume.
            await self.endOperation(counted ?? record, .interrupted, message: "stopped before its end; resume it")
        } else if report.paused {
            await self.endOperation(counted ?? record, .paused, message: "a canary letter failed")
        } else if report.stoppedByCircuit {
            await self.endOperation(
                counted ?? record,
                .paused,
                message: "stopped after \(options.maxConsecutiveFailures ?? 0) failures in a row"
            )
        } else {
            await self.skipRest(run, record: record)
            await self.endOperation(counted ?? record, .finished)
        }
        self.emit(.replayed, count: report.succeeded)
        self.logger.info(
            "replay finished",
            metadata: [
                "dlq.replay.matched": "\(report.matched)", "dlq.replay.succeeded": "\(report.succeeded)",
                "dlq.replay.failed": "\(report.failed)", "dlq.replay.skipped": "\(report.skipped)",
                "dlq.operation.id": "\(operation)",
            ]
        )
        return report
    }

    /// While a replay runs: refreshes its operation's heartbeat at least three times per lease (and at least
    /// every second), writes the outcomes gathered so far, and notices a cancel.
    private func heartbeat(_ record: DeadLetterOperation, run: ReplayRun) async {
        let interval = min(run.lease / 3, .seconds(1))
        var operation = record
        while !Task.isCancelled {
            do { try await self.clock.sleep(for: interval) } catch { return }
            await self.flushOutcomes(run)
            if let stored = try? await self.store.operation(id: record.id), stored.state == .cancelled {
                run.cancelled.set()
                return
            }
            operation.heartbeatAt = self.clock.now().roundedToMilliseconds
            // A cancelled operation is never written again: the update then finds nothing to change.
            if (try? await self.store.updateOperation(operation)) == false {
                run.cancelled.set()
                return
            }
        }
    }

    /// Whether the replay's operation was cancelled: in this process (at once) or in another (noticed by the
    /// heartbeat).
    func isCancelled(_ run: ReplayRun) -> Bool {
        run.cancelled.isSet || self.cancelledOperations.contains(run.operation)
    }

    /// Writes the outcomes gathered since the last time.
    private func flushOutcomes(_ run: ReplayRun) async {
        let outcomes = run.outcomes.withLock { outcomes in
            defer { outcomes = [] }
            return outcomes
        }
        await self.recordOutcomes(outcomes)
    }

    /// A replay that ran to its end: letters of its set still pending (gone, or leased by someone else when
    /// their turn came) are `skipped`.
    private func skipRest(_ run: ReplayRun, record: DeadLetterOperation?) async {
        guard let record else { return }
        let now = self.clock.now()
        var cursor: String?
        while let pending = try? await self.store.operationLetters(
            id: record.id,
            outcomes: [.pending],
            after: cursor,
            limit: 1000
        ), let last = pending.last {
            cursor = last.letterID
            await self.recordOutcomes(
                pending.map {
                    DeadLetterOperationLetter(operation: record.id, letterID: $0.letterID, outcome: .skipped, at: now)
                }
            )
        }
    }

    /// One pass over the replay's letters: at most `limit` letters started. One letter at a time on a store
    /// that ``writesDirectly`` runs in the pass's own task (``replayInlinePass(_:limit:options:progress:handler:)``);
    /// otherwise each letter is a child task and its write goes through ``ReplayWrites``.
    private func replayPass(
        _ run: ReplayRun,
        limit matched: Int,
        options: ReplayOptions,
        progress: (@Sendable (ReplayReport) -> Void)?,
        handler: @escaping Handler
    ) async throws {
        if options.concurrency == 1, self.writesDirectly {
            try await self.replayInlinePass(run, limit: matched, options: options, progress: progress, handler: handler)
            return
        }
        let tally = run.tally
        let limiter = RateLimiter(rate: options.rate, clock: self.clock)
        let owner = run.owner
        // A letter holds a slot while its handler runs; its store write (removal or new state) happens after it
        // gives the slot back, so the next letter starts without waiting for a commit and concurrent writes
        // share commits. At most `concurrency + maxPendingWrites` letters are started and not yet written; the
        // pass returns only once every write is done.
        let slots = ReplaySlots(options.concurrency)
        let maxLive = options.concurrency + Self.replayMaxPendingWrites
        let batchSize = self.replayBatchSize(run, options)
        let prefetch = options.rate == nil
        var seen = 0
        var stop = false
        var failure: (any Error)?
        await withTaskGroup(of: Void.self) { group in
            var live = 0
            var handBack: [DeadLetter] = []
            var batch: ReplayBatch?
            do {
                // Stores read a limit below 1 as 1: with nothing matched, nothing is claimed.
                if matched > 0 {
                    batch = try await self.replayBatch(run, after: nil, limit: min(batchSize, matched))
                }
            } catch is CancellationError {
                batch = nil
            } catch {
                failure = error
            }
            while let current = batch {
                seen += current.count
                // Without a rate limit, the next page is read and claimed while this one's letters start.
                let more = !current.isLast && seen < matched
                let limit = min(batchSize, matched - seen)
                async let following =
                    more && prefetch ? self.replayBatch(run, after: current.cursor, limit: limit) : nil
                for letter in current.claimed {
                    if stop {
                        handBack.append(letter)
                        continue
                    }
                    if self.isPoisoned(letter) {
                        // A poison letter: parked instead of run.
                        live += 1
                        group.addTask { await self.parkPoisoned(letter, run: run, options: options) }
                        continue
                    }
                    while live >= maxLive, await group.next() != nil { live -= 1 }
                    await slots.acquire()
                    if tally.withLock({ $0.stoppedByCircuit || $0.stoppedByOperator != nil })
                        || self.isCancelled(run) || Task.isCancelled
                    {
                        slots.release()
                        stop = true
                        handBack.append(letter)
                        continue
                    }
                    do { try await limiter.acquire() } catch {
                        slots.release()
                        stop = true
                        handBack.append(letter)
                        continue
                    }
                    if self.isCancelled(run) {
                        slots.release()
                        stop = true
                        handBack.append(letter)
                        continue
                    }
                    live += 1
                    group.addTask {
                        await self.replayOne(letter, run: run, options: options, slots: slots, handler: handler)
                        if let progress { progress(tally.withLock { $0 }) }
                    }
                }
                do {
                    batch = try await following
                    if more, !prefetch, !stop, !Task.isCancelled {
                        batch = try await self.replayBatch(run, after: current.cursor, limit: limit)
                    }
                } catch is CancellationError {
                    // Ctrl-C while the next page was read: stop as if it came between two letters.
                    stop = true
                    batch = nil
                } catch {
                    failure = error
                    batch = nil
                }
                if stop, let claimed = batch?.claimed {
                    handBack.append(contentsOf: claimed)
                    batch = nil
                }
            }
            // Claimed but not run (the replay stopped): hand them back, all at once so the writes share commits.
            for letter in handBack {
                group.addTask {
                    do {
                        _ = try await self.write(
                            ReplayWrite(outcome: .release(letter), record: nil),
                            owner: owner,
                            through: run.writes
                        )
                    } catch {
                        // It stays leased until its lease ends, then it is claimable again.
                        self.logger.warning(
                            "could not hand back a letter the replay did not run",
                            metadata: ["dlq.id": "\(letter.id)", "error": "\(error)"]
                        )
                    }
                }
            }
            await group.waitForAll()
        }
        if let failure { throw failure }
    }

    /// Parks a claimed poison letter instead of running it; counts it and gathers its outcome for the operation.
    func parkPoisoned(_ letter: DeadLetter, run: ReplayRun, options: ReplayOptions) async {
        let operation = run.operation
        guard await self.parkPoisoned(letter, owner: run.owner, actor: options.actor, operation: operation) else {
            return
        }
        run.tally.withLock { $0.parked += 1 }
        let now = self.clock.now()
        run.outcomes.withLock {
            $0.append(DeadLetterOperationLetter(operation: operation, letterID: letter.id, outcome: .parked, at: now))
        }
    }

    /// How many letters a page of the replay claims. Letters are leased when their page is claimed. With a rate
    /// limit, a page is as large as half a lease lets through, and the next page is claimed only when this one
    /// has started, so no lease runs out before its letter starts.
    func replayBatchSize(_ run: ReplayRun, _ options: ReplayOptions) -> Int {
        var batchSize = self.configuration.batchSize
        if let rate = options.rate {
            let leaseSeconds = Double(run.lease.components.seconds)
            batchSize = max(1, min(batchSize, Int(min(rate * leaseSeconds / 2, Double(Int32.max)))))
        }
        return batchSize
    }

    /// Reads the next page of the replay's letters after `cursor` and claims those that are free; `nil` when
    /// the page is empty. From a frozen set, letters that have an outcome for this operation already (the
    /// replay was interrupted before it recorded it) get that outcome without running again, and letters that
    /// could not be claimed stay pending (a replay that ends marks them `skipped`).
    func replayBatch(_ run: ReplayRun, after cursor: String?, limit: Int) async throws -> ReplayBatch? {
        let ids: [String]
        let isLast: Bool
        switch run.source {
        case .filter(let filter):
            let page = try await self.store.pageWithoutPayloads(filter, after: cursor, limit: limit)
            ids = page.letters.map(\.id)
            isLast = page.nextCursor == nil
        case .operation(let id):
            if let memory = self.memoryStore {
                ids = memory.pendingIDs(operation: id, after: cursor, limit: limit)
            } else {
                let pending = try await self.store.operationLetters(
                    id: id,
                    outcomes: [.pending],
                    after: cursor,
                    limit: limit
                )
                ids = pending.map(\.letterID)
            }
            isLast = ids.count < limit
        }
        guard let last = ids.last else { return nil }
        let now = self.clock.now()
        let owner = run.owner
        let leaseUntil = now.adding(run.lease)
        // Claimed even when the replay is cancelled meanwhile: it then hands the letters back.
        var claimed = try await self.durably { store in
            try await store.claim(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil)
        }
        if case .operation(let id) = run.source {
            claimed = await self.settleRecorded(claimed, operation: id, run: run)
        }
        return ReplayBatch(claimed: claimed, cursor: last, count: ids.count, isLast: isLast)
    }

    /// Of claimed letters of a frozen set, those whose history already holds this replay's outcome (written
    /// before the process stopped, not yet recorded in the set) are recorded and handed back; the rest run.
    private func settleRecorded(_ claimed: [DeadLetter], operation: String, run: ReplayRun) async -> [DeadLetter] {
        // Usually none has (only a resumed replay's may): then the page is kept as it is, not copied.
        guard claimed.contains(where: { $0.storedHistory.contains { $0.operation == operation } }) else {
            return claimed
        }
        var toRun: [DeadLetter] = []
        for letter in claimed {
            guard let entry = letter.storedHistory.last(where: { $0.operation == operation }),
                entry.event == .replayed || entry.event == .parked
            else {
                toRun.append(letter)
                continue
            }
            let outcome: DeadLetterOperationLetter.Outcome =
                entry.event == .parked || letter.status == .parked
                ? .parked : entry.outcome == .succeeded ? .succeeded : .failed
            let record = DeadLetterOperationLetter(
                operation: operation,
                letterID: letter.id,
                outcome: outcome,
                at: entry.at,
                errorType: entry.errorType,
                errorMessage: entry.errorMessage
            )
            _ = try? await self.write(
                ReplayWrite(outcome: .release(letter), record: record),
                owner: run.owner,
                through: run.writes
            )
        }
        return toRun
    }

    /// How many letters of a replay may wait for their store write (removal or new state) beyond those
    /// whose handlers run.
    static var replayMaxPendingWrites: Int { 256 }

    /// Runs one claimed letter: its handler, then (after giving its slot back) its store write.
    ///
    /// The report counts the handler's outcome as soon as it is known (so the circuit opens before the next
    /// letter starts). The letter stays leased until its write commits, so no other worker runs it meanwhile;
    /// a write that fails leaves it leased until the lease ends (it then runs again) and is logged.
    private func replayOne(
        _ letter: DeadLetter,
        run: ReplayRun,
        options: ReplayOptions,
        slots: ReplaySlots,
        handler: Handler
    ) async {
        let owner = run.owner
        let tally = run.tally
        let operation = run.operation
        // The letter's outcome in the replay's operation, written in the same transaction as the letter, so
        // that a replay killed at any moment resumes knowing which letters ran.
        func record(
            _ outcome: DeadLetterOperationLetter.Outcome,
            _ failed: DeadLetter? = nil
        ) -> DeadLetterOperationLetter? {
            guard case .operation = run.source else { return nil }
            return DeadLetterOperationLetter(
                operation: operation,
                letterID: letter.id,
                outcome: outcome,
                at: self.clock.now(),
                errorType: failed?.errorType,
                errorMessage: failed?.errorMessage
            )
        }
        let outcome: Result<Void, any Error>
        do {
            try await handler(letter)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success:
            tally.withLock { report in
                report.succeeded += 1
                report.consecutiveFailures = 0
            }
            slots.release()
            self.metrics.counter("dlq_replays_total", "source", letter.source, "outcome", "success").increment()
            let written: Bool
            if options.keepOnSuccess {
                let kept = self.transition(
                    .replaySucceeded(keep: true),
                    letter,
                    actor: options.actor,
                    operation: operation
                ).letter
                written = await self.writeReplayOutcome(
                    .release(kept),
                    recording: record(.succeeded),
                    of: letter,
                    "keep a replayed letter",
                    owner: owner,
                    run.writes
                )
            } else {
                written = await self.writeReplayOutcome(
                    .complete(id: letter.id),
                    recording: record(.succeeded),
                    of: letter,
                    "remove a replayed letter",
                    owner: owner,
                    run.writes
                )
            }
            // Not written: the letter is still stored as it was and runs again, so it counts as skipped.
            if !written { tally.withLock { $0.succeeded -= 1 } }
        case .failure(let error as ReplayStoppedError):
            // Not the letter's failure: it is handed back unchanged and the replay stops.
            tally.withLock { report in
                if report.stoppedByOperator == nil { report.stoppedByOperator = error.message }
            }
            slots.release()
            _ = await self.writeReplayOutcome(
                .release(letter),
                recording: nil,
                of: letter,
                "hand back a letter",
                owner: owner,
                run.writes
            )
        case .failure(let error):
            let reason = self.configuration.classifier.classify(error)
            let failed = self.transition(
                .replayFailed(CapturedError(error), reason: reason),
                letter,
                actor: options.actor,
                operation: operation
            ).letter
            tally.withLock { report in
                report.failed += 1
                if failed.status == .parked { report.parked += 1 }
                report.consecutiveFailures += 1
                if let max = options.maxConsecutiveFailures, report.consecutiveFailures >= max,
                    !report.stoppedByCircuit
                {
                    report.stoppedByCircuit = true
                }
            }
            slots.release()
            let written = await self.writeReplayOutcome(
                .release(failed),
                recording: record(failed.status == .parked ? .parked : .failed, failed),
                of: letter,
                "record a failed replay",
                owner: owner,
                run.writes
            )
            self.metrics.counter("dlq_replays_total", "source", letter.source, "outcome", "failure").increment()
            if !written {
                tally.withLock { report in
                    report.failed -= 1
                    if failed.status == .parked { report.parked -= 1 }
                }
            } else if failed.status == .parked {
                self.emit(.parked, id: failed.id, source: failed.source, status: .parked)
            }
        }
    }
}

/// Where a replay's letters come from: a filter (a store that keeps no operations), or its operation's
/// frozen set.
enum ReplaySource: Sendable {
    case filter(DeadLetterFilter)
    case operation(String)
}

/// The shared state of one replay run.
struct ReplayRun: Sendable {
    let source: ReplaySource
    /// The replay's operation id.
    let operation: String
    /// The owner of its leases: the operation, so that a resumed replay takes back letters its stopped
    /// process still held.
    let owner: String
    let lease: Duration
    let tally: Locked<ReplayReport>
    /// Outcomes not yet written to the operation.
    let outcomes: Locked<[DeadLetterOperationLetter]>
    /// Set when the operation was cancelled: no further letter starts.
    let cancelled: ReplayFlag
    /// Its outcomes (with their operation records) on their way to the store.
    let writes: ReplayWrites
}

/// Spaces starts `1/rate` seconds apart on the injected clock.
final class RateLimiter: Sendable {
    private let interval: Duration?
    private let clock: any DeadLetterClock
    private let next = PThreadLock<Date?>(nil)

    init(rate: Double?, clock: any DeadLetterClock) {
        self.interval = rate.map { Duration.nanoseconds(Int64((1e9 / $0).rounded())) }
        self.clock = clock
    }

    /// Waits for the next slot.
    func acquire() async throws {
        guard let interval = self.interval else { return }
        let now = self.clock.now()
        let wait: Duration = self.next.withLock { next in
            let slot = max(next ?? now, now)
            next = slot.adding(interval)
            let delta = slot.timeIntervalSince(now)
            return .nanoseconds(Int64((delta * 1e9).rounded()))
        }
        if wait > .zero { try await self.clock.sleep(for: wait) }
    }
}
