import CoreMetrics
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterQueue {
    /// One pass over the replay's letters, one at a time in the pass's own task, with their store writes
    /// gathered and made once per page: the pass of a replay at concurrency 1 on a store that ``writesDirectly``
    /// (the memory store), whose writes never suspend, so that a child task, a slot and a write per letter
    /// would only add their cost.
    ///
    /// The semantics are those of the concurrent pass: the report counts a letter's outcome as soon as its
    /// handler returns (so the circuit, a cancel, Ctrl-C or a ``ReplayStoppedError`` stop the replay before the
    /// next letter starts), `progress` gets the report after each letter, and a letter stays leased until its
    /// outcome is written, with its operation record in the same ``DeadLetterStore/write(_:owner:recording:)``
    /// call. The outcomes of a page are written before the next page is claimed (and before the pass returns),
    /// or sooner when the oldest has waited ``replayInlineFlushInterval``. A letter whose write finds its lease
    /// gone counts as skipped, as in the concurrent pass.
    ///
    /// Measured (`dlq-benchmarks --profile-memory-replay 100000 1`, release, 2 shared cores): see
    /// Benchmarks/RESULTS.md.
    func replayInlinePass(
        _ run: ReplayRun,
        limit matched: Int,
        options: ReplayOptions,
        progress: (@Sendable (ReplayReport) -> Void)?,
        handler: Handler
    ) async throws {
        let tally = run.tally
        let limiter = RateLimiter(rate: options.rate, clock: self.clock)
        let limited = options.rate != nil
        let batchSize = self.replayBatchSize(run, options)
        var pending = ReplayPendingWrites()
        var seen = 0
        var stop = false
        // Whether the report says stop (the circuit, or a `ReplayStoppedError`): only this pass's outcomes set
        // it, so it is read from each outcome (under the lock that counts it) instead of locking the report
        // again before each letter.
        var stopRequested = tally.withLock { $0.stoppedByCircuit || $0.stoppedByOperator != nil }
        var failure: (any Error)?
        var batch: ReplayBatch?
        do {
            // Stores read a limit below 1 as 1: with nothing matched, nothing is claimed.
            if matched > 0 { batch = try await self.replayBatch(run, after: nil, limit: min(batchSize, matched)) }
        } catch is CancellationError {
            batch = nil
        } catch {
            failure = error
        }
        while var current = batch {
            batch = nil
            seen += current.count
            // Each letter is moved out of the page, not copied: a copy retained and released every field of every
            // letter, and the page's array then destroyed them again (`for letter in` a page: 16% of a memory
            // replay's samples, perf, 300,000 letters). The page is reversed in place (its letters moved bitwise)
            // and taken from its end: swapping an empty letter in instead retained and released the empty
            // letter's eleven fields twice, 34 of the 170 reference-count calls a replayed letter made
            // (`perf probe` on `swift_retain` / `swift_release`, 10,000 letters).
            current.claimed.withUnsafeMutableBufferPointer { $0.reverse() }
            while let letter = current.claimed.popLast() {
                if stop {
                    pending.handBack(letter)
                    continue
                }
                if self.isPoisoned(letter) {
                    await self.parkPoisoned(letter, run: run, options: options)
                    continue
                }
                if stopRequested || self.isCancelled(run) || Task.isCancelled {
                    stop = true
                    pending.handBack(letter)
                    continue
                }
                // A cancel that came while the rate limiter waited stops the letter too (without a rate, it
                // does not wait).
                if limited {
                    do { try await limiter.acquire() } catch {
                        stop = true
                        pending.handBack(letter)
                        continue
                    }
                    if self.isCancelled(run) {
                        stop = true
                        pending.handBack(letter)
                        continue
                    }
                }
                // The handler is awaited here and its outcome taken synchronously: an async function around
                // both cost a task frame per letter.
                var failure: (any Error)?
                do {
                    try await handler(letter)
                } catch {
                    failure = error
                }
                let now: Date
                (now, stopRequested) = self.replayInlineOutcome(letter, failure, run: run, options: options, &pending)
                if let first = pending.firstAt, now.timeIntervalSince(first) >= Self.replayInlineFlushInterval {
                    await self.flushInline(&pending, run: run)
                }
                if let progress { progress(tally.withLock { $0 }) }
            }
            await self.flushInline(&pending, run: run)
            guard !current.isLast, seen < matched, !stop, !Task.isCancelled else { break }
            do {
                batch = try await self.replayBatch(run, after: current.cursor, limit: min(batchSize, matched - seen))
            } catch is CancellationError {
                // Ctrl-C while the next page was read: stop as if it came between two letters.
                break
            } catch {
                failure = error
            }
        }
        await self.flushInline(&pending, run: run)
        if let failure { throw failure }
    }

    /// How long (in seconds) a letter's outcome may wait for the rest of its page before the outcomes gathered
    /// are written: slow handlers do not keep finished letters leased and in the store for long.
    static var replayInlineFlushInterval: Double { 0.1 }

    /// Gathers the outcome of a letter whose handler returned (`failure` is `nil`) or threw into `pending`;
    /// counts it in the report.
    /// - Returns: the time its outcome was taken, and whether the report now says stop.
    private func replayInlineOutcome(
        _ letter: DeadLetter,
        _ failure: (any Error)?,
        run: ReplayRun,
        options: ReplayOptions,
        _ pending: inout ReplayPendingWrites
    ) -> (Date, stop: Bool) {
        let tally = run.tally
        let now = self.clock.now()
        // The letter's outcome in the replay's operation, written with the letter (see replayOne).
        typealias Outcome = DeadLetterOperationLetter.Outcome
        func record(_ outcome: Outcome, _ failed: DeadLetter? = nil) -> DeadLetterOperationLetter? {
            guard case .operation = run.source else { return nil }
            return DeadLetterOperationLetter(
                operation: run.operation,
                letterID: letter.id,
                outcome: outcome,
                at: now,
                errorType: failed?.errorType,
                errorMessage: failed?.errorMessage
            )
        }
        let stop: Bool
        switch failure {
        case nil:
            stop = tally.withLock { report in
                report.succeeded += 1
                report.consecutiveFailures = 0
                return report.stoppedByCircuit || report.stoppedByOperator != nil
            }
            if options.keepOnSuccess {
                let kept = self.transition(
                    .replaySucceeded(keep: true),
                    letter,
                    actor: options.actor,
                    operation: run.operation
                ).letter
                pending.append(.release(kept), record(.succeeded), .succeeded, source: letter.source, at: now)
            } else {
                pending.append(.complete(id: letter.id), record(.succeeded), .succeeded, source: letter.source, at: now)
            }
        case let stopped as ReplayStoppedError:
            // Not the letter's failure: it is handed back unchanged and the replay stops.
            stop = tally.withLock { report in
                if report.stoppedByOperator == nil { report.stoppedByOperator = stopped.message }
                return true
            }
            pending.handBack(letter)
        case let error?:
            let reason = self.configuration.classifier.classify(error)
            let failed = self.transition(
                .replayFailed(CapturedError(error), reason: reason),
                letter,
                actor: options.actor,
                operation: run.operation
            ).letter
            let parked = failed.status == .parked
            stop = tally.withLock { report in
                report.failed += 1
                if parked { report.parked += 1 }
                report.consecutiveFailures += 1
                if let max = options.maxConsecutiveFailures, report.consecutiveFailures >= max {
                    report.stoppedByCircuit = true
                }
                return report.stoppedByCircuit || report.stoppedByOperator != nil
            }
            pending.append(
                .release(failed),
                record(parked ? .parked : .failed, failed),
                parked ? .parked : .failed,
                source: letter.source,
                at: now
            )
        }
        return (now, stop)
    }

    /// Writes the outcomes gathered in one store call, then counts them (`dlq_replays_total`, once per source
    /// and outcome), corrects the report for those whose lease was gone, logs the writes that failed and
    /// emits the parks.
    private func flushInline(_ pending: inout ReplayPendingWrites, run: ReplayRun) async {
        guard !pending.outcomes.isEmpty else { return }
        defer { pending.removeAll() }
        var written: [Bool]
        var failure: (any Error)?
        do {
            written = try await self.write(pending.outcomes, owner: run.owner, recording: pending.records)
        } catch {
            failure = error
            written = []
        }
        if written.count != pending.outcomes.count { written = Array(repeating: false, count: pending.outcomes.count) }
        var lost = (succeeded: 0, failed: 0, parked: 0)
        var counts = ReplayMetricCounts(self.metrics)
        for index in pending.outcomes.indices {
            let kind = pending.kinds[index]
            switch kind {
            case .succeeded: counts.add(pending.sources[index], success: true)
            case .failed, .parked: counts.add(pending.sources[index], success: false)
            case .handedBack: break
            }
            if written[index] {
                if kind == .parked, case .release(let letter) = pending.outcomes[index] {
                    self.emit(.parked, id: letter.id, source: letter.source, status: .parked)
                }
                continue
            }
            switch kind {
            case .succeeded: lost.succeeded += 1
            case .failed: lost.failed += 1
            case .parked:
                lost.failed += 1
                lost.parked += 1
            case .handedBack: break
            }
            let action: String
            switch kind {
            case .succeeded: action = "remove a replayed letter"
            case .failed, .parked: action = "record a failed replay"
            case .handedBack: action = "hand back a letter"
            }
            if let failure {
                self.logger.error(
                    "could not \(action); it stays leased and runs again when its lease ends",
                    metadata: ["dlq.message.id": "\(pending.outcomes[index].id)", "error": "\(failure)"]
                )
            } else if kind != .handedBack {
                self.logger.info(
                    "lease lost before the outcome was written",
                    metadata: ["dlq.message.id": "\(pending.outcomes[index].id)", "dlq.action": "\(action)"]
                )
            }
        }
        counts.flush()
        if lost.succeeded + lost.failed > 0 {
            // Not written: the letter is still stored as it was and runs again, so it counts as skipped.
            run.tally.withLock { report in
                report.succeeded -= lost.succeeded
                report.failed -= lost.failed
                report.parked -= lost.parked
            }
        }
    }
}

