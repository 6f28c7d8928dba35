import CoreMetrics
import Logging

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension DeadLetterQueue {
    /// Applies a lifecycle event to a letter, with the queue's clock and random source; the actor defaults to
    /// this instance.
    func transition(
        _ event: DeadLetterLifecycle.Event,
        _ letter: DeadLetter,
        actor: String? = nil,
        operation: String? = nil
    ) -> DeadLetterLifecycle.Transition {
        let context = DeadLetterLifecycle.Context(
            now: self.clock.now(),
            actor: actor ?? self.configuration.instanceID,
            operation: operation
        )
        let lifecycle = self.configuration.lifecycle
        return self.withRandom { rng in lifecycle.apply(event, to: letter, context: context, using: &rng) }
    }

    /// A new operation id, time-ordered like letters' ids: everything one redrive, replay, park or purge
    /// records carries it. Pass it to an action (`operation:`) to read its record afterwards.
    public func newOperationID() -> String {
        self.ids.next(at: self.clock.now())
    }

    /// Whether a claimed letter is a poison letter: its claims ended without an outcome
    /// `parkAfterAbandonedClaims` times and it is not parked yet (a parked letter replayed on purpose runs).
    func isPoisoned(_ letter: DeadLetter) -> Bool {
        letter.abandonedClaims >= self.configuration.parkAfterAbandonedClaims && letter.status != .parked
    }

    /// Parks a claimed poison letter (``isPoisoned(_:)``) instead of running it again.
    /// - Returns: whether the park was written; either way the caller does not run the letter (one whose park
    ///   could not be written stays leased until its lease ends).
    @discardableResult
    func parkPoisoned(
        _ letter: DeadLetter,
        owner: String,
        actor: String? = nil,
        operation: String? = nil
    ) async -> Bool {
        let parked = self.transition(.claimAbandoned, letter, actor: actor, operation: operation)
        do {
            let written = try await self.durably { try await $0.write([.release(parked.letter)], owner: owner) }
            if written.first == true {
                if let done = Self.operationOutcome(of: parked, at: self.clock.now()) {
                    await self.recordOutcomes([done])
                }
                self.metrics.counter("dlq_poison_total", [("source", letter.source)]).increment()
                self.logger.warning(
                    "letter parked: its claims ended without an outcome too often",
                    metadata: ["dlq.message.id": "\(letter.id)", "dlq.claims.abandoned": "\(letter.abandonedClaims)"]
                )
                self.emit(.parked, id: letter.id, source: letter.source, status: .parked)
                return true
            }
        } catch {
            self.logger.error(
                "could not park a poison letter",
                metadata: ["dlq.message.id": "\(letter.id)", "error": "\(error)"]
            )
        }
        return false
    }

    /// Claims the letters `filter` selects, page by page, applies `event` to each and writes them back, without
    /// reading or changing their payloads (``DeadLetterStore/changeState(ids:now:owner:leaseUntil:_:)``).
    ///
    /// A letter leased by someone else (being run) is left alone, and so is one that no longer matches the
    /// filter when it is claimed (it failed again and was parked meanwhile, say). With a `record`, each page's
    /// letters join its frozen set before they change (so an outcome reported at once finds them): those left
    /// alone as `skipped`, the changed ones as `pending` or, with `outcome`, as done.
    /// - Returns: the letters as written, without their payloads.
    func changeSelected(
        _ filter: DeadLetterFilter,
        limit: Int?,
        actor: String?,
        operation: String,
        record: DeadLetterOperation? = nil,
        outcome: DeadLetterOperationLetter.Outcome = .pending,
        event: @escaping @Sendable (DeadLetter) -> DeadLetterLifecycle.Event
    ) async throws -> [DeadLetter] {
        let owner = "\(self.configuration.instanceID)/\(operation)"
        var cursor: String?
        var changed: [DeadLetter] = []
        while limit.map({ changed.count < $0 }) ?? true {
            let want = min(500, (limit ?? .max) - changed.count)
            let page = try await self.metrics.measure("page") {
                try await self.store.pageWithoutPayloads(filter, after: cursor, limit: want)
            }
            guard let last = page.letters.last else { break }
            cursor = last.id
            let now = self.clock.now()
            let remaining = (limit ?? .max) - changed.count
            let ids = Array(page.letters.map(\.id).prefix(remaining))
            try await self.addLetters(ids, to: record, outcome: .pending)
            let leaseUntil = now.adding(self.configuration.leaseDuration)
            let written = try await self.durably { store in
                try await self.metrics.measure("release") {
                    try await store.changeState(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil) { letter in
                        guard filter.matches(letter) else { return nil }
                        return self.transition(event(letter), letter, actor: actor, operation: operation).letter
                    }
                }
            }
            if let record {
                let writtenIDs = Set(written.map(\.id))
                let at = self.clock.now()
                await self.recordOutcomes(
                    ids.compactMap { id in
                        let done = writtenIDs.contains(id)
                        if done, outcome == .pending { return nil }
                        return DeadLetterOperationLetter(
                            operation: record.id,
                            letterID: id,
                            outcome: done ? outcome : .skipped,
                            at: at
                        )
                    }
                )
            }
            changed += written
            if page.nextCursor == nil { break }
        }
        return changed
    }

    /// Parks the selected letters now: retries, redrives and replays leave them alone until they are
    /// redriven with a filter that selects `parked`. Each gets a `parked` history entry with its actor.
    /// - Parameters:
    ///   - filter: which letters; parked letters are left as they are.
    ///   - limit: at most this many, oldest first; `nil` for all.
    ///   - dryRun: only count what would be parked.
    ///   - actor: who parks them; this instance by default.
    ///   - message: why, in words, for the history.
    ///   - operation: the id of the operation recorded (``operation(id:)`` reads it); a new one by default.
    /// - Returns: how many letters were (or would be) parked.
    @discardableResult
    public func park(
        _ filter: DeadLetterFilter,
        limit: Int? = nil,
        dryRun: Bool = false,
        actor: String? = nil,
        message: String? = nil,
        operation: String? = nil
    ) async throws -> Int {
        var filter = filter
        filter.statuses = (filter.statuses.isEmpty ? DeadLetterStatus.allCases : filter.statuses).filter {
            $0 != .parked
        }
        if filter.statuses.isEmpty { return 0 }
        if dryRun {
            let count = try await self.count(filter)
            return limit.map { min($0, count) } ?? count
        }
        let operation = operation ?? self.newOperationID()
        let record = await self.beginOperation(
            operation,
            kind: .park,
            filter: filter,
            parameters: DeadLetterOperation.Parameters(limit: limit),
            actor: actor
        )
        let parked = try await self.changeSelected(
            filter,
            limit: limit,
            actor: actor,
            operation: operation,
            record: record,
            outcome: .succeeded
        ) { _ in .parked(message: message) }
        await self.endOperation(record, .finished)
        for letter in parked { self.emit(.parked, id: letter.id, source: letter.source, status: .parked) }
        if !parked.isEmpty { self.logger.info("letters parked", metadata: ["dlq.count": "\(parked.count)"]) }
        return parked.count
    }

    /// Replaces a letter's payload (and content type, when given), keeping the previous payload's size and
    /// SHA-256 in an `edited` history entry; with `redrive`, the letter is also made due now.
    /// - Parameters:
    ///   - id: the letter.
    ///   - payload: the new payload.
    ///   - contentType: the new content type; `nil` keeps the current one.
    ///   - redrive: also hand the letter back to the running service now.
    ///   - actor: who edits it; this instance by default.
    /// - Returns: the letter as written.
    /// - Throws: ``DeadLetterError`` `notFound` when no such letter is stored, `leaseLost` when it is being run
    ///   (leased), or the store's error (a sealed payload without its key among them).
    @discardableResult
    public func edit(
        id: String,
        payload: Data,
        contentType: String? = nil,
        redrive: Bool = false,
        actor: String? = nil
    ) async throws -> DeadLetter {
        // Read first: an unknown id is `notFound`, and a payload sealed with a key that is not configured fails
        // here with `encryption` (a claim would park such a letter instead).
        guard try await self.store.letter(id: id) != nil else {
            throw DeadLetterError(code: .notFound, message: "no dead letter has this id", id: id)
        }
        let operation = self.newOperationID()
        let owner = "\(self.configuration.instanceID)/\(operation)"
        let now = self.clock.now()
        let record = await self.beginOperation(
            operation,
            kind: .edit,
            filter: DeadLetterFilter(ids: [id]),
            actor: actor
        )
        try await self.addLetters([id], to: record, outcome: .pending)
        let leaseUntil = now.adding(self.configuration.leaseDuration)
        let claimed = try await self.durably {
            try await $0.claim(ids: [id], now: now, owner: owner, leaseUntil: leaseUntil)
        }
        guard let letter = claimed.first else {
            await self.recordOutcomes([DeadLetterOperationLetter(operation: operation, letterID: id, outcome: .skipped)]
            )
            await self.endOperation(record, .finished, message: "the letter was gone or being run")
            if try await self.store.count(DeadLetterFilter(ids: [id])) == 0 {
                throw DeadLetterError(code: .notFound, message: "no dead letter has this id", id: id)
            }
            throw DeadLetterError(code: .leaseLost, message: "the letter is being run (leased); try again", id: id)
        }
        var edited = self.transition(
            .edited(payload: payload, contentType: contentType),
            letter,
            actor: actor,
            operation: operation
        ).letter
        if redrive {
            edited = self.transition(.redriven(dueAt: now), edited, actor: actor, operation: operation).letter
        }
        let outcome = DeadLetterOutcome.release(edited)
        guard try await self.durably({ try await $0.write([outcome], owner: owner) }).first == true else {
            await self.recordOutcomes([DeadLetterOperationLetter(operation: operation, letterID: id, outcome: .skipped)]
            )
            await self.endOperation(record, .finished, message: "the letter's lease was lost")
            throw DeadLetterError(code: .leaseLost, message: "the letter's lease was lost before the edit", id: id)
        }
        if redrive {
            // The edit's operation ends with the attempt that follows (the redriven entry carries its id).
            await self.handOver(record)
            self.wakeups.signal()
        } else {
            let done = DeadLetterOperationLetter(
                operation: operation,
                letterID: id,
                outcome: .succeeded,
                at: self.clock.now()
            )
            await self.recordOutcomes([done])
            await self.endOperation(record, .finished)
        }
        return edited
    }
}
