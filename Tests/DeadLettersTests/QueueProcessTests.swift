import DeadLetters
import DeadLettersTesting
import Foundation
import Synchronization
import Testing

@Suite("DeadLetterQueue.process and add")
struct QueueProcessTests {
    struct Order: Codable, Sendable {
        var id: Int
        var total: Double
    }

    @Test("a handler that succeeds stores nothing")
    func successStoresNothing() async throws {
        let h = try QueueHarness()
        let result = try await h.queue.process(payload: Data("x".utf8), source: "orders") { _ in 42 }
        #expect(result.value == 42)
        #expect(try await h.store.count(DeadLetterFilter()) == 0)
    }

    @Test("immediate retries wait the policy's delays on the clock, then succeed")
    func immediateRetriesThenSuccess() async throws {
        let h = try QueueHarness()
        let calls = Shared<[Date]>([])
        let clock = h.clock
        let task = Task {
            try await h.queue.process(payload: Data("x".utf8), source: "orders") { _ -> String in
                let n = calls.withLock { calls in
                    calls.append(clock.now())
                    return calls.count
                }
                if n < 3 { throw TestFailure("flaky") }
                return "ok"
            }
        }
        await h.clock.waitForSleepers(1)
        h.clock.advance(by: .milliseconds(100))
        await h.clock.waitForSleepers(1)
        h.clock.advance(by: .milliseconds(100))
        let result = try await task.value
        #expect(result.value == "ok")
        let start = ManualClock.defaultStart
        #expect(calls.withLock { $0 } == [start, start.addingTimeInterval(0.1), start.addingTimeInterval(0.2)])
        #expect(try await h.store.count(DeadLetterFilter()) == 0)
    }

    @Test("a permanent reason is tried once and stored dead with its decoding context")
    func permanentReasonStoredDead() async throws {
        let h = try QueueHarness()
        let calls = Shared(0)
        let payload = Data(#"{"id":1}"#.utf8)
        let result = try await h.queue.process(payload: payload, source: "orders", metadata: ["tenant": "acme"]) {
            data -> Order in
            calls.withLock { $0 += 1 }
            return try JSONDecoder().decode(Order.self, from: data)
        }
        #expect(calls.withLock { $0 } == 1)
        let id = try #require(result.deadLetterID)
        let letter = try #require(try await h.store.letter(id: id))
        #expect(letter.status == .dead)
        #expect(letter.reason == .decoding)
        #expect(letter.errorType == "DecodingError")
        #expect(letter.errorMessage == "keyNotFound: total")
        #expect(letter.attempts == 1)
        #expect(letter.nextAttemptAt == nil)
        #expect(letter.payload == payload)
        #expect(letter.metadata == ["tenant": "acme"])
        #expect(letter.firstFailedAt == ManualClock.defaultStart)
        #expect(letter.expiresAt == ManualClock.defaultStart.addingTimeInterval(7 * 86_400))
        #expect(
            h.metrics.counterValue(
                label: "dlq_dead_letters_total",
                dimensions: [("source", "orders"), ("reason", "decoding")]
            ) == 1
        )
    }

    @Test("a retryable failure that outlasts the immediate attempts is scheduled for a delayed retry")
    func retryableScheduled() async throws {
        let h = try QueueHarness(immediateAttempts: 1)
        let result = try await h.queue.process(payload: Data(), source: "orders") { _ -> Int in
            throw TestFailure("downstream 503", reason: .dependency)
        }
        guard case .deadLettered(let id, let status) = result else {
            Issue.record("expected a dead letter")
            return
        }
        #expect(status == .retrying)
        let letter = try #require(try await h.store.letter(id: id))
        #expect(letter.nextAttemptAt == ManualClock.defaultStart.addingTimeInterval(10))
        #expect(letter.errorMessage == "downstream 503")
        #expect(letter.errorType == "TestFailure")
    }