/// A replay's outcomes waiting for their store write (``DeadLetterQueue/replayInlinePass(_:limit:options:progress:handler:)``),
/// in parallel arrays that keep their capacity from page to page.
struct ReplayPendingWrites {
    /// What a gathered outcome is, for the counts after its write.
    enum Kind {
        case succeeded
        case failed
        case parked
        /// Claimed and not run (the replay stopped), or handed back by a ``ReplayStoppedError``.
        case handedBack
    }

    var outcomes: [DeadLetterOutcome] = []
    var records: [DeadLetterOperationLetter?] = []
    var kinds: [Kind] = []
    /// The letters' sources, for `dlq_replays_total`.
    var sources: [String] = []
    /// When the oldest outcome waiting was taken.
    var firstAt: Date?

    /// Adds an outcome; its values are moved in, not copied.
    mutating func append(
        _ outcome: consuming DeadLetterOutcome,
        _ record: consuming DeadLetterOperationLetter?,
        _ kind: Kind,
        source: String,
        at: Date
    ) {
        self.outcomes.append(outcome)
        self.records.append(record)
        self.kinds.append(kind)
        self.sources.append(source)
        if self.firstAt == nil { self.firstAt = at }
    }

    /// A letter given back unchanged, with no outcome for the operation: it stays pending there.
    mutating func handBack(_ letter: DeadLetter) {
        self.outcomes.append(.release(letter))
        self.records.append(nil)
        self.kinds.append(.handedBack)
        self.sources.append(letter.source)
    }

