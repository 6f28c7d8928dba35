import CoreMetrics
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterQueue {
    /// The version of swift-dead-letters, as instances record it.
    public static let version = "0.1.0"

    // MARK: - Reading

    /// The operation with `id`, with its counts and the state readers show now (see
    /// ``DeadLetterOperation/state(now:)``), or `nil`.
    public func operation(id: String) async throws -> DeadLetterOperation? {
        guard let operation = try await self.store.operation(id: id) else { return nil }
        return self.shown(operation)
    }

    /// Operations, newest first, as readers show them now.
    /// - Parameters:
    ///   - states: only operations in these states (as shown: a replay whose process died is `interrupted`);
    ///     all when empty.
    ///   - cursor: the id of the last operation of the previous page, or `nil`.
    ///   - limit: at most this many. Default 100.
    public func operations(
        states: [DeadLetterOperation.State] = [],
        before cursor: String? = nil,
        limit: Int = 100
    ) async throws -> [DeadLetterOperation] {
        // A shown state may differ from the stored one (running → interrupted or finished): read stored
        // `running` ones too and filter after.
        var stored = states
        if !stored.isEmpty, stored.contains(.interrupted) || stored.contains(.finished) { stored.append(.running) }
        var result: [DeadLetterOperation] = []
        var cursor = cursor
        let limit = max(1, limit)
        while result.count < limit {
            let page = try await self.store.operations(states: stored, before: cursor, limit: limit)
            for operation in page.map(self.shown) where states.isEmpty || states.contains(operation.state) {
                result.append(operation)
            }
            guard page.count == limit, let last = page.last else { break }
            cursor = last.id
        }
        return Array(result.prefix(limit))
    }

    /// The letters of an operation's frozen set with their outcomes, in letter id order.
    /// - Parameters:
    ///   - id: the operation.
    ///   - outcomes: only these outcomes; all when empty.
    ///   - cursor: the last letter id of the previous page, or `nil`.
    ///   - limit: at most this many. Default 100.
    public func operationLetters(
        id: String,
        outcomes: [DeadLetterOperationLetter.Outcome] = [],
        after cursor: String? = nil,
        limit: Int = 100
    ) async throws -> [DeadLetterOperationLetter] {
        try await self.store.operationLetters(id: id, outcomes: outcomes, after: cursor, limit: max(1, limit))
    }

    /// The instances whose queues run (``run()``) and were seen within 3 heartbeats, by id.
    public func instances() async throws -> [DeadLetterInstance] {
        let cutoff = self.clock.now().adding(.zero - self.configuration.instanceHeartbeat * 3)
        return try await self.store.instances().filter { $0.lastSeenAt >= cutoff }
    }

    /// The sources among `sources` that no live instance has a handler for: letters redriven there wait until a
    /// service that handles them runs.
    public func unhandledSources(_ sources: some Sequence<String>) async throws -> [String] {
        let handled = Set(try await self.instances().flatMap(\.sources))
        return Set(sources).subtracting(handled).sorted()
    }

    /// The operation as readers show it now; a stored `running` state that is over is written as such.
    func shown(_ operation: DeadLetterOperation) -> DeadLetterOperation {
        var operation = operation
        operation.state = operation.state(now: self.clock.now())
        return operation
    }

    // MARK: - Writing

    /// Creates an operation record, `running` with a heartbeat (this process is its runner until it ends it or
    /// hands it over); `nil` (logged) when the store keeps none, so the action runs unrecorded.
    func beginOperation(
        _ id: String,
        kind: DeadLetterOperation.Kind,
        filter: DeadLetterFilter,
        parameters: DeadLetterOperation.Parameters = DeadLetterOperation.Parameters(),
        actor: String?
    ) async -> DeadLetterOperation? {
        let now = self.clock.now()
        let operation = DeadLetterOperation(
            id: id,
            kind: kind,
            state: .running,
            actor: actor ?? self.configuration.instanceID,
            createdAt: now,
            startedAt: now,
            heartbeatAt: now,
            filter: filter,
            parameters: parameters
        )
        do {
            try await self.store.createOperation(operation, letters: [])
            self.state.withLock { $0.operationKinds[id] = kind }
            await self.pruneOperationsIfDue()
            return operation
        } catch {
            self.logger.warning(
                "the operation runs without a record",
                metadata: ["dlq.operation.id": "\(id)", "error": "\(error)"]
            )
            return nil
        }
    }

    /// Adds letters to an operation's set (`pending` or with their outcome).
    func addLetters(
        _ ids: some Sequence<String>,
        to operation: DeadLetterOperation?,
        outcome: DeadLetterOperationLetter.Outcome
    ) async throws {
        guard let operation else { return }
        let at = outcome == .pending ? nil : self.clock.now()
        let letters = ids.map {
            DeadLetterOperationLetter(operation: operation.id, letterID: $0, outcome: outcome, at: at)
        }
        if !letters.isEmpty { try await self.store.addOperationLetters(letters) }
    }

    /// Writes an operation's new state (finished, cancelled, paused, …) at the queue's clock; it has no runner
    /// any more.
    @discardableResult
    func endOperation(
        _ operation: DeadLetterOperation?,
        _ state: DeadLetterOperation.State,
        message: String? = nil
    ) async -> DeadLetterOperation? {
        guard var operation else { return nil }
        operation.state = state
        operation.heartbeatAt = nil
        operation.finishedAt = self.clock.now().roundedToMilliseconds
        operation.message = message ?? operation.message
        do {
            _ = try await self.store.updateOperation(operation)
        } catch {
            self.logger.error(
                "could not record the end of an operation",
                metadata: ["dlq.operation.id": "\(operation.id)", "error": "\(error)"]
            )
        }
        self.metrics.gauge("dlq_operations_running").record(await self.runningOperations())
        return try? await self.operation(id: operation.id)
    }

    /// Hands an operation over to the running services (a redrive): it has no runner any more, and ends
    /// `finished` when its last pending letter has its outcome (now, if none is pending).
    @discardableResult
    func handOver(_ operation: DeadLetterOperation?) async -> DeadLetterOperation? {
        guard let operation, let stored = try? await self.store.operation(id: operation.id) else { return nil }
        if stored.counts.pending == 0 { return await self.endOperation(stored, .finished) }
        var running = stored
        running.heartbeatAt = nil
        do {
            _ = try await self.store.updateOperation(running)
        } catch {
            self.logger.error(
                "could not record an operation's hand-over",
                metadata: ["dlq.operation.id": "\(running.id)", "error": "\(error)"]
            )
        }
        // An outcome recorded between the read and the write found a runner and did not end it.
        if let now = try? await self.store.operation(id: running.id), now.counts.pending == 0, now.state == .running {
            return await self.endOperation(now, .finished)
        }
        return self.shown(running)
    }

    /// The outcome for its operation of what a lifecycle transition recorded, if the transition belongs to one.
    static func operationOutcome(
        of transition: DeadLetterLifecycle.Transition,
        at now: Date
    ) -> DeadLetterOperationLetter? {
        guard let entry = transition.entries.first(where: { $0.operation != nil }), let id = entry.operation else {
            return nil
        }
        let letter = transition.letter
        let outcome: DeadLetterOperationLetter.Outcome
        switch entry.event {
        case .retried, .replayed:
            if entry.outcome == .succeeded {
                outcome = .succeeded
            } else {
                outcome = letter.status == .parked ? .parked : .failed
            }
        case .abandoned, .parked:
            outcome = .parked
        case .cancelled:
            outcome = .skipped
        default:
            return nil
        }
        return DeadLetterOperationLetter(
            operation: id,
            letterID: letter.id,
            outcome: outcome,
            at: now,
            errorType: outcome == .failed || outcome == .parked ? entry.errorType : nil,
            errorMessage: outcome == .failed || outcome == .parked ? entry.errorMessage : nil
        )
    }

    /// Records letters' outcomes for their operations, counts them in `dlq_operation_letters_total`, and
    /// marks an operation without a runner `finished` once no letter is pending. Failures are logged: the
    /// letters' own writes are done and stand.
    ///
    /// Cost: one write, and per operation one lookup of whether a letter is still pending (an index seek, not a
    /// count); the operation itself is read only when none is (a redrive's counts per outcome read every
    /// letter of its set, which done per outcome made a 50,000-letter memory replay 45 times slower).
    func recordOutcomes(_ letters: [DeadLetterOperationLetter]) async {
        guard !letters.isEmpty else { return }
        do {
            guard try await self.store.recordOperationLetters(letters) > 0 else { return }
            await self.recorded(letters)
        } catch {
            self.logger.error("could not record outcomes of an operation", metadata: ["error": "\(error)"])
        }
    }

    /// Writes outcomes of claimed letters with their operation records (in one transaction where the store
    /// has them: ``DeadLetterStore/write(_:owner:recording:)``), shielded from cancellation, then counts the
    /// records written and ends a redrive whose last letter this was.
    /// - Returns: for each outcome, whether it was written.
    func write(
        _ outcomes: [DeadLetterOutcome],
        owner: String,
        recording records: [DeadLetterOperationLetter?]
    ) async throws -> [Bool] {
        let written = try await self.durably { store in
            try await store.write(outcomes, owner: owner, recording: records)
        }
        // Usually every one written, all of one operation (a replay's page): counted in place, not gathered.
        if let first = records.first??.operation,
            records.indices.allSatisfy({ written[$0] && records[$0]?.operation == first })
        {
            do {
                var runs = OutcomeRuns()
                for index in records.indices { if let outcome = records[index]?.outcome { runs.add(outcome) } }
                try await self.recorded(runs, of: first)
            } catch {
                self.logger.error("could not record outcomes of an operation", metadata: ["error": "\(error)"])
            }
        } else {
            await self.recorded(zip(records, written).compactMap { record, done in done ? record : nil })
        }
        return written
    }

    /// After letters' outcomes were recorded: counts them in `dlq_operation_letters_total`, and marks a
    /// redrive without a runner `finished` once no letter of it is pending.
    private func recorded(_ letters: [DeadLetterOperationLetter]) async {
        guard let first = letters.first else { return }
        do {
            // Usually one letter, or letters of one operation (a replay's batch): no grouping then.
            if letters.allSatisfy({ $0.operation == first.operation }) {
                try await self.recorded(letters, of: first.operation)
            } else {
                for (id, group) in Dictionary(grouping: letters, by: \.operation) {
                    try await self.recorded(group, of: id)
                }
            }
        } catch {
            self.logger.error("could not record outcomes of an operation", metadata: ["error": "\(error)"])
        }
    }

    /// After letters' outcomes of one operation were recorded.
    private func recorded(_ letters: [DeadLetterOperationLetter], of id: String) async throws {
        var runs = OutcomeRuns()
        for letter in letters { runs.add(letter.outcome) }
        try await self.recorded(runs, of: id)
    }

    /// After outcomes of one operation's letters were recorded.
    ///
    /// Takes the outcomes counted in runs, not a sequence: a generic sequence here (`some Sequence`, a lazy
    /// `compactMap` over the page) made the runtime build its type the first time, checking its requirements
    /// by a search of every protocol conformance in the process: 0.9 ms, a tenth of a fresh process's first
    /// replay of 10,000 letters (perf, ten runs).
    private func recorded(_ runs: OutcomeRuns, of id: String) async throws {
        guard !runs.isEmpty, let kind = try await self.operationKind(id) else { return }
        // Counted once per run of one outcome (a replay's batch is mostly one), not looked up per letter.
        for (outcome, letters) in runs.runs {
            self.metrics.counter("dlq_operation_letters_total", "kind", kind.rawValue, "outcome", outcome.rawValue)
                .increment(by: letters)
        }
        // Replays, parks, purges and deletes end themselves; a redrive (or an edit that redrove) ends with its
        // last letter's outcome.
        guard kind == .redrive || kind == .edit else { return }
        try await self.finishRedriveIfDone(id)
    }

    /// Ends a redrive (or an edit that redrove) run by no runner once no letter of it is pending.
    private func finishRedriveIfDone(_ id: String) async throws {
        guard try await !self.store.hasPendingLetters(operation: id),
            let operation = try await self.store.operation(id: id)
        else { return }
        if operation.state == .running, operation.heartbeatAt == nil {
            await self.endOperation(operation, .finished)
        }
    }

    /// The kind of an operation, remembered after the first read.
    func operationKind(_ id: String) async throws -> DeadLetterOperation.Kind? {
        if let kind = self.state.withLock({ $0.operationKinds[id] }) { return kind }
        guard let operation = try await self.store.operation(id: id) else { return nil }
        self.state.withLock { state in
            if state.operationKinds.count > 10_000 { state.operationKinds.removeAll() }
            state.operationKinds[id] = operation.kind
        }
        return operation.kind
    }

    /// How many operations are running, for `dlq_operations_running`.
    func runningOperations() async -> Int {
        guard let running = try? await self.operations(states: [.running], limit: 1000) else { return 0 }
        return running.count
    }

    /// Removes operations older than ``Configuration/operationRetention``, at most once a minute per queue.
    func pruneOperationsIfDue() async {
        let now = self.clock.now()
        let due = self.state.withLock { state in
            if let last = state.operationsPrunedAt, now.timeIntervalSince(last) < 60 { return false }
            state.operationsPrunedAt = now
            return true
        }
        guard due else { return }
        let cutoff = now.adding(.zero - self.configuration.operationRetention)
        do {
            let removed = try await self.store.pruneOperations(createdBefore: cutoff)
            if removed > 0 { self.logger.info("operations pruned", metadata: ["dlq.count": "\(removed)"]) }
            // Instances gone for a day are removed too.
            for instance in try await self.store.instances()
            where instance.lastSeenAt < now.adding(.seconds(-86_400)) {
                try await self.store.removeInstance(id: instance.id)
            }
        } catch let error as DeadLetterError where error.code == .unsupported {
            return
        } catch {
            self.logger.warning("could not prune operations", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Cancel

    /// Calls an operation off: a running replay stops at its next letter; a redrive's letters that have not
    /// run yet go back to `dead`, each with a `cancelled` history entry naming `actor`.
    /// - Parameters:
    ///   - id: the operation.
    ///   - actor: who cancels it; this instance by default.
    /// - Returns: the operation as it stands after.
    /// - Throws: ``DeadLetterError`` `notFound` for an unknown id, `invalidConfiguration` when it is over.
    @discardableResult
    public func cancelOperation(id: String, actor: String? = nil) async throws -> DeadLetterOperation {
        guard let operation = try await self.store.operation(id: id) else {
            throw DeadLetterError(code: .notFound, message: "no operation has id \(id)")
        }
        let shown = self.shown(operation)
        guard shown.state != .finished, shown.state != .cancelled else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "operation \(id) is \(shown.state) already; nothing to cancel"
            )
        }
        let who = actor ?? self.configuration.instanceID
        // A replay of this process stops at its next letter; one of another process at its next heartbeat.
        self.cancelledOperations.insert(id)
        if operation.kind == .redrive {
            try await self.cancelPendingRedrive(operation, actor: who)
        }
        let ended = await self.endOperation(operation, .cancelled, message: "cancelled by \(who)")
        self.logger.info("operation cancelled", metadata: ["dlq.operation.id": "\(id)", "dlq.actor": "\(who)"])
        return ended ?? operation
    }

    /// Returns a redrive's letters that have not run yet to `dead`; their outcome becomes `skipped`.
    private func cancelPendingRedrive(_ operation: DeadLetterOperation, actor: String) async throws {
        var cursor: String?
        while true {
            let pending = try await self.store.operationLetters(
                id: operation.id,
                outcomes: [.pending],
                after: cursor,
                limit: 500
            )
            guard let last = pending.last else { break }
            cursor = last.letterID
            let now = self.clock.now()
            let owner = "\(self.configuration.instanceID)/\(operation.id)"
            let cancelled = try await self.store.changeState(
                ids: pending.map(\.letterID),
                now: now,
                owner: owner,
                leaseUntil: now.adding(self.configuration.leaseDuration)
            ) { letter in
                // Only a letter whose latest event is still this redrive has not run yet.
                guard let handedBack = DeadLetterLifecycle.handedBack(letter), handedBack.operation == operation.id
                else { return nil }
                return self.transition(.cancelled, letter, actor: actor, operation: operation.id).letter
            }
            let cancelledIDs = Set(cancelled.filter { $0.status == .dead }.map(\.id))
            await self.recordOutcomes(
                pending.filter { cancelledIDs.contains($0.letterID) }.map {
                    DeadLetterOperationLetter(
                        operation: operation.id,
                        letterID: $0.letterID,
                        outcome: .skipped,
                        at: now
                    )
                }
            )
            if pending.count < 500 { break }
        }
    }
}

/// Outcomes in runs of equal ones, in order: what ``DeadLetterQueue`` counts in `dlq_operation_letters_total`.
struct OutcomeRuns {
    private(set) var runs: [(outcome: DeadLetterOperationLetter.Outcome, count: Int)] = []

    var isEmpty: Bool { self.runs.isEmpty }

    mutating func add(_ outcome: DeadLetterOperationLetter.Outcome) {
        if let last = self.runs.indices.last, self.runs[last].outcome == outcome {
            self.runs[last].count += 1
        } else {
            self.runs.append((outcome, 1))
        }
    }
}
