import CoreMetrics
import Logging
import ServiceLifecycle

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A dead-letter queue: it catches the items a service cannot process, retries them with backoff, keeps the
/// ones that still fail with their whole error context, and lets people inspect, redrive, replay, archive and
/// purge them.
///
/// Use ``process(payload:source:metadata:contentType:handler:)`` around the work, or ``add(payload:source:error:attempts:metadata:contentType:)``
/// when your consumer already retried. Register a handler per source with ``register(source:handler:)``
/// and run the queue (it is a `Service`) so that delayed retries and expiry happen.
public final class DeadLetterQueue: Sendable {
    /// Runs a stored letter again; throwing records the failure.
    public typealias Handler = @Sendable (DeadLetter) async throws -> Void

    /// The store the queue keeps its letters in: the one it was given, or, with
    /// ``Configuration/payloadEncryption``, an ``EncryptedDeadLetterStore`` around it.
    public let store: any DeadLetterStore
    /// ``store`` when it is a ``MemoryDeadLetterStore``, found once (a cast per write or page was measurable).
    let memoryStore: MemoryDeadLetterStore?
    /// The configuration, validated.
    public let configuration: Configuration
    let clock: any DeadLetterClock
    let logger: Logger
    let metrics: DeadLetterMetrics
    let redactor: MetadataRedactor
    let ids: DeadLetterIDGenerator
    let random: PThreadLock<any RandomNumberGenerator & Sendable>
    let broadcaster = EventBroadcaster(bufferSize: 1024)
    let handlers = PThreadLock<[String: Handler]>([:])
    let breakers = PThreadLock<[String: CircuitBreaker]>([:])
    let wakeups: Wakeup
    let cleanupWakeups = Wakeup()
    let instanceWakeups = Wakeup()
    /// Operations cancelled in this process, so that its replays stop at their next letter.
    let cancelledOperations = CancelledOperations()
    let state = PThreadLock(RunState())
    let completions = PThreadLock(0)

    struct RunState {
        var running = false
        var shuttingDown = false
        var aboveCapacityWarning = false
        var gaugeSources: Set<String> = []
        var operationsPrunedAt: Date?
        /// The kind of the operations this process recorded outcomes for (a kind never changes).
        var operationKinds: [String: DeadLetterOperation.Kind] = [:]
    }

    /// Creates a queue on `store`.
    /// - Parameters:
    ///   - store: where letters are kept; `.memory`, a SQLite or a PostgreSQL store.
    ///   - configuration: how the queue behaves; validated here.
    ///   - clock: where time comes from; the system's by default.
    ///   - random: the random source of ids and jitter; the system's by default.
    /// - Throws: ``DeadLetterError`` `invalidConfiguration` naming the bad field.
    public init(
        store: some DeadLetterStore,
        configuration: Configuration = Configuration(),
        clock: some DeadLetterClock = SystemDeadLetterClock(),
        random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        var logger = configuration.logger
        logger[metadataKey: "dlq.instance"] = "\(configuration.instanceID)"
        self.logger = logger
        if let encryption = configuration.payloadEncryption {
            self.store = EncryptedDeadLetterStore(base: store, encryption: encryption, logger: logger)
        } else {
            self.store = store
        }
        self.memoryStore = self.store as? MemoryDeadLetterStore
        self.metrics = DeadLetterMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
        self.redactor = MetadataRedactor(keys: configuration.redactedMetadataKeys)
        var random = random
        self.ids = DeadLetterIDGenerator(seed: UInt64.random(in: 0...UInt64.max, using: &random))
        self.random = PThreadLock(random)
        self.wakeups = Wakeup()
    }

    /// Registers the handler that runs delayed retries and redrives of `source`'s letters.
    /// - Parameters:
    ///   - source: the source whose letters the handler takes.
    ///   - handler: runs a letter; returning means success (the letter leaves the store), throwing records
    ///     the failure.
    public func register(source: String, handler: @escaping Handler) {
        self.handlers.withLock { $0[source] = handler }
        self.wakeups.signal()
    }

