import CoreMetrics

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The queue's metrics, with DESIGN.md's names; the handles are made once per label set and reused.
final class DeadLetterMetrics: Sendable {
    private let factory: any MetricsFactory
    private let counters = PThreadLock<[String: Counter]>([:])
    private let gauges = PThreadLock<[String: Gauge]>([:])
    private let timers = PThreadLock<[String: CoreMetrics.Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        var key = label
        for (name, value) in dimensions {
            key += "\u{1}\(name)\u{2}\(value)"
        }
        return key
    }

    func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        let key = Self.key(label, dimensions)
        return self.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: self.factory)
            counters[key] = counter
            return counter
        }
    }

    func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        let key = Self.key(label, dimensions)
        return self.gauges.withLock { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: label, dimensions: dimensions, factory: self.factory)
            gauges[key] = gauge
            return gauge
        }
    }

    func timer(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Timer {
        let key = Self.key(label, dimensions)
        return self.timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(label: label, dimensions: dimensions, factory: self.factory)
            timers[key] = timer
            return timer
        }
    }

    /// Runs a store operation and records its duration as `dlq_store_operation_seconds{operation}`.
    func measure<T>(_ operation: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - start
            let (seconds, attoseconds) = elapsed.components
            self.timer("dlq_store_operation_seconds", [("operation", operation)])
                .recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
        return try await body()
    }
}
