import CoreMetrics
import Logging

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// What ``DeadLetterQueue/process(payload:source:metadata:contentType:handler:)`` did with an item.
public enum ProcessResult<Value: Sendable>: Sendable {
    /// The handler succeeded (perhaps after immediate retries) and returned this value.
    case succeeded(Value)
    /// The handler kept failing; the item was stored as this letter (`retrying` or `dead`).
    case deadLettered(id: String, status: DeadLetterStatus)

    /// The handler's value, or `nil` when the item was dead-lettered.
    public var value: Value? {
        if case .succeeded(let value) = self { return value }
        return nil
    }

    /// The stored letter's id, or `nil` when the handler succeeded.
    public var deadLetterID: String? {
        if case .deadLettered(let id, _) = self { return id }
        return nil
    }
}

/// The error recorded when a source's circuit is open and an item is stored without being tried.
public struct CircuitOpenError: Error, Sendable, CustomStringConvertible, DeadLetterReasonProviding {
    /// The source whose circuit is open.
    public var source: String
    public var failureReason: FailureReason { .dependency }
    public var description: String { "circuit open for source \(self.source)" }
}

extension DeadLetterQueue {
    /// Stores an item that failed and will not be retried in process: it is `dead` and waits for people.
    ///
    /// Returns once the letter is stored: in a durable store, on disk. If the calling task is cancelled
    /// meanwhile, the letter is still stored.
    /// - Parameters:
    ///   - payload: the item's bytes.
    ///   - source: where it came from.
    ///   - error: why it failed; its reason comes from the configured classifier.
    ///   - attempts: how many times it was tried. Default 1.
    ///   - metadata: context to keep; configured secret keys are redacted.
    ///   - contentType: the payload's media type, if known.
    /// - Returns: the new letter's id.
    /// - Throws: ``DeadLetterError`` `capacityExceeded` under `rejectNew`, `invalidFormat` when `attempts` is
    ///   above ``DeadLetter/maximumCount``, or the store's error: the letter is then not stored.
    @discardableResult
    public func add(
        payload: Data,
        source: String,
        error: any Error,
        attempts: Int = 1,
        metadata: [String: String] = [:],
        contentType: String? = nil
    ) async throws -> String {
        let facts = ErrorTypeFacts.of(error)
        let captured = CapturedError(error, facts: facts)
        return try await self.add(
            payload: payload,
            source: source,
            reason: self.configuration.classifier.classify(error, facts: facts),
            errorType: captured.type,
            errorMessage: captured.message,
            causes: captured.causes,
            attempts: attempts,
            metadata: metadata,
            contentType: contentType
        )
    }

    /// Stores a failed item described by its parts (as `dlq add` does); it is `dead`.
    /// - Returns: the new letter's id.
    /// - Throws: ``DeadLetterError`` `invalidFormat` when `attempts` is above ``DeadLetter/maximumCount``, or
    ///   as ``add(payload:source:error:attempts:metadata:contentType:)``.
    ///
    /// Inlined into the `add` of an error, which calls it: an async call between the two cost its frame's
    /// allocation and release at each add (the task allocator was 5.6% of an add's samples, perf, 100,000
    /// letters).
    @discardableResult
    @inline(__always)
    public func add(
        payload: Data,
        source: String,
        reason: FailureReason,
        errorType: String,
        errorMessage: String,
        causes: [String] = [],
        attempts: Int = 1,
        metadata: [String: String] = [:],
        contentType: String? = nil
    ) async throws -> String {
        if let id = try self.addToMemory(
            payload: payload,
            source: source,
            reason: reason,
            errorType: errorType,
            errorMessage: errorMessage,
            causes: causes,
            attempts: attempts,
            metadata: metadata,
            contentType: contentType
        ) {
            return id
        }
        return try await self.addToStore(
            payload: payload,
            source: source,
            reason: reason,
            errorType: errorType,
            errorMessage: errorMessage,
            causes: causes,
            attempts: attempts,
            metadata: metadata,
            contentType: contentType
        )
    }

