import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import Testing

/// `add` on a memory store without limits takes its own path: the store is given the letter's parts, and no
/// ``DeadLetter`` is made. These tests run the same adds through that path and through the general one (the
/// same memory store behind a wrapper, which the queue does not recognise), with the same clock and random
/// source, and compare everything a caller can see.
@Suite struct MemoryAddPathTests {
    /// A queue on `store` with a manual clock, a seeded random source, a time-to-live and test metrics.
    struct Side {
        let clock = ManualClock()
        let metrics = TestMetricsFactory()
        let queue: DeadLetterQueue

        init(store: some DeadLetterStore, configure: (inout DeadLetterQueue.Configuration) -> Void = { _ in }) throws {
            var configuration = DeadLetterQueue.Configuration()
            configuration.metricsFactory = self.metrics
            configuration.instanceID = "add-path"
            configuration.timeToLive = .seconds(3 * 86_400)
            configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            configure(&configuration)
            self.queue = try DeadLetterQueue(
                store: store,
                configuration: configuration,
                clock: self.clock,
                random: SeededRandom(seed: 11)
            )
        }
    }

    struct Underlying: Error, CustomStringConvertible, DeadLetterUnderlyingErrorProviding {
        var description: String { "wrapped failure 42" }
        var underlyingError: (any Error)? { TestFailure("socket closed after 3 tries", reason: .dependency) }
    }

    /// One add of each kind the two paths must store alike.
    static func addEverything(to queue: DeadLetterQueue, clock: ManualClock) async throws -> [String] {
        var ids: [String] = []
        let long = String(repeating: "é1", count: 3_000)
        let errors: [any Error] = [
            TestFailure("order 17 failed", reason: .processing),
            TestFailure(long, reason: .validation),
            TestFailure("caf\u{E9} 'quoted' 0xdeadbeef", reason: .dependency),
            Underlying(),
            CancellationError(),
        ]
        let metadata: [[String: String]] = [
            [:], ["tenant": "acme"], ["tenant": "acme", "password": "hunter2"], ["Authorization": "Bearer x"],
            ["caf\u{E9}": "e\u{301}"],
        ]
        for (index, error) in errors.enumerated() {
            for (pairs, attempts) in zip(metadata, [0, 1, 3, 7, 1_000]) {
                let id = try await queue.add(
                    payload: Data("{\"n\":\(index)}".utf8),
                    source: index.isMultiple(of: 2) ? "orders" : "bill\u{E9}s",
                    error: error,
                    attempts: attempts,
                    metadata: pairs,
                    contentType: attempts == 3 ? "application/json" : nil
                )
                ids.append(id)
            }
            clock.advance(by: .milliseconds(1_234))
        }
        ids.append(
            try await queue.add(
                payload: Data(),
                source: "orders",
                reason: .decoding,
                errorType: "Custom.Error",
                errorMessage: long,
                causes: ["first: cause", "second"],
                attempts: 2,
                metadata: ["k": "v"],
                contentType: "text/plain"
            )
        )
        ids.append(
            try await queue.add(
                payload: Data([0xFF, 0x00]),
                source: "orders",
                reason: .processing,
                errorType: "E",
                errorMessage: "",
                attempts: -5
            )
        )
        return ids
    }

