import CoreMetrics

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The queue's metrics, with the names the README lists; the handles are made once per label set and reused.
final class DeadLetterMetrics: Sendable {
    /// A label and up to two dimensions, hashed as they are: looking a handle up allocates nothing.
    private struct Key: Hashable {
        var label: String
        var name0 = ""
        var value0 = ""
        var name1 = ""
        var value1 = ""
        var more: [String] = []

        init(_ label: String, _ dimensions: [(String, String)]) {
            self.label = label
            for (index, (name, value)) in dimensions.enumerated() {
                switch index {
                case 0: (self.name0, self.value0) = (name, value)
                case 1: (self.name1, self.value1) = (name, value)
                default: self.more += [name, value]
                }
            }
        }

        init(_ label: String, _ name0: String, _ value0: String, _ name1: String = "", _ value1: String = "") {
            self.label = label
            (self.name0, self.value0, self.name1, self.value1) = (name0, value0, name1, value1)
        }

        var dimensions: [(String, String)] {
            var dimensions: [(String, String)] = []
            if !self.name0.isEmpty { dimensions.append((self.name0, self.value0)) }
            if !self.name1.isEmpty { dimensions.append((self.name1, self.value1)) }
            var index = 0
            while index + 1 < self.more.count {
                dimensions.append((self.more[index], self.more[index + 1]))
                index += 2
            }
            return dimensions
        }
    }

    private let factory: any MetricsFactory
    private let counters = PThreadLock(Counters())

    /// The counters made so far, and the one found last: every `add` counts its letter under its source and
    /// reason, which a producer repeats, and comparing the last key (strings compared by their bits when they
    /// are the same strings) spares hashing five strings.
    private struct Counters {
        var all: [Key: Counter] = [:]
        var last: (key: Key, counter: Counter)?
    }
    private let gauges = PThreadLock<[Key: Gauge]>([:])
    private let timers = PThreadLock<[Key: CoreMetrics.Timer]>([:])

    /// `dlq_store_operation_seconds{operation="append"}`, made on first use: every `add` records it, and
    /// this slot spares hashing its key each time.
    private let appendTimer = PThreadLock<CoreMetrics.Timer?>(nil)

    /// Whether the factory is swift-metrics' no-op one (the default until `MetricsSystem.bootstrap`): handles
    /// made from it stay no-ops, so the hot paths skip finding them and reading the clock for them.
    let isDisabled: Bool

    init(factory: any MetricsFactory) {
        self.isDisabled = factory is NOOPMetricsHandler
        self.factory = factory
    }

    func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        self.counter(Key(label, dimensions))
    }

    /// The counter with two dimensions, found without building a dimensions array.
    func counter(_ label: String, _ name0: String, _ value0: String, _ name1: String, _ value1: String) -> Counter {
        self.counter(Key(label, name0, value0, name1, value1))
    }

    private func counter(_ key: Key) -> Counter {
        self.counters.withLock { counters in
            if let last = counters.last, last.key == key { return last.counter }
            let counter: Counter
            if let known = counters.all[key] {
                counter = known
            } else {
                counter = Counter(label: key.label, dimensions: key.dimensions, factory: self.factory)
                counters.all[key] = counter
            }
            counters.last = (key, counter)
            return counter
        }
    }

    func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        let key = Key(label, dimensions)
        return self.gauges.withLock { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: label, dimensions: dimensions, factory: self.factory)
            gauges[key] = gauge
            return gauge
        }
    }

    func timer(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Timer {
        self.timer(Key(label, dimensions))
    }

    private func timer(_ key: Key) -> CoreMetrics.Timer {
        self.timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(label: key.label, dimensions: key.dimensions, factory: self.factory)
            timers[key] = timer
            return timer
        }
    }

    /// Runs a store operation and records its duration as `dlq_store_operation_seconds{operation}`.
    func measure<T>(_ operation: String, _ body: () async throws -> T) async rethrows -> T {
        if self.isDisabled { return try await body() }
        let start = ContinuousClock.now
        defer { self.record(operation, since: start) }
        return try await body()
    }

    /// Records in `dlq_store_operation_seconds` an operation that began at `start`.
    func record(_ operation: String, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        let timer: CoreMetrics.Timer
        if operation == "append" {
            timer = self.appendTimer.withLock { slot in
                if let timer = slot { return timer }
                let timer = self.timer(Key("dlq_store_operation_seconds", "operation", operation))
                slot = timer
                return timer
            }
        } else {
            timer = self.timer(Key("dlq_store_operation_seconds", "operation", operation))
        }
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