    /// ``add(payload:source:reason:errorType:errorMessage:causes:attempts:metadata:contentType:)`` through the
    /// store's `append`: any store, any limits. Not inlined, so that its letter and array stay out of the memory
    /// path's async frame.
    @inline(never)
    private func addToStore(
        payload: Data,
        source: String,
        reason: FailureReason,
        errorType: String,
        errorMessage: String,
        causes: [String],
        attempts: Int,
        metadata: [String: String],
        contentType: String?
    ) async throws -> String {
        try DeadLetter.checkAttempts(attempts)
        let now = self.clock.now()
        let id = self.ids.next(at: now)
        // Made in its array and prepared there: a letter copied into an array costs a retain and a release of
        // each of its fields.
        var letters = [
            DeadLetter(
                id: id,
                source: source,
                reason: reason,
                errorType: errorType,
                errorMessage: CapturedError.truncate(errorMessage),
                causes: causes,
                attempts: max(1, attempts),
                firstFailedAt: now,
                status: .dead,
                metadata: metadata,
                contentType: contentType,
                payload: payload
            )
        ]
        self.prepare(&letters[0])
        try await self.storePrepared(letters)
        return id
    }

    /// ``add(payload:source:reason:errorType:errorMessage:causes:attempts:metadata:contentType:)`` on a memory
    /// store without limits, in the caller's task and without a ``DeadLetter``: the store takes the letter's
    /// parts (``MemoryDeadLetterStore/NewLetter``). The letter stored, the metrics and the event are the same
    /// as the general path's; a test compares them.
    ///
    /// Measured (`dlq-benchmarks --child-seed add-error`, 10,000 letters, one caller): the general path's
    /// letter, its array, its reading into a record and the async calls between queue and store were about
    /// half of an add on this store.
    /// - Returns: the new letter's id, or `nil` when the store is another or has limits (the caller takes
    ///   the general path).
    @inline(never)
    private func addToMemory(
        payload: Data,
        source: String,
        reason: FailureReason,
        errorType: String,
        errorMessage: String,
        causes: [String],
        attempts: Int,
        metadata: [String: String],
        contentType: String?
    ) throws -> String? {
        guard let memory = self.memoryStore, !self.configuration.limits.isBounded else { return nil }
        try DeadLetter.checkAttempts(attempts)
        let milliseconds = self.clock.now().millisecondsSince1970
        let (high, low) = self.ids.nextValue(atMilliseconds: milliseconds)
        let message = CapturedError.truncate(errorMessage)
        let new = MemoryDeadLetterStore.NewLetter(
            high: high,
            low: low,
            attempts: max(1, attempts),
            failedAt: milliseconds,
            expiresAt: self.configuration.timeToLive.map {
                Date(millisecondsSince1970: milliseconds).adding($0).millisecondsSince1970
            } ?? MemoryDeadLetterStore.Record.none,
            fingerprint: Fingerprint.value(errorType: errorType, message: message),
            errorMessage: message,
            payload: payload
        )
        let metadata = metadata.isEmpty ? metadata : self.redactor.redact(metadata)
        // No clock read or counter while metrics are not bootstrapped (swift-metrics' no-op factory). A flag and
        // an instant, not an optional instant: `ContinuousClock.Instant?` is asked its case through the runtime's
        // value witnesses (the instant's layout is the standard library's to change), 0.7% of an add's samples.
        let timed = !self.metrics.isDisabled
        let start = timed ? ContinuousClock.now : Self.untimed
        do {
            // The store's time alone, as the general path times its `append`.
            defer { if timed { self.metrics.record("append", since: start) } }
            try memory.insert(
                new,
                source: source,
                errorType: errorType,
                reason: reason,
                causes: causes,
                metadata: metadata,
                contentType: contentType
            )
        }
        if timed {
            self.metrics.counter("dlq_dead_letters_total", "source", source, "reason", reason.rawValue).increment()
        }
        let id = DeadLetterIDGenerator.uuidString(high: high, low: low)
        self.emit(.added, id: id, source: source, status: .dead)
        return id
    }

