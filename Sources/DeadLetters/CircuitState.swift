/// The state of a ``CircuitBreaker``.
public enum CircuitState: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Calls go through; failures are counted.
    case closed
    /// The open duration is over: a few probe calls go through to test the source.
    case halfOpen = "half-open"
    /// Calls are refused until the open duration is over.
    case open

    /// The value of the `dlq_circuit_state` gauge: 0 closed, 1 half-open, 2 open.
    public var metricValue: Int {
        switch self {
        case .closed: return 0
        case .halfOpen: return 1
        case .open: return 2
        }
    }

    /// The raw value: `closed`, `half-open` or `open`.
    public var description: String { self.rawValue }
}
