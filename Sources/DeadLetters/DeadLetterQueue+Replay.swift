import CoreMetrics
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How ``DeadLetterQueue/replay(_:options:progress:handler:)`` runs.
public struct ReplayOptions: Sendable, Hashable {
    /// At most this many letters started per second; `nil` for no limit. Default `nil`.
    public var rate: Double?
    /// At most this many letters at once. Default 1.
    public var concurrency: Int
    /// Only count the letters and return a sample. Default `false`.
    public var dryRun: Bool
    /// Keep a letter whose replay succeeded (with a history entry) instead of removing it. Default `false`.
    public var keepOnSuccess: Bool
    /// Stop the replay (its circuit opens) after this many failures in a row; `nil` never stops. Default 10.
    public var maxConsecutiveFailures: Int?
    /// At most this many letters, oldest first; `nil` for all. Default `nil`.
    public var limit: Int?
    /// How many letters a dry run returns as a sample. Default 5.
    public var sampleSize: Int
    /// Who runs the replay, for the letters' history (`DLQ_ACTOR`, `user@host`, a token's name); `nil` for
    /// this instance. Default `nil`.
    public var actor: String?
    /// How long each letter claimed by the replay stays leased; a replay that dies leaves its letters to be
    /// claimed again after it (counted as abandoned claims). `nil` for the queue's `leaseDuration`.
    /// Default `nil`.
    public var leaseDuration: Duration?

    /// Creates options; every parameter has the default stated on its property.
    public init(
        rate: Double? = nil,
        concurrency: Int = 1,
        dryRun: Bool = false,
        keepOnSuccess: Bool = false,
        maxConsecutiveFailures: Int? = 10,
        limit: Int? = nil,
        sampleSize: Int = 5
    ) {
        self.rate = rate
        self.concurrency = concurrency
        self.dryRun = dryRun
        self.keepOnSuccess = keepOnSuccess
        self.maxConsecutiveFailures = maxConsecutiveFailures
        self.limit = limit
        self.sampleSize = sampleSize
        self.actor = nil
        self.leaseDuration = nil
    }

    /// Checks the values.
    /// - Throws: ``DeadLetterError`` `invalidConfiguration` naming the field.
    public func validate() throws {
        if let rate = self.rate, !(rate > 0), rate.isFinite || rate.isNaN {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be a positive number", field: "rate")
        }
        if self.concurrency < 1 {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be at least 1", field: "concurrency")
        }
        if let max = self.maxConsecutiveFailures, max < 1 {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "must be at least 1",
                field: "maxConsecutiveFailures"
            )
        }
        if let limit = self.limit, limit < 0 {
            throw DeadLetterError(code: .invalidConfiguration, message: "must not be negative", field: "limit")
        }
        if let lease = self.leaseDuration, lease <= .zero {
            throw DeadLetterError(code: .invalidConfiguration, message: "must be positive", field: "leaseDuration")
        }
    }
}

/// Thrown by a replay's handler to stop the replay for a reason that is not the letter's (the operator's
/// command is missing, say): the letter is handed back unchanged, no further letter starts, and
/// ``DeadLetterQueue/replay(_:options:progress:handler:)`` throws this error once every claimed letter is
/// handed back.
public struct ReplayStoppedError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the replay stopped, in words.
    public var message: String

    /// What the replay had done when it stopped; set by the replay when it throws the error.
    public var report: ReplayReport?

    /// Creates the error.
    public init(_ message: String) { self.message = message }

    public var description: String { self.message }
}

