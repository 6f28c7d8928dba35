import DeadLetters
import Foundation

/// A store whose writes finish even when the calling task is cancelled.
///
/// Ctrl-C cancels a replay: the engine stops starting letters, and the letters in flight finish. Their
/// outcome (removed, or the new error recorded) must still be written, but a cancelled task cannot write
/// to every store (GRDB refuses). Each write therefore runs in its own task, which cancellation does not
/// reach; reads are passed through as they are.
struct ShieldedStore: DeadLetterStoreWrapper {
    let base: any DeadLetterStore

    init(_ base: any DeadLetterStore) {
        self.base = base
    }

    private func shielded<R: Sendable>(_ body: @escaping @Sendable () async throws -> R) async throws -> R {
        try await Task { try await body() }.value
    }

    func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult {
        let base = self.base
        return try await self.shielded { try await base.append(letters, onConflict: onConflict, limits: limits) }
    }

    func letter(id: String) async throws -> DeadLetter? {
        try await self.base.letter(id: id)
    }

    func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        try await self.base.page(filter, after: cursor, limit: limit)
    }

    func pageWithoutPayloads(
        _ filter: DeadLetterFilter,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        try await self.base.pageWithoutPayloads(filter, after: cursor, limit: limit)
    }

    func count(_ filter: DeadLetterFilter) async throws -> Int {
        try await self.base.count(filter)
    }

    func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        try await self.base.summary(filter, now: now)
    }

    func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        try await self.base.groups(filter, limit: limit)
    }

    func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] {
        let base = self.base
        return try await self.shielded {
            try await base.claimDue(now: now, limit: limit, owner: owner, leaseUntil: leaseUntil, sources: sources)
        }
    }

    func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        let base = self.base
        return try await self.shielded {
            try await base.claim(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil)
        }
    }

    func complete(id: String, owner: String) async throws -> Bool {
        let base = self.base
        return try await self.shielded { try await base.complete(id: id, owner: owner) }
    }

    func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        let base = self.base
        return try await self.shielded { try await base.release(letter, owner: owner) }
    }

    func write(_ outcomes: [DeadLetterOutcome], owner: String) async throws -> [Bool] {
        let base = self.base
        return try await self.shielded { try await base.write(outcomes, owner: owner) }
    }

    func changeState(
        ids: [String],
        now: Date,
        owner: String,
        leaseUntil: Date,
        _ change: @escaping @Sendable (DeadLetter) -> DeadLetter?
    ) async throws -> [DeadLetter] {
        let base = self.base
        return try await self.shielded {
            try await base.changeState(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil, change)
        }
    }

    func delete(ids: [String]) async throws -> Int {
        let base = self.base
        return try await self.shielded { try await base.delete(ids: ids) }
    }

    func usage() async throws -> DeadLetterUsage {
        try await self.base.usage()
    }

    func importLetters<Letters: AsyncSequence & Sendable>(
        _ letters: Letters,
        onConflict: DeadLetterConflictPolicy
    ) async throws -> DeadLetterAppendResult where Letters.Element == DeadLetter {
        try await self.base.importLetters(letters, onConflict: onConflict)
    }
}
