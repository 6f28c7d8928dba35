#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Something that happened in a queue: subscribe with ``DeadLetterQueue/events()`` to notify a chat or a
/// pager without polling.
public struct DeadLetterEvent: Sendable, Hashable, CustomStringConvertible {
    /// What happened: an extensible set.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        /// The event's stable name.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// A letter was stored (``DeadLetterEvent/id``, ``DeadLetterEvent/source``, ``DeadLetterEvent/status``).
        public static let added = Kind("added")
        /// A delayed attempt failed and the letter was scheduled again.
        public static let retried = Kind("retried")
        /// A delayed attempt succeeded and the letter left the store.
        public static let recovered = Kind("recovered")
        /// A letter ran out of attempts.
        public static let dead = Kind("dead")
        /// A letter failed too many replays and was parked.
        public static let parked = Kind("parked")
        /// Letters expired and went to the archive (``DeadLetterEvent/count``).
        public static let expired = Kind("expired")
        /// Letters were dropped to make room and went to the archive (``DeadLetterEvent/count``).
        public static let pruned = Kind("pruned")
        /// A replay finished (``DeadLetterEvent/count`` letters succeeded).
        public static let replayed = Kind("replayed")
        /// Letters were redriven (``DeadLetterEvent/count``).
        public static let redriven = Kind("redriven")
        /// A source's circuit opened.
        public static let circuitOpened = Kind("circuitOpened")
        /// A source's circuit closed.
        public static let circuitClosed = Kind("circuitClosed")
        /// The store went above 90% of its capacity.
        public static let capacityWarning = Kind("capacityWarning")

        public var description: String { self.rawValue }
    }

    /// What happened.
    public var kind: Kind
    /// When it happened.
    public var at: Date
    /// The letter concerned, if one.
    public var id: String?
    /// The source concerned, if one.
    public var source: String?
    /// The letter's status after the event, if one letter.
    public var status: DeadLetterStatus?
    /// How many letters, for events about several.
    public var count: Int

    /// Creates an event.
    public init(
        kind: Kind,
        at: Date,
        id: String? = nil,
        source: String? = nil,
        status: DeadLetterStatus? = nil,
        count: Int = 1
    ) {
        self.kind = kind
        self.at = at
        self.id = id
        self.source = source
        self.status = status
        self.count = count
    }

    public var description: String {
        var parts = [self.kind.rawValue]
        if let source = self.source { parts.append("source=\(source)") }
        if let id = self.id { parts.append("id=\(id)") }
        if let status = self.status { parts.append("status=\(status)") }
        if self.count != 1 { parts.append("count=\(self.count)") }
        return parts.joined(separator: " ")
    }
}

/// Hands every event to every subscriber; a slow subscriber loses its oldest events, never blocks the queue.
final class EventBroadcaster: Sendable {
    private let subscribers = PThreadLock<(next: Int, continuations: [Int: AsyncStream<DeadLetterEvent>.Continuation])>(
        (0, [:])
    )
    let bufferSize: Int

    init(bufferSize: Int) {
        self.bufferSize = bufferSize
    }

    var hasSubscribers: Bool { self.subscribers.withLock { !$0.continuations.isEmpty } }

    func subscribe() -> AsyncStream<DeadLetterEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: DeadLetterEvent.self,
            bufferingPolicy: .bufferingNewest(self.bufferSize)
        )
        let key = self.subscribers.withLock { state in
            let key = state.next
            state.next += 1
            state.continuations[key] = continuation
            return key
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.continuations.removeValue(forKey: key) }
        }
        return stream
    }

    func emit(_ event: DeadLetterEvent) {
        let continuations = self.subscribers.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield(event) }
    }

    func finish() {
        let continuations = self.subscribers.withLock { state in
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}
