import CoreMetrics
import DeadLetters
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// Test doubles of the circuit-breaker tests: a clock moved by hand, and recorders of logs, metrics and state
// changes. Named `Breaker…` so that they do not clash with other tests' helpers in this target.

/// A clock whose time moves only when the test says so.
final class BreakerTestClock: DeadLetterClock {
    private let current = PThreadLock(Date(timeIntervalSince1970: 1_800_000_000))

    func now() -> Date { self.current.withLock { $0 } }

    func sleep(for duration: Duration) async throws { self.advance(by: duration) }

    func advance(by duration: Duration) {
        self.current.withLock { $0 = $0.adding(duration) }
    }

    func goBack(by duration: Duration) {
        self.current.withLock { $0 = $0.adding(.zero - duration) }
    }
}

/// Keeps every log entry, for assertions.
final class BreakerLogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let storage = PThreadLock<[Entry]>([])
    var entries: [Entry] { self.storage.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    func append(_ entry: Entry) { self.storage.withLock { $0.append(entry) } }

    struct Handler: LogHandler {
        let recorder: BreakerLogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            self.recorder.append(
                Entry(
                    level: event.level,
                    message: event.message.description,
                    metadata: self.metadata.merging(event.metadata ?? [:]) { $1 }
                )
            )
        }
    }
}

/// A metrics factory that keeps the values recorded by each recorder, for assertions.
final class BreakerMetricsRecorder: MetricsFactory, Sendable {
    final class Values: RecorderHandler, CounterHandler, TimerHandler, Sendable {
        let label: String
        let dimensions: [String]
        private let storage = PThreadLock<[Double]>([])
        var values: [Double] { self.storage.withLock { $0 } }

        init(label: String, dimensions: [(String, String)]) {
            self.label = label
            self.dimensions = dimensions.map { "\($0.0)=\($0.1)" }
        }

        func record(_ value: Int64) { self.storage.withLock { $0.append(Double(value)) } }
        func record(_ value: Double) { self.storage.withLock { $0.append(value) } }
        func increment(by amount: Int64) { self.record(amount) }
        func reset() {}
        func recordNanoseconds(_ duration: Int64) { self.record(duration) }
    }

    private let made = PThreadLock<[Values]>([])

    func recorder(_ label: String) -> [Values] { self.made.withLock { $0.filter { $0.label == label } } }

    private func make(_ label: String, _ dimensions: [(String, String)]) -> Values {
        let values = Values(label: label, dimensions: dimensions)
        self.made.withLock { $0.append(values) }
        return values
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        self.make(label, dimensions)
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        self.make(label, dimensions)
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { self.make(label, dimensions) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}

/// Records the state changes passed to the callback.
final class BreakerChangeRecorder: Sendable {
    private let storage = PThreadLock<[String]>([])
    var changes: [String] { self.storage.withLock { $0 } }
    func append(_ from: CircuitState, _ to: CircuitState) { self.storage.withLock { $0.append("\(from)->\(to)") } }
}