    /// Registers a handler for `source` whose payloads are JSON of `Value`.
    ///
    /// A payload that does not decode fails with its `DecodingError`, a permanent reason.
    public func register<Value: Decodable & Sendable>(
        source: String,
        as type: Value.Type,
        decoder: JSONDecoder = JSONDecoder(),
        handler: @escaping @Sendable (Value) async throws -> Void
    ) {
        let decoder = DecoderBox(decoder)
        self.register(source: source) { letter in
            try await handler(try decoder.decode(Value.self, from: letter.payload))
        }
    }

    /// A stream of what happens in the queue. Each call makes a new subscription; a subscriber that falls
    /// more than 1,024 events behind loses the oldest.
    public func events() -> AsyncStream<DeadLetterEvent> {
        self.broadcaster.subscribe()
    }

    /// The circuit state of `source`, `closed` when no breaker has been made for it yet.
    public func circuitState(of source: String) -> CircuitState {
        self.breakers.withLock { $0[source]?.state } ?? .closed
    }

    func emit(
        _ kind: DeadLetterEvent.Kind,
        id: String? = nil,
        source: String? = nil,
        status: DeadLetterStatus? = nil,
        count: Int = 1
    ) {
        guard self.broadcaster.hasSubscribers else { return }
        self.broadcaster.emit(
            DeadLetterEvent(kind: kind, at: self.clock.now(), id: id, source: source, status: status, count: count)
        )
    }

    func breaker(for source: String) -> CircuitBreaker? {
        guard let configuration = self.configuration.circuitBreaker else { return nil }
        return self.breakers.withLock { breakers in
            if let breaker = breakers[source] { return breaker }
            let breaker = CircuitBreaker(
                source: source,
                configuration: configuration,
                clock: self.clock,
                logger: self.logger,
                metricsFactory: self.configuration.metricsFactory ?? MetricsSystem.factory,
                onStateChange: { [weak self] _, new in
                    switch new {
                    case .open: self?.emit(.circuitOpened, source: source)
                    case .closed: self?.emit(.circuitClosed, source: source)
                    default: break
                    }
                }
            )
            breakers[source] = breaker
            return breaker
        }
    }

    func withRandom<T>(_ body: (inout any RandomNumberGenerator & Sendable) -> T) -> T {
        self.random.withLock { body(&$0) }
    }
}

/// A JSONDecoder is not Sendable; this one is only read after creation.
private final class DecoderBox: @unchecked Sendable {
    // Safe: the decoder is configured before the box is made and only `decode` is called afterwards, which
    // does not mutate it.
    let decoder: JSONDecoder
    init(_ decoder: JSONDecoder) { self.decoder = decoder }
    func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try self.decoder.decode(type, from: data)
    }
}

/// SplitMix64: the id generator's own random source, seeded from the queue's.
struct SplitMix: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Wakes the run loop early (a handler registered, letters redriven, shutdown). A signal that arrives while
/// nobody waits is kept for the next wait.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextKey = 0
    }
    private let state = PThreadLock(State())

    init() {}

    func signal() {
        let waiters = self.state.withLock { state in
            if state.waiters.isEmpty {
                state.pending = true
                return [CheckedContinuation<Void, Never>]()
            }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits for a signal or until `deadline`, whichever comes first.
    func wait(until deadline: Date, clock: any DeadLetterClock) async {
        let consumed = self.state.withLock { state in
            defer { state.pending = false }
            return state.pending
        }
        if consumed { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await clock.sleep(until: deadline)
            }
            group.addTask {
                await self.waitForSignal()
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        let key = self.state.withLock { state in
            defer { state.nextKey += 1 }
            return state.nextKey
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiters[key] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: key) }
            waiter?.resume()
        }
    }
}