    @Test("the typed process stores the JSON of the value")
    func typedProcess() async throws {
        let h = try QueueHarness(immediateAttempts: 1, delayedAttempts: 0)
        let result = try await h.queue.process(Order(id: 7, total: 9.5), source: "orders") { _ -> Void in
            throw TestFailure("rejected", reason: .validation)
        }
        let id = try #require(result.deadLetterID)
        let letter = try #require(try await h.store.letter(id: id))
        #expect(letter.contentType == "application/json")
        let decoded = try JSONDecoder().decode(Order.self, from: letter.payload)
        #expect(decoded.id == 7)
        #expect(letter.reason == .validation)
    }

    @Test("the causes of a wrapped error are recorded, outermost first")
    func causesRecorded() async throws {
        struct Wrapper: Error, DeadLetterUnderlyingErrorProviding, CustomStringConvertible {
            var underlyingError: (any Error)?
            var description: String { "could not charge card" }
        }
        let h = try QueueHarness()
        let inner = Wrapper(underlyingError: TestFailure("socket closed"))
        let id = try await h.queue.add(payload: Data(), source: "payments", error: Wrapper(underlyingError: inner))
        let letter = try #require(try await h.store.letter(id: id))
        #expect(letter.errorMessage == "could not charge card")
        #expect(letter.causes == ["Wrapper: could not charge card", "TestFailure: socket closed"])
        #expect(letter.reason == .unknown)
    }

