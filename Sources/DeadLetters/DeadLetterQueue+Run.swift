import CoreMetrics
import Logging
public import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterQueue: Service, CustomStringConvertible {
    public var description: String { "DeadLetterQueue" }

    /// Runs delayed retries and expiry until graceful shutdown or cancellation.
    ///
    /// It claims due letters of the sources that have a handler and a circuit that lets calls through, in
    /// batches, running at most `concurrency` at once; a success removes the letter, a failure reschedules it
    /// with backoff or marks it dead. It expires letters to the archive on an adaptive interval.
    ///
    /// At graceful shutdown it stops claiming and gives in-flight work `shutdownGracePeriod` to finish; work
    /// still running then is cancelled and its letters stay in the store, claimable again. `add` and `process`
    /// keep working during and after shutdown: every letter they accept is stored.
    public func run() async throws {
        let alreadyRunning = self.state.withLock { state in
            defer { state.running = true }
            return state.running
        }
        guard !alreadyRunning else {
            throw DeadLetterError(code: .invalidConfiguration, message: "the queue is already running")
        }
        self.completions.withLock { $0 = 0 }
        defer {
            self.state.withLock {
                $0.running = false
                $0.shuttingDown = false
            }
        }
        self.logger.info("dead-letter queue started")
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.workLoop() }
                group.addTask { await self.cleanupLoop() }
                group.addTask { await self.instanceLoop() }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.state.withLock { $0.shuttingDown = true }
            self.wakeups.signal()
            self.cleanupWakeups.signal()
            self.instanceWakeups.signal()
        }
        self.logger.info("dead-letter queue stopped")
    }

    var isShuttingDown: Bool {
        self.state.withLock { $0.shuttingDown } || Task.isCancelled
    }

    private enum WorkResult: Sendable {
        case finished
        case graceExpired
    }

    /// Claims and runs due letters until shutdown, then drains within the grace period.
    func workLoop() async {
        await withTaskGroup(of: WorkResult.self) { group in
            var inFlight = 0
            while !self.isShuttingDown {
                let free = self.configuration.concurrency - inFlight
                if free == 0 {
                    if await group.next() != nil {
                        inFlight -= 1
                        self.completions.withLock { $0 = max(0, $0 - 1) }
                    }
                    continue
                }
                // The idle wait below ends a poll interval after the claim, not after the wait begins, so a
                // clock that moves meanwhile cannot make the loop oversleep a letter that became due.
                let claimedAt = self.clock.now()
                let claimed = await self.claimDue(limit: min(free, self.configuration.batchSize))
                for letter in claimed {
                    inFlight += 1
                    group.addTask {
                        await self.execute(letter)
                        return .finished
                    }
                }
                if claimed.isEmpty {
                    if inFlight > 0 {
                        // Wait for a slot or for new work, whichever first.
                        await self.wakeups.wait(
                            until: claimedAt.adding(self.configuration.pollInterval),
                            clock: self.clock
                        )
                        while inFlight > 0, let result = await self.nextIfReady(&group) {
                            _ = result
                            inFlight -= 1
                        }
                    } else {
                        await self.wakeups.wait(
                            until: claimedAt.adding(self.configuration.pollInterval),
                            clock: self.clock
                        )
                    }
                }
            }
            guard inFlight > 0 else { return }
            self.logger.info("draining in-flight letters", metadata: ["dlq.count": "\(inFlight)"])
            let grace = self.configuration.shutdownGracePeriod
            let clock = self.clock
            group.addTask {
                try? await clock.sleep(for: grace)
                return .graceExpired
            }
            while let result = await group.next() {
                switch result {
                case .finished:
                    inFlight -= 1
                    if inFlight == 0 {
                        group.cancelAll()
                        return
                    }
                case .graceExpired:
                    if inFlight > 0 {
                        self.logger.info(
                            "grace period over; cancelling in-flight letters, which stay in the store",
                            metadata: ["dlq.count": "\(inFlight)"]
                        )
                        group.cancelAll()
                    }
                }
            }
        }
    }

    /// Collects one finished child if one is ready, without waiting long.
    private func nextIfReady(_ group: inout TaskGroup<WorkResult>) async -> WorkResult? {
        // A finished child is returned at once; otherwise a yield-sized wait is not possible with TaskGroup,
        // so the loop relies on `execute` signalling the wakeup when it finishes.
        guard self.finishedSinceLastCheck() else { return nil }
        return await group.next()
    }

    private func finishedSinceLastCheck() -> Bool {
        self.completions.withLock { count in
            guard count > 0 else { return false }
            count -= 1
            return true
        }
    }

    /// Claims due letters of the sources that have a handler and whose circuit lets calls through.
    func claimDue(limit: Int) async -> [DeadLetter] {
        let sources = self.handlers.withLock { Array($0.keys) }.filter { source in
            self.breaker(for: source)?.allowsClaims ?? true
        }
        guard !sources.isEmpty, limit > 0 else { return [] }
        let now = self.clock.now()
        let owner = self.configuration.instanceID
        let leaseUntil = now.adding(self.configuration.leaseDuration)
        do {
            return try await self.durably { store in
                try await self.metrics.measure("claim") {
                    try await store.claimDue(
                        now: now,
                        limit: limit,
                        owner: owner,
                        leaseUntil: leaseUntil,
                        sources: sources.sorted()
                    )
                }
            }
        } catch {
            self.logger.error("could not claim due letters", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// Runs one claimed letter through its source's handler and records the outcome.
    ///
    /// A letter whose claims ended without an outcome too often (a poison letter) is parked instead.
    func execute(_ letter: DeadLetter) async {
        defer {
            self.completions.withLock { $0 += 1 }
            self.wakeups.signal()
        }
        let owner = self.configuration.instanceID
        // The redrive (an operation) that handed the letter back, if this attempt is its outcome.
        let handedBackBy = DeadLetterLifecycle.handedBack(letter)?.operation
        if self.isPoisoned(letter) {
            await self.parkPoisoned(letter, owner: owner, operation: handedBackBy)
            return
        }
        guard let handler = self.handlers.withLock({ $0[letter.source] }) else {
            _ = try? await self.durably { try await $0.release(letter, owner: owner) }
            return
        }
        let breaker = self.breaker(for: letter.source)
        if let breaker, !breaker.tryAcquire() {
            // The circuit opened meanwhile: hand the letter back, due again when the circuit may allow it. Not
            // an event of the letter's life: it did not run.
            var unchanged = letter
            unchanged.nextAttemptAt = self.clock.now().adding(self.configuration.pollInterval).roundedToMilliseconds
            _ = try? await self.durably { [unchanged] in try await $0.release(unchanged, owner: owner) }
            return
        }
        do {
            try await handler(letter)
            breaker?.recordSuccess()
            if let handedBackBy {
                // The redrive's outcome for this letter is written with its removal, in one transaction.
                let done = DeadLetterOperationLetter(
                    operation: handedBackBy,
                    letterID: letter.id,
                    outcome: .succeeded,
                    at: self.clock.now()
                )
                _ = try await self.metrics.measure("complete") {
                    try await self.write([.complete(id: letter.id)], owner: owner, recording: [done])
                }
            } else {
                _ = try await self.durably { store in
                    try await self.metrics.measure("complete") { try await store.complete(id: letter.id, owner: owner) }
                }
            }
            self.metrics.counter("dlq_retries_total", [("source", letter.source), ("outcome", "success")]).increment()
            self.emit(.recovered, id: letter.id, source: letter.source)
        } catch {
            if error is CancellationError, Task.isCancelled {
                // Shutdown cut the attempt short: not the letter's fault; hand it back unchanged.
                _ = try? await self.durably { try await $0.release(letter, owner: owner) }
                return
            }
            breaker?.recordFailure()
            await self.recordRetryFailure(letter, error: error)
        }
    }

    /// A delayed attempt failed: the lifecycle reschedules it with backoff or marks it dead; an attempt after
    /// a redrive counts as a failed redrive and may park the letter.
    func recordRetryFailure(_ letter: DeadLetter, error: any Error) async {
        let reason = self.configuration.classifier.classify(error)
        let transition = self.transition(.attemptFailed(CapturedError(error), reason: reason), letter)
        let updated = transition.letter
        let done = Self.operationOutcome(of: transition, at: self.clock.now())
        do {
            let owner = self.configuration.instanceID
            // A redrive's outcome for this letter, if it has one, is written with the letter, in one transaction.
            let written = try await self.metrics.measure("release") {
                try await self.write([.release(updated)], owner: owner, recording: [done]).first ?? false
            }
            if !written {
                self.logger.info(
                    "lease lost before the outcome was written",
                    metadata: ["dlq.message.id": "\(letter.id)"]
                )
                return
            }
        } catch {
            self.logger.error(
                "could not record a failed retry",
                metadata: ["dlq.message.id": "\(letter.id)", "error": "\(error)"]
            )
            return
        }
        let outcome = updated.status == .retrying ? "rescheduled" : "exhausted"
        self.metrics.counter("dlq_retries_total", [("source", letter.source), ("outcome", outcome)]).increment()
        switch updated.status {
        case .retrying:
            self.emit(.retried, id: updated.id, source: updated.source, status: .retrying)
        case .dead:
            self.metrics.counter(
                "dlq_dead_letters_total",
                [("source", updated.source), ("reason", updated.reason.rawValue)]
            ).increment()
            self.logger.info(
                "letter is dead",
                metadata: ["dlq.message.id": "\(updated.id)", "dlq.source": "\(updated.source)"]
            )
            self.emit(.dead, id: updated.id, source: updated.source, status: .dead)
        case .parked:
            self.emit(.parked, id: updated.id, source: updated.source, status: .parked)
        }
    }
}