    /// The start of an add that is not timed: any instant (it is never read).
    private static let untimed = ContinuousClock.now

    /// Runs `handler` on an item with immediate retries per the retry policy; if it keeps failing, stores the
    /// item: `retrying` when the policy has delayed attempts left for the reason, else `dead`.
    ///
    /// A permanent reason (not retryable) stops the immediate retries at once. When the source's circuit is
    /// open, the handler is not called and the item is stored for a delayed retry.
    /// - Parameters:
    ///   - payload: the item's bytes, passed to `handler` and stored if it fails.
    ///   - source: where it came from; letters of a source are retried by its registered handler.
    ///   - metadata: context to keep with a stored letter.
    ///   - contentType: the payload's media type, if known.
    ///   - handler: the work.
    /// - Returns: the handler's value, or the stored letter's id.
    /// - Throws: only when the letter could not be stored (``DeadLetterError``, or the store's error).
    public func process<Value: Sendable>(
        payload: Data,
        source: String,
        metadata: [String: String] = [:],
        contentType: String? = nil,
        handler: @Sendable (Data) async throws -> Value
    ) async throws -> ProcessResult<Value> {
        let policy = self.configuration.retryPolicy
        let breaker = self.breaker(for: source)
        var attempts = 0
        var lastError: any Error = CircuitOpenError(source: source)
        var previousDelay: Duration?
        if breaker?.tryAcquire() ?? true {
            while true {
                attempts += 1
                do {
                    let value = try await handler(payload)
                    breaker?.recordSuccess()
                    return .succeeded(value)
                } catch {
                    breaker?.recordFailure()
                    lastError = error
                }
                let reason = self.configuration.classifier.classify(lastError)
                guard attempts < policy.maxImmediateAttempts(for: reason), !Task.isCancelled else { break }
                let delay = self.withRandom { rng in
                    policy.immediateDelay(afterAttempt: attempts, previous: previousDelay, using: &rng)
                }
                previousDelay = delay
                if delay > .zero {
                    do { try await self.clock.sleep(for: delay) } catch { break }
                }
                if !(breaker?.tryAcquire() ?? true) { break }
            }
        }
        let reason = self.configuration.classifier.classify(lastError)
        let captured = CapturedError(lastError)
        let now = self.clock.now()
        var letter = DeadLetter(
            id: self.ids.next(at: now),
            source: source,
            reason: reason,
            errorType: captured.type,
            errorMessage: captured.message,
            causes: captured.causes,
            attempts: max(1, attempts),
            firstFailedAt: now,
            status: .dead,
            metadata: metadata,
            contentType: contentType,
            payload: payload
        )
        let lifecycle = self.configuration.lifecycle
        letter = self.withRandom { rng in lifecycle.stored(letter, now: now, using: &rng) }
        try await self.store(letter)
        return .deadLettered(id: letter.id, status: letter.status)
    }

    /// Runs `handler` on a `Codable` value with retries, storing it as JSON if it keeps failing; see
    /// ``process(payload:source:metadata:contentType:handler:)``.
    /// - Throws: `EncodingError` if `value` does not encode, or when the letter could not be stored.
    public func process<Item: Encodable & Sendable, Value: Sendable>(
        _ item: Item,
        source: String,
        metadata: [String: String] = [:],
        encoder: JSONEncoder = JSONEncoder(),
        handler: @Sendable (Item) async throws -> Value
    ) async throws -> ProcessResult<Value> {
        let payload = try encoder.encode(item)
        return try await self.process(
            payload: payload,
            source: source,
            metadata: metadata,
            contentType: "application/json"
        ) { _ in try await handler(item) }
    }