    @Test("secret metadata keys are redacted before storage, ignoring case")
    func redaction() async throws {
        let h = try QueueHarness()
        let id = try await h.queue.add(
            payload: Data(),
            source: "webhooks",
            error: TestFailure("bad signature"),
            metadata: [
                "Authorization": "Bearer abc", "API-KEY": "k", "password": "p", "tenant": "acme", "tokenizer": "x",
            ]
        )
        let letter = try #require(try await h.store.letter(id: id))
        #expect(
            letter.metadata == [
                "Authorization": "[REDACTED]", "API-KEY": "[REDACTED]", "password": "[REDACTED]", "tenant": "acme",
                "tokenizer": "x",
            ]
        )
    }

    /// The redactor passes a key without lowercasing it when no secret key has its length and first letter:
    /// every key of a secret's shape must still be looked up, in any case, and only those.
    @Test("redaction by key shape: every spelling of a secret key is caught, and only those")
    func redactionShapes() {
        let redactor = MetadataRedactor(keys: ["Password", "api-key", "x", "ß-key", "9lives"])
        let secret = ["password", "PASSWORD", "PassWord", "API-KEY", "Api-Key", "X", "x", "SS-KEY", "ß-key", "9LIVES"]
        let plain = ["passwords", "passwor", "tenant", "api_key", "y", "xx", "ß-keys", "İpassword", "9live", ""]
        for key in secret {
            let lowered = key.lowercased()
            let expected = ["password", "api-key", "x", "ß-key", "9lives"].contains(lowered)
            #expect(redactor.redact([key: "v"])[key] == (expected ? MetadataRedactor.placeholder : "v"), "\(key)")
        }
        for key in plain {
            #expect(redactor.redact([key: "v"])[key] == "v", "\(key)")
        }
        // A secret key too long for the shapes: every key is looked up.
        let long = String(repeating: "k", count: 80)
        let longRedactor = MetadataRedactor(keys: [long])
        #expect(
            longRedactor.redact([long.uppercased(): "v", "tenant": "acme"]) == [
                long.uppercased(): MetadataRedactor.placeholder, "tenant": "acme",
            ]
        )
    }

    @Test("1,000 concurrent adders give an exact count and distinct ids")
    func concurrentAdders() async throws {
        let h = try QueueHarness()
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<1000 {
                group.addTask {
                    try await h.queue.add(
                        payload: Data("\(index)".utf8),
                        source: "s\(index % 7)",
                        error: TestFailure("e")
                    )
                }
            }
            var ids: [String] = []
            for try await id in group { ids.append(id) }
            return ids
        }
        #expect(Set(ids).count == 1000)
        #expect(try await h.queue.count() == 1000)
        #expect(try await h.queue.summary().total == 1000)
    }

    @Test("rejectNew refuses a letter beyond maxEntries and stores nothing of it")
    func rejectNew() async throws {
        let h = try QueueHarness { $0.limits = DeadLetterLimits(maxEntries: 3, overflow: .rejectNew) }
        for _ in 0..<3 { try await h.queue.add(payload: Data(), source: "a", error: TestFailure("e")) }
        await #expect(throws: DeadLetterError.self) {
            try await h.queue.add(payload: Data(), source: "a", error: TestFailure("e"))
        }
        do {
            try await h.queue.add(payload: Data(), source: "a", error: TestFailure("e"))
        } catch let error as DeadLetterError {
            #expect(error.code == .capacityExceeded)
        }
        #expect(try await h.queue.count() == 3)
        #expect(h.archive.letters.isEmpty)
    }

    @Test("dropOldest evicts the oldest letters to the archive")
    func dropOldest() async throws {
        let h = try QueueHarness { $0.limits = DeadLetterLimits(maxEntries: 3, overflow: .dropOldest) }
        var ids: [String] = []
        for index in 0..<5 {
            ids.append(try await h.queue.add(payload: Data(), source: "a", error: TestFailure("e\(index)")))
            h.clock.advance(by: .seconds(1))
        }
        let remaining = try await h.queue.letters().letters.map(\.id)
        #expect(remaining == Array(ids.suffix(3)))
        #expect(h.archive.letters.map(\.id) == Array(ids.prefix(2)))
        #expect(Set(h.archive.reasons) == ["pruned"])
        #expect(h.metrics.counterValue(label: "dlq_pruned_total") == 2)
    }

    @Test("letters that fail the same way group together")
    func grouping() async throws {
        let h = try QueueHarness()
        for order in [123, 456, 789] {
            try await h.queue.add(payload: Data(), source: "orders", error: TestFailure("order \(order) not found"))
        }
        try await h.queue.add(payload: Data(), source: "invoices", error: TestFailure("order 1 not found"))
        try await h.queue.add(payload: Data(), source: "orders", error: TestFailure("total is negative"))
        let groups = try await h.queue.groups()
        #expect(groups.map(\.count) == [4, 1])
        #expect(groups[0].sources == ["invoices", "orders"])
        #expect(groups[0].errorType == "TestFailure")
    }

    @Test("an open circuit stores items without calling the handler")
    func circuitOpenStoresWithoutCalling() async throws {
        let h = try QueueHarness(immediateAttempts: 1) {
            var breaker = CircuitBreakerConfiguration()
            breaker.consecutiveFailures = 2
            breaker.failureRateThreshold = nil
            $0.circuitBreaker = breaker
        }
        let calls = Shared(0)
        for _ in 0..<5 {
            _ = try await h.queue.process(payload: Data(), source: "pay") { _ -> Void in
                calls.withLock { $0 += 1 }
                throw TestFailure("down")
            }
        }
        #expect(calls.withLock { $0 } == 2)
        #expect(h.queue.circuitState(of: "pay") == .open)
        let letters = try await h.queue.letters().letters
        #expect(letters.count == 5)
        #expect(letters.filter { $0.errorType == "CircuitOpenError" }.count == 3)
        #expect(letters.allSatisfy { $0.status == .retrying })
    }

    @Test("invalid configuration is refused with the field named")
    func invalidConfiguration() throws {
        var configuration = DeadLetterQueue.Configuration()
        configuration.concurrency = 0
        #expect {
            _ = try DeadLetterQueue(store: MemoryDeadLetterStore(), configuration: configuration)
        } throws: { error in
            (error as? DeadLetterError)?.field == "concurrency"
        }
    }
}
