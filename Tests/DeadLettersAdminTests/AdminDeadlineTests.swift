import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// A store that never answers, as a database that went away while connections wait: every request must still
/// be answered in time.
@Suite("Admin deadlines")
struct AdminDeadlineTests {
    @Test("With a store that never answers: /healthz is 503 and /metrics 200 within 2 s, reads 503 at their deadline")
    func stalledStore() async throws {
        let stalled = StalledStore()
        let harness = try await AdminHarness(seed: false, store: stalled, requestTimeout: .seconds(2))
        try await harness.run { client in
            // The deadlines are 1.5 s (health, metrics) and 2 s (reads); the bounds below leave room for a loaded
            // 2-core machine running the other suites, and still fail on the 45-60 s hang this guards against.
            let clock = ContinuousClock()
            var start = clock.now
            let health = try await client.send(.get, "/healthz")
            #expect(health.status == .serviceUnavailable)
            #expect(clock.now - start < .seconds(8))

            start = clock.now
            let metrics = try await client.send(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.text.contains("dlq_store_up 0"), "\(metrics.text)")
            #expect(clock.now - start < .seconds(8))

            for path in ["/api/v1/stats", "/api/v1/dead-letters", "/api/v1/dead-letters/x", "/letters"] {
                start = clock.now
                let response = try await client.send(.get, path)
                #expect(response.status == .serviceUnavailable, "\(path)")
                #expect(clock.now - start < .seconds(10), "\(path)")
                if path.hasPrefix("/api") { #expect(try response.errorCode() == "timeout") }
            }

            // The store answers again: so do the routes, at once.
            stalled.answering = true
            start = clock.now
            #expect(try await client.send(.get, "/healthz").status == .ok)
            #expect(try await client.send(.get, "/metrics").text.contains("dlq_store_up 1"))
            #expect(clock.now - start < .seconds(8))
        }
    }
}

/// A memory store whose every call waits, without end, until ``answering`` is set.
final class StalledStore: DeadLetterStore, @unchecked Sendable {
    private let base = MemoryDeadLetterStore()
    private let lock = NSLock()
    private var _answering = false

    var answering: Bool {
        get { self.lock.withLock { self._answering } }
        set { self.lock.withLock { self._answering = newValue } }
    }

    private func stall() async throws {
        while !self.answering { try await Task.sleep(for: .milliseconds(20)) }
    }

    func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult {
        try await self.stall()
        return try await self.base.append(letters, onConflict: onConflict, limits: limits)
    }
    func letter(id: String) async throws -> DeadLetter? {
        try await self.stall()
        return try await self.base.letter(id: id)
    }
    func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        try await self.stall()
        return try await self.base.page(filter, after: cursor, limit: limit)
    }
    func count(_ filter: DeadLetterFilter) async throws -> Int {
        try await self.stall()
        return try await self.base.count(filter)
    }
    func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        try await self.stall()
        return try await self.base.summary(filter, now: now)
    }
    func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        try await self.stall()
        return try await self.base.groups(filter, limit: limit)
    }
    func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] {
        try await self.stall()
        return try await self.base.claimDue(
            now: now,
            limit: limit,
            owner: owner,
            leaseUntil: leaseUntil,
            sources: sources
        )
    }
    func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        try await self.stall()
        return try await self.base.claim(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil)
    }
    func complete(id: String, owner: String) async throws -> Bool {
        try await self.stall()
        return try await self.base.complete(id: id, owner: owner)
    }
    func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        try await self.stall()
        return try await self.base.release(letter, owner: owner)
    }
    func redrive(_ filter: DeadLetterFilter, now: Date, limit: Int?) async throws -> Int {
        try await self.stall()
        return try await self.base.redrive(filter, now: now, limit: limit)
    }
    func delete(ids: [String]) async throws -> Int {
        try await self.stall()
        return try await self.base.delete(ids: ids)
    }
    func usage() async throws -> DeadLetterUsage {
        try await self.stall()
        return try await self.base.usage()
    }
}