    @Test func storesWhatTheGeneralPathStores() async throws {
        let direct = try Side(store: MemoryDeadLetterStore())
        let general = try Side(store: CancellationRefusingStore())
        let directEvents = direct.queue.events()
        let generalEvents = general.queue.events()

        let directIDs = try await Self.addEverything(to: direct.queue, clock: direct.clock)
        let generalIDs = try await Self.addEverything(to: general.queue, clock: general.clock)

        #expect(directIDs == generalIDs)
        #expect(Set(directIDs).count == directIDs.count)
        for id in directIDs {
            let stored = try #require(try await direct.queue.store.letter(id: id))
            let expected = try #require(try await general.queue.store.letter(id: id))
            #expect(stored == expected, "letter \(id)")
            // Byte for byte, which `==` on strings does not check.
            #expect(Array(stored.errorMessage.utf8) == Array(expected.errorMessage.utf8))
            #expect(Array(stored.source.utf8) == Array(expected.source.utf8))
            #expect(
                stored.metadata.map { Array($0.key.utf8) + [0] + Array($0.value.utf8) }.sorted {
                    $0.lexicographicallyPrecedes($1)
                }
                    == expected.metadata.map { Array($0.key.utf8) + [0] + Array($0.value.utf8) }.sorted {
                        $0.lexicographicallyPrecedes($1)
                    }
            )
        }
        // Redaction, truncation, attempts and the time-to-live took effect (so the comparison compared them).
        let redacted = try #require(try await direct.queue.store.letter(id: directIDs[2]))
        #expect(redacted.metadata["password"] != "hunter2")
        #expect(redacted.attempts == 3)
        #expect(redacted.expiresAt == redacted.lastFailedAt.addingTimeInterval(3 * 86_400))
        let truncated = try #require(try await direct.queue.store.letter(id: directIDs[5]))
        #expect(truncated.errorMessage.utf8.count <= CapturedError.maxMessageLength + 3)
        #expect(try await direct.queue.store.letter(id: directIDs[0])?.attempts == 1)

        #expect(try await direct.queue.store.usage() == general.queue.store.usage())
        #expect(try await direct.queue.summary() == general.queue.summary())
        let page = try await direct.queue.store.page(DeadLetterFilter(), after: nil, limit: 100)
        #expect(page.letters.map(\.id) == directIDs.sorted())

        for side in [direct, general] {
            #expect(
                side.metrics.timerValues(label: "dlq_store_operation_seconds", dimensions: [("operation", "append")])
                    .count == directIDs.count
            )
        }
        for source in ["orders", "bill\u{E9}s"] {
            for reason in [FailureReason.processing, .validation, .dependency, .cancelled, .decoding] {
                let dimensions = [("source", source), ("reason", reason.rawValue)]
                #expect(
                    direct.metrics.counterValue(label: "dlq_dead_letters_total", dimensions: dimensions)
                        == general.metrics.counterValue(label: "dlq_dead_letters_total", dimensions: dimensions),
                    "\(source) \(reason)"
                )
            }
        }

        var directSeen: [DeadLetterEvent] = []
        var generalSeen: [DeadLetterEvent] = []
        for await event in directEvents {
            directSeen.append(event)
            if directSeen.count == directIDs.count { break }
        }
        for await event in generalEvents {
            generalSeen.append(event)
            if generalSeen.count == generalIDs.count { break }
        }
        #expect(directSeen == generalSeen)
        #expect(directSeen.map(\.id) == directIDs)
        #expect(directSeen.allSatisfy { $0.kind == .added && $0.status == .dead })
    }

    @Test func refusesWhatTheGeneralPathRefuses() async throws {
        let direct = try Side(store: MemoryDeadLetterStore())
        let general = try Side(store: CancellationRefusingStore())
        for side in [direct, general] {
            let error = await #expect(throws: DeadLetterError.self) {
                try await side.queue.add(
                    payload: Data(),
                    source: "orders",
                    error: TestFailure("x"),
                    attempts: DeadLetter.maximumCount + 1
                )
            }
            #expect(error?.code == .invalidFormat)
            #expect(try await side.queue.store.count(DeadLetterFilter()) == 0)
            #expect(
                side.metrics.counterValue(
                    label: "dlq_dead_letters_total",
                    dimensions: [("source", "orders"), ("reason", "dependency")]
                ) == nil
            )
        }
    }

    /// A bounded memory store takes the general path, which evicts and checks capacity.
    @Test func boundedStoreStillEvicts() async throws {
        let archive = MemoryArchive()
        let side = try Side(store: MemoryDeadLetterStore()) { configuration in
            configuration.limits = DeadLetterLimits(maxEntries: 2, overflow: .dropOldest)
            configuration.archive = archive
        }
        var ids: [String] = []
        for order in 0..<3 {
            ids.append(
                try await side.queue.add(payload: Data(), source: "orders", error: TestFailure("order \(order)"))
            )
        }
        #expect(try await side.queue.store.count(DeadLetterFilter()) == 2)
        #expect(archive.letters.map(\.id) == [ids[0]])
    }
}