/// What a replay did.
public struct ReplayReport: Sendable, Hashable {
    /// Letters the filter selected when the replay started.
    public var matched: Int
    /// Letters whose handler succeeded.
    public var succeeded: Int
    /// Letters whose handler failed (their new error is recorded).
    public var failed: Int
    /// Letters not run: taken by another worker, gone, or left when the replay stopped.
    public var skipped: Int
    /// Letters parked by this replay: after too many failed replays (counted in ``failed`` too), or because
    /// their claims ended without an outcome too often (poison letters, counted in ``skipped``: they did not
    /// run).
    public var parked: Int
    /// The id the replay's history entries share (empty for a dry run).
    public var operation: String = ""
    /// Whether the replay stopped early because too many letters failed in a row.
    public var stoppedByCircuit: Bool
    /// Whether this was a dry run.
    public var dryRun: Bool
    /// A dry run's sample of the letters it would replay.
    public var sample: [DeadLetter]
    var consecutiveFailures = 0
    /// Set when a handler threw ``ReplayStoppedError``: no further letter starts.
    var stoppedByOperator: String?

    /// Creates a report.
    public init(
        matched: Int = 0,
        succeeded: Int = 0,
        failed: Int = 0,
        skipped: Int = 0,
        parked: Int = 0,
        stoppedByCircuit: Bool = false,
        dryRun: Bool = false,
        sample: [DeadLetter] = []
    ) {
        self.matched = matched
        self.succeeded = succeeded
        self.failed = failed
        self.skipped = skipped
        self.parked = parked
        self.stoppedByCircuit = stoppedByCircuit
        self.dryRun = dryRun
        self.sample = sample
    }
}

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
        let filter = self.excludingParked(filter)
        var matched = try await self.count(filter)
        if let limit = options.limit { matched = min(matched, limit) }
        if options.dryRun {
            let sample = try await self.store.page(
                filter,
                after: nil,
                limit: max(1, min(options.sampleSize, max(matched, 1)))
            )
            return ReplayReport(matched: matched, dryRun: true, sample: Array(sample.letters.prefix(matched)))
        }
        var start = ReplayReport(matched: matched)
        start.operation = self.newOperationID()
        let operation = start.operation
        let leaseDuration = options.leaseDuration ?? self.configuration.leaseDuration
        let tally = Locked(start)
        let limiter = RateLimiter(rate: options.rate, clock: self.clock)
        let owner = self.configuration.instanceID
        // A letter holds a slot while its handler runs; its store write (removal or new state) happens after it
        // gives the slot back, so the next letter starts without waiting for a commit and concurrent writes
        // share commits. At most `concurrency + maxPendingWrites` letters are started and not yet written; the
        // replay returns only once every write is done.
        let slots = ReplaySlots(options.concurrency)
        let maxLive = options.concurrency + Self.replayMaxPendingWrites
        // The outcomes that wait while a write is in flight are written together, in one store call. Two
        // writes at a time: measured on PostgreSQL (2,000 failing letters, concurrency 8), one at a time cut
        // the commits from about 1,400 to 90 but took longer than unbatched (2.2-3.1 s against 2.1 s); two
        // took 1.7 s with about 110 commits.
        let writes = ReplayWrites(maxLeaders: 2, maxBatch: Self.replayMaxPendingWrites)
        // Letters are leased when their page is claimed. With a rate limit, a page is as large as half a lease
        // lets through, and the next page is claimed only when this one has started, so no lease runs out
        // before its letter starts.
        var batchSize = self.configuration.batchSize
        if let rate = options.rate {
            let leaseSeconds = Double(leaseDuration.components.seconds)
            batchSize = max(1, min(batchSize, Int(min(rate * leaseSeconds / 2, Double(Int32.max)))))
        }
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
                    batch = try await self.replayBatch(
                        filter,
                        after: nil,
                        limit: min(batchSize, matched),
                        lease: leaseDuration
                    )
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
                    more && prefetch
                    ? self.replayBatch(filter, after: current.cursor, limit: limit, lease: leaseDuration) : nil
                for letter in current.claimed {
                    if stop {
                        handBack.append(letter)
                        continue
                    }
                    if self.isPoisoned(letter) {
                        // A poison letter: parked instead of run.
                        live += 1
                        group.addTask {
                            if await self.parkPoisoned(letter, owner: owner, actor: options.actor, operation: operation)
                            {
                                tally.withLock { $0.parked += 1 }
                            }
                        }
                        continue
                    }
                    while live >= maxLive, await group.next() != nil { live -= 1 }
                    await slots.acquire()
                    if tally.withLock({ $0.stoppedByCircuit || $0.stoppedByOperator != nil }) || Task.isCancelled {
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
                    live += 1
                    group.addTask {
                        await self.replayOne(
                            letter,
                            options: options,
                            tally: tally,
                            slots: slots,
                            writes: writes,
                            handler: handler
                        )
                        if let progress { progress(tally.withLock { $0 }) }
                    }
                }
                do {
                    batch = try await following
                    if more, !prefetch, !stop, !Task.isCancelled {
                        batch = try await self.replayBatch(
                            filter,
                            after: current.cursor,
                            limit: limit,
                            lease: leaseDuration
                        )
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
                        _ = try await self.write(.release(letter), through: writes)
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
        if let failure {
            self.logger.error("replay stopped: the store failed", metadata: ["error": "\(failure)"])
            throw failure
        }
        var report = tally.withLock { $0 }
        report.skipped = max(0, report.matched - report.succeeded - report.failed)
        if let message = report.stoppedByOperator {
            report.stoppedByOperator = nil
            var stopped = ReplayStoppedError(message)
            stopped.report = report
            self.logger.info("replay stopped by its handler", metadata: ["error": "\(message)"])
            throw stopped
        }
        self.emit(.replayed, count: report.succeeded)
        self.logger.info(
            "replay finished",
            metadata: [
                "dlq.replay.matched": "\(report.matched)", "dlq.replay.succeeded": "\(report.succeeded)",
                "dlq.replay.failed": "\(report.failed)", "dlq.replay.skipped": "\(report.skipped)",
            ]
        )
        return report
    }

    /// Reads the page of letters after `cursor` and claims those that are free; `nil` when the page is empty.
    private func replayBatch(
        _ filter: DeadLetterFilter,
        after cursor: String?,
        limit: Int,
        lease: Duration
    ) async throws -> ReplayBatch? {
        let page = try await self.store.page(filter, after: cursor, limit: limit)
        guard let last = page.letters.last else { return nil }
        let now = self.clock.now()
        let owner = self.configuration.instanceID
        // Claimed even when the replay is cancelled meanwhile: it then hands the letters back.
        let claimed = try await self.durably { store in
            try await store.claim(ids: page.letters.map(\.id), now: now, owner: owner, leaseUntil: now.adding(lease))
        }
        return ReplayBatch(claimed: claimed, cursor: last.id, count: page.letters.count, isLast: page.nextCursor == nil)
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
        options: ReplayOptions,
        tally: Locked<ReplayReport>,
        slots: ReplaySlots,
        writes: ReplayWrites,
        handler: Handler
    ) async {
        let operation = tally.withLock { $0.operation }
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
            self.metrics.counter("dlq_replays_total", [("source", letter.source), ("outcome", "success")]).increment()
            let written: Bool
            if options.keepOnSuccess {
                let kept = self.transition(
                    .replaySucceeded(keep: true),
                    letter,
                    actor: options.actor,
                    operation: operation
                ).letter
                written = await self.writeReplayOutcome(.release(kept), of: letter, "keep a replayed letter", writes)
            } else {
                written = await self.writeReplayOutcome(
                    .complete(id: letter.id),
                    of: letter,
                    "remove a replayed letter",
                    writes
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
            _ = await self.writeReplayOutcome(.release(letter), of: letter, "hand back a letter", writes)
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
            let written = await self.writeReplayOutcome(.release(failed), of: letter, "record a failed replay", writes)
            self.metrics.counter("dlq_replays_total", [("source", letter.source), ("outcome", "failure")]).increment()
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
