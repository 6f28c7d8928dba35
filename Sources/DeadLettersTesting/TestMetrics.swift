public import CoreMetrics
public import MetricsTestKit

/// A `MetricsFactory` for tests that keeps every value in memory, to pass to the component under test
/// (never bootstrapped: bootstraps are once per process and tests run in parallel).
///
/// It wraps swift-metrics' `TestMetrics` (available as ``base`` for its richer assertions) and adds
/// lookups by label and exact dimensions.
public final class TestMetricsFactory: MetricsFactory {
    /// The swift-metrics test factory that records the values.
    public let base: TestMetrics

    /// Creates an empty factory.
    public init() {
        self.base = TestMetrics()
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        self.base.makeCounter(label: label, dimensions: dimensions)
    }

    public func makeFloatingPointCounter(
        label: String,
        dimensions: [(String, String)]
    ) -> any FloatingPointCounterHandler {
        self.base.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        self.base.makeMeter(label: label, dimensions: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        self.base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        self.base.makeTimer(label: label, dimensions: dimensions)
    }

    public func destroyCounter(_ handler: any CounterHandler) { self.base.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        self.base.destroyFloatingPointCounter(handler)
    }
    public func destroyMeter(_ handler: any MeterHandler) { self.base.destroyMeter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { self.base.destroyRecorder(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { self.base.destroyTimer(handler) }

    /// The total of the counter with `label` and exactly these dimensions (in any order), or `nil` when no
    /// such counter was made.
    public func counterValue(label: String, dimensions: [(String, String)] = []) -> Int64? {
        let matching = self.base.counters(label: label).filter { Self.same($0.dimensions, dimensions) }
        return matching.isEmpty ? nil : matching.map(\.totalValue).reduce(0, +)
    }

    /// The last value of the gauge (or meter) with `label` and exactly these dimensions, or `nil` when it
    /// was never set.
    public func gaugeValue(label: String, dimensions: [(String, String)] = []) -> Double? {
        if let recorder = self.base.recorders(label: label).first(where: { Self.same($0.dimensions, dimensions) }),
            let value = recorder.lastValue
        {
            return value
        }
        return self.base.meters(label: label).first { Self.same($0.dimensions, dimensions) }?.lastValue
    }

    /// Every value recorded by the recorder with `label` and exactly these dimensions, oldest first.
    public func recorderValues(label: String, dimensions: [(String, String)] = []) -> [Double] {
        self.base.recorders(label: label).first { Self.same($0.dimensions, dimensions) }?.values ?? []
    }

    /// Every duration (in nanoseconds) recorded by the timer with `label` and exactly these dimensions.
    public func timerValues(label: String, dimensions: [(String, String)] = []) -> [Int64] {
        self.base.timers(label: label).first { Self.same($0.dimensions, dimensions) }?.values ?? []
    }

    private static func same(_ a: [(String, String)], _ b: [(String, String)]) -> Bool {
        guard a.count == b.count else { return false }
        let sort: ((String, String), (String, String)) -> Bool = { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        return zip(a.sorted(by: sort), b.sorted(by: sort)).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}