    /// Stores letters as given (ids, times and status kept), applying redaction, the time-to-live (when the
    /// letter has no `expiresAt`) and the limits. Used by imports and tools; most code wants `add` or `process`.
    /// - Throws: ``DeadLetterError`` `invalidFormat` when a letter is refused by ``DeadLetter/validate()`` (an
    ///   id with a control character, `attempts` or `replayCount` above ``DeadLetter/maximumCount``; then none
    ///   is stored), `duplicateID` when an id is already stored, or as `add` does.
    public func add(_ letters: [DeadLetter]) async throws {
        for letter in letters { try letter.validate() }
        try await self.store(letters)
    }

    func store(_ letter: DeadLetter) async throws {
        var letter = letter
        self.prepare(&letter)
        try await self.storePrepared([letter])
    }

    func prepare(_ letter: inout DeadLetter) {
        if !letter.metadata.isEmpty { letter.metadata = self.redactor.redact(letter.metadata) }
        if letter.expiresAt == nil, let ttl = self.configuration.timeToLive {
            letter.expiresAt = letter.lastFailedAt.adding(ttl).roundedToMilliseconds
        }
    }

    func store(_ letters: [DeadLetter]) async throws {
        var prepared = letters
        for index in prepared.indices { self.prepare(&prepared[index]) }
        try await self.storePrepared(prepared)
    }

    /// Stores letters that went through ``prepare(_:)``.
    private func storePrepared(_ prepared: [DeadLetter]) async throws {
        let limits = self.configuration.limits
        let metrics = self.metrics
        // A cancelled caller still records its letters durably.
        let result = try await self.durably { store in
            try await metrics.measure("append") {
                try await store.append(prepared, onConflict: .fail, limits: limits)
            }
        }
        for index in prepared.indices {
            if prepared[index].status == .dead {
                self.metrics.counter(
                    "dlq_dead_letters_total",
                    "source",
                    prepared[index].source,
                    "reason",
                    prepared[index].reason.rawValue
                ).increment()
            }
            self.emit(.added, id: prepared[index].id, source: prepared[index].source, status: prepared[index].status)
        }
        if prepared.contains(where: { $0.status == .retrying }) { self.wakeups.signal() }
        if !result.evicted.isEmpty {
            await self.archive(result.evicted, reason: "pruned")
            self.metrics.counter("dlq_pruned_total").increment(by: result.evicted.count)
            self.emit(.pruned, count: result.evicted.count)
        }
        if limits.isBounded { await self.checkCapacity() }
    }

    /// Writes letters to the configured archive; without one, logs that they were removed.
    func archive(_ letters: [DeadLetter], reason: String) async {
        guard !letters.isEmpty else { return }
        if let archive = self.configuration.archive {
            do {
                try await archive.archive(letters, reason: reason)
            } catch {
                self.logger.error(
                    "could not archive removed letters",
                    metadata: ["dlq.count": "\(letters.count)", "dlq.reason": "\(reason)", "error": "\(error)"]
                )
            }
        } else {
            self.logger.info(
                "letters removed without an archive",
                metadata: ["dlq.count": "\(letters.count)", "dlq.reason": "\(reason)"]
            )
        }
    }

    func checkCapacity() async {
        guard let usage = try? await self.store.usage() else { return }
        let limits = self.configuration.limits
        var ratio = 0.0
        if let maxEntries = limits.maxEntries { ratio = max(ratio, Double(usage.count) / Double(maxEntries)) }
        if let maxBytes = limits.maxBytes { ratio = max(ratio, Double(usage.bytes) / Double(maxBytes)) }
        self.metrics.gauge("dlq_capacity_ratio").record(ratio)
        let crossed = self.state.withLock { state in
            let above = ratio > 0.9
            defer { state.aboveCapacityWarning = above }
            return above && !state.aboveCapacityWarning
        }
        if crossed {
            self.logger.info("store above 90% of its capacity", metadata: ["dlq.capacity.ratio": "\(ratio)"])
            self.emit(.capacityWarning, count: usage.count)
        }
    }
}