    mutating func removeAll() {
        self.outcomes.removeAll(keepingCapacity: true)
        self.records.removeAll(keepingCapacity: true)
        self.kinds.removeAll(keepingCapacity: true)
        self.sources.removeAll(keepingCapacity: true)
        self.firstAt = nil
    }
}

/// `dlq_replays_total` counted over a batch: consecutive letters of one source add up, and each counter is
/// looked up once per run of a source instead of once per letter.
struct ReplayMetricCounts {
    private let metrics: DeadLetterMetrics
    private var source: String?
    private var successes = 0
    private var failures = 0

    init(_ metrics: DeadLetterMetrics) {
        self.metrics = metrics
    }

    mutating func add(_ source: String, success: Bool) {
        if source != self.source {
            self.flush()
            self.source = source
        }
        if success { self.successes += 1 } else { self.failures += 1 }
    }

    /// Increments the counters by what was added since the last flush.
    mutating func flush() {
        guard let source = self.source else { return }
        if self.successes > 0 {
            self.metrics.counter("dlq_replays_total", "source", source, "outcome", "success")
                .increment(by: self.successes)
        }
        if self.failures > 0 {
            self.metrics.counter("dlq_replays_total", "source", source, "outcome", "failure")
                .increment(by: self.failures)
        }
        (self.successes, self.failures) = (0, 0)
    }
}
