#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Where dead letters are kept: in memory, in a SQLite file, or in PostgreSQL.
///
/// Every store has the same semantics, which the conformance suite of `DeadLettersTesting` checks:
/// - Letters are listed in id order (oldest first, since ids are time-ordered), or in a ``DeadLetterSort`` order.
/// - Filters follow ``DeadLetterFilter/matches(_:)`` exactly and are applied as bound parameters.
/// - A letter may carry a lease (an owner and an expiry), taken by ``claimDue(now:limit:owner:leaseUntil:sources:)``
///   or ``claim(ids:now:owner:leaseUntil:)``. While a lease is live, no other owner can claim, redrive or
///   release the letter. A lease whose expiry is at or before `now` is no lease.
/// - Nothing loads the whole store into memory; a store holding millions of letters opens as fast as an empty one.
/// - Every method is safe to call from many tasks at once.
public protocol DeadLetterStore: DeadLetterOperationLog {
    /// Stores letters, all or none.
    ///
    /// Durable stores return only once the letters are committed to disk. With `limits`, the store keeps
    /// itself within them in the same transaction: `rejectNew` throws ``DeadLetterError/Code/capacityExceeded``
    /// and stores nothing, `dropOldest` removes the oldest letters (by id) and returns them so the caller can
    /// archive them.
    /// - Parameters:
    ///   - letters: the letters to store.
    ///   - onConflict: what to do with a letter whose id is already stored.
    ///   - limits: the capacity to keep; `.unbounded` by default.
    /// - Returns: how many letters were inserted and skipped, and the letters evicted to make room.
    /// - Throws: ``DeadLetterError`` with `duplicateID` (under `.fail`), `capacityExceeded`, or a store error.
    func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult

    /// The letter with `id`, or `nil`.
    func letter(id: String) async throws -> DeadLetter?

    /// A page of the letters `filter` selects, in id order, starting after the id `cursor`.
    /// - Parameters:
    ///   - filter: which letters.
    ///   - cursor: the ``DeadLetterPage/nextCursor`` of the previous page, or `nil` for the first page.
    ///   - limit: at most this many letters (at least 1).
    func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage

    /// ``page(_:after:limit:)`` for views that show no payload: every letter's payload is empty. A store that
    /// keeps payloads sealed (``EncryptedDeadLetterStore``) leaves them closed, so that a letter sealed with a
    /// key that is not configured does not fail the page. A default implementation reads ``page(_:after:limit:)``.
    func pageWithoutPayloads(
        _ filter: DeadLetterFilter,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage

    /// A page of the letters `filter` selects, in the order `sort`, starting after `cursor`.
    ///
    /// Cursors are keyset cursors (the sort key and the id of the last letter), so paging never skips or
    /// repeats a letter, even among ties. SQL stores serve each order from an index; a default implementation
    /// reads every selected letter (the memory store's way).
    /// - Parameters:
    ///   - filter: which letters.
    ///   - sort: the order; ``DeadLetterSort/id`` is ``page(_:after:limit:)``.
    ///   - cursor: the ``DeadLetterPage/nextCursor`` of the previous page of the same order, or `nil`.
    ///   - limit: at most this many letters (at least 1).
    /// - Throws: ``DeadLetterError/Code/invalidFilter`` for a cursor that is not one of this order.
    func page(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage

    /// ``page(_:sortedBy:after:limit:)`` for views that show no payload (see ``pageWithoutPayloads(_:after:limit:)``).
    func pageWithoutPayloads(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage

    /// How many letters `filter` selects.
    func count(_ filter: DeadLetterFilter) async throws -> Int

    /// Counts and times over the letters `filter` selects; ages are measured from `now`.
    func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary

    /// The letters `filter` selects, grouped by fingerprint, largest group first (ties by fingerprint).
    /// - Parameter limit: at most this many groups.
    func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup]

    /// Takes a lease on up to `limit` letters that are due: status `retrying`, `nextAttemptAt` at or before
    /// `now`, no live lease, and a source among `sources`; earliest `nextAttemptAt` first.
    /// - Returns: the claimed letters as stored.
    func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter]

    /// Takes a lease on the letters with these ids that have no live lease, or whose live lease `owner` holds
    /// (a resumed replay takes back the letters its stopped process held; that claim counts as abandoned).
    /// - Returns: the letters claimed, as stored; a letter that is gone or leased by another is left out.
    func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter]

    /// Removes a letter whose handler succeeded, if `owner` still holds its lease.
    /// - Returns: whether the letter was removed.
    func complete(id: String, owner: String) async throws -> Bool

    /// Writes a claimed letter's new state (status, attempts, times, error, history, …) and ends the lease,
    /// if `owner` still holds it.
    /// - Returns: whether the letter was written.
    func release(_ letter: DeadLetter, owner: String) async throws -> Bool

    /// Writes the outcomes of claimed letters, each only if `owner` still holds its lease: removals of letters
    /// whose handler succeeded, and new states (a failure recorded, a redrive, a park) that end the lease.
    ///
    /// Durable stores write them in shared commits. The default implementation calls
    /// ``complete(id:owner:)`` and ``release(_:owner:)`` for all of them at once, which durable stores group.
    /// - Returns: for each outcome, in order, whether it was written (`false`: the lease was lost).
    func write(_ outcomes: [DeadLetterOutcome], owner: String) async throws -> [Bool]

    /// Counts the letters `filter` selects into the buckets of `timeline` (empty buckets covering the window)
    /// by their `lastFailedAt` and reason, and lists the fingerprints whose earliest first failure among the
    /// selected letters is in the window (``DeadLetterTimeline/firstSeen``, earliest first, at most 100).
    ///
    /// The default implementation reads the window's letters a page at a time, without payloads, and their
    /// fingerprints' groups.
    func timeline(_ filter: DeadLetterFilter, into timeline: DeadLetterTimeline) async throws -> DeadLetterTimeline

    /// Writes outcomes as ``write(_:owner:)`` does and, for each one written, records its letter's outcome in
    /// its operation's set as ``DeadLetterOperationLog/recordOperationLetters(_:)`` does: in the same
    /// transaction, so that a process killed at any moment leaves both or neither (a resumed replay then
    /// neither counts a letter that ran as skipped nor runs it again).
    ///
    /// The SQLite and PostgreSQL stores write both in one transaction. The default implementation (the memory
    /// store's, which a crash empties anyway) writes the outcomes, then records those written; a failure to
    /// record is not reported (the letters are written), and such a letter's outcome is read back from its
    /// history when its replay resumes, or counted as skipped when the letter is gone.
    /// - Parameters:
    ///   - records: one per outcome, in order: the outcome of its letter in an operation, or `nil`.
    /// - Returns: for each outcome, in order, whether it was written (`false`: the lease was lost, and its
    ///   record was not written either).
    func write(
        _ outcomes: [DeadLetterOutcome],
        owner: String,
        recording records: [DeadLetterOperationLetter?]
    ) async throws -> [Bool]

    /// Claims the letters with these ids that have no live lease, applies `change` to each and writes them
    /// back, ending the lease: a change of state only (a redrive, a park), which never reads or changes the
    /// payload. `change` returns `nil` to leave a letter as it was.
    ///
    /// A store that transforms payloads (``EncryptedDeadLetterStore``) passes the letters through without
    /// opening them, so that a letter sealed with a key that is not configured can still be redriven or
    /// parked. The default implementation claims, applies `change` and calls ``write(_:owner:)``.
    /// - Returns: the changed letters as written (their payloads are not to be used).
    func changeState(
        ids: [String],
        now: Date,
        owner: String,
        leaseUntil: Date,
        _ change: @escaping @Sendable (DeadLetter) -> DeadLetter?
    ) async throws -> [DeadLetter]

    /// Makes the selected letters without a live lease due now: status `retrying`, `nextAttemptAt` = `now`.
    ///
    /// The queue no longer calls this: its redrive goes through ``DeadLetterLifecycle`` (claim, record a
    /// `redriven` entry, release), so that every change of a letter is in its history. The default
    /// implementation does the same without an actor.
    /// - Parameters:
    ///   - limit: at most this many letters (oldest first), or `nil` for all.
    /// - Returns: how many letters were changed.
    func redrive(_ filter: DeadLetterFilter, now: Date, limit: Int?) async throws -> Int

    /// Removes the letters with these ids, leased or not.
    /// - Returns: how many were removed.
    func delete(ids: [String]) async throws -> Int

    /// How many letters the store holds and their ``DeadLetter/storageSize`` in all.
    func usage() async throws -> DeadLetterUsage

    /// Stores every letter of `letters` in one transaction: all or nothing, even if the process dies midway.
    ///
    /// Durable stores stream the letters into one transaction, so memory stays flat however many there are.
    /// The default implementation collects them and calls ``append(_:onConflict:limits:)`` once.
    /// - Throws: whatever reading `letters` throws (nothing is stored then), or a store error.
    func importLetters<Letters: AsyncSequence & Sendable>(
        _ letters: Letters,
        onConflict: DeadLetterConflictPolicy
    ) async throws -> DeadLetterAppendResult where Letters.Element == DeadLetter
}

/// The outcome of a claimed letter, for ``DeadLetterStore/write(_:owner:)``.
public enum DeadLetterOutcome: Sendable, Hashable {
    /// Remove the letter (its handler succeeded).
    case complete(id: String)
    /// Write the letter's new state and end its lease.
    case release(DeadLetter)

    /// The id of the letter concerned.
    public var id: String {
        switch self {
        case .complete(let id): return id
        case .release(let letter): return letter.id
        }
    }
}

/// What ``DeadLetterStore/append(_:onConflict:limits:)`` does with a letter whose id is already stored.
public enum DeadLetterConflictPolicy: Sendable, Hashable {
    /// Throw ``DeadLetterError/Code/duplicateID`` and store nothing.
    case fail
    /// Keep the stored letter and skip the new one (imports are idempotent this way).
    case skip
}

/// How many letters a store may hold, and what happens beyond that.
public struct DeadLetterLimits: Sendable, Hashable {
    /// What happens to a letter that does not fit.
    public enum OverflowPolicy: Sendable, Hashable {
        /// Remove the oldest letters (they go to the archive) to make room.
        case dropOldest
        /// Refuse the new letter with ``DeadLetterError/Code/capacityExceeded``.
        case rejectNew
    }

    /// At most this many letters; `nil` for no limit.
    public var maxEntries: Int?
    /// At most this many bytes of ``DeadLetter/storageSize``; `nil` for no limit.
    public var maxBytes: Int?
    /// What happens beyond the limits. Default `dropOldest`.
    public var overflow: OverflowPolicy

    /// Creates limits.
    public init(maxEntries: Int? = nil, maxBytes: Int? = nil, overflow: OverflowPolicy = .dropOldest) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        self.overflow = overflow
    }

    /// No limits.
    public static var unbounded: DeadLetterLimits { DeadLetterLimits() }

    /// Whether any limit is set.
    public var isBounded: Bool { self.maxEntries != nil || self.maxBytes != nil }
}

/// What an append did.
public struct DeadLetterAppendResult: Sendable, Hashable {
    /// Letters newly stored.
    public var inserted: Int
    /// Letters skipped because their id was already stored.
    public var skipped: Int
    /// Letters removed to make room, oldest first.
    public var evicted: [DeadLetter]

    /// Creates a result.
    public init(inserted: Int, skipped: Int = 0, evicted: [DeadLetter] = []) {
        self.inserted = inserted
        self.skipped = skipped
        self.evicted = evicted
    }
}

/// A page of letters.
public struct DeadLetterPage: Sendable, Hashable {
    /// The letters, in id order.
    public var letters: [DeadLetter]
    /// The cursor of the next page, or `nil` when this is the last one.
    public var nextCursor: String?

    /// Creates a page.
    public init(letters: [DeadLetter], nextCursor: String?) {
        self.letters = letters
        self.nextCursor = nextCursor
    }

    /// Empties every letter's payload (see ``DeadLetterStore/pageWithoutPayloads(_:after:limit:)``).
    mutating func removePayloads() {
        for index in self.letters.indices { self.letters[index].payload = Data() }
    }
}

/// How much a store holds.
public struct DeadLetterUsage: Sendable, Hashable {
    /// The number of letters.
    public var count: Int
    /// Their ``DeadLetter/storageSize`` in all.
    public var bytes: Int

    /// Creates a usage.
    public init(count: Int, bytes: Int) {
        self.count = count
        self.bytes = bytes
    }
}

/// Letters that failed the same way: one fingerprint.
public struct DeadLetterGroup: Sendable, Hashable {
    /// The shared fingerprint.
    public var fingerprint: String
    /// How many letters have it.
    public var count: Int
    /// Their error type.
    public var errorType: String
    /// The error message of one of them.
    public var sampleMessage: String
    /// The sources they came from, sorted.
    public var sources: [String]
    /// The earliest `firstFailedAt` among them.
    public var firstFailedAt: Date
    /// The latest `lastFailedAt` among them.
    public var lastFailedAt: Date

    /// Creates a group.
    public init(
        fingerprint: String,
        count: Int,
        errorType: String,
        sampleMessage: String,
        sources: [String],
        firstFailedAt: Date,
        lastFailedAt: Date
    ) {
        self.fingerprint = fingerprint
        self.count = count
        self.errorType = errorType
        self.sampleMessage = sampleMessage
        self.sources = sources
        self.firstFailedAt = firstFailedAt
        self.lastFailedAt = lastFailedAt
    }
}

/// Counts and times over a set of letters.
public struct DeadLetterSummary: Sendable, Hashable {
    /// The age buckets of ``byAge``, by the time since `firstFailedAt`.
    public static let ageBuckets = ["<1h", "1h-6h", "6h-24h", ">24h"]

    /// The number of letters.
    public var total: Int
    /// Counts by ``FailureReason/rawValue``.
    public var byReason: [String: Int]
    /// Counts by source.
    public var bySource: [String: Int]
    /// Counts by error type.
    public var byErrorType: [String: Int]
    /// Counts by status (`retrying`, `dead`, `parked`); every status is present, with 0 when none.
    public var byStatus: [String: Int]
    /// Counts by age since the first failure: `<1h`, `1h-6h`, `6h-24h`, `>24h`; every bucket is present.
    public var byAge: [String: Int]
    /// The earliest `firstFailedAt`, or `nil` when there are no letters.
    public var oldestFailedAt: Date?
    /// The latest `lastFailedAt`, or `nil` when there are no letters.
    public var newestFailedAt: Date?
    /// The mean of `attempts`, 0 when there are no letters.
    public var averageAttempts: Double

    /// Creates a summary.
    public init(
        total: Int,
        byReason: [String: Int],
        bySource: [String: Int],
        byErrorType: [String: Int],
        byStatus: [String: Int],
        byAge: [String: Int],
        oldestFailedAt: Date?,
        newestFailedAt: Date?,
        averageAttempts: Double
    ) {
        self.total = total
        self.byReason = byReason
        self.bySource = bySource
        self.byErrorType = byErrorType
        self.byStatus = byStatus
        self.byAge = byAge
        self.oldestFailedAt = oldestFailedAt
        self.newestFailedAt = newestFailedAt
        self.averageAttempts = averageAttempts
    }

    /// The age bucket of a letter that first failed at `firstFailedAt`, seen at `now`.
    public static func ageBucket(firstFailedAt: Date, now: Date) -> String {
        self.ageBuckets[
            self.ageBucketIndex(milliseconds: now.millisecondsSince1970 - firstFailedAt.millisecondsSince1970)
        ]
    }
}

extension DeadLetterStore {
    public func importLetters<Letters: AsyncSequence & Sendable>(
        _ letters: Letters,
        onConflict: DeadLetterConflictPolicy
    ) async throws -> DeadLetterAppendResult where Letters.Element == DeadLetter {
        var all: [DeadLetter] = []
        for try await letter in letters { all.append(letter) }
        return try await self.append(all, onConflict: onConflict, limits: .unbounded)
    }

    public func write(_ outcomes: [DeadLetterOutcome], owner: String) async throws -> [Bool] {
        if outcomes.count == 1 {
            switch outcomes[0] {
            case .complete(let id): return [try await self.complete(id: id, owner: owner)]
            case .release(let letter): return [try await self.release(letter, owner: owner)]
            }
        }
        return try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for (index, outcome) in outcomes.enumerated() {
                group.addTask {
                    switch outcome {
                    case .complete(let id): return (index, try await self.complete(id: id, owner: owner))
                    case .release(let letter): return (index, try await self.release(letter, owner: owner))
                    }
                }
            }
            var written = [Bool](repeating: false, count: outcomes.count)
            for try await (index, done) in group { written[index] = done }
            return written
        }
    }

    public func timeline(
        _ filter: DeadLetterFilter,
        into timeline: DeadLetterTimeline
    ) async throws -> DeadLetterTimeline {
        guard let start = timeline.start, let end = timeline.end else { return timeline }
        var result = timeline
        let window = DeadLetterTimeline.windowFilter(filter, timeline)
        var reasons: [String: String] = [:]
        var cursor: String?
        repeat {
            let page = try await self.pageWithoutPayloads(window, after: cursor, limit: 1000)
            for letter in page.letters {
                result.add(1, reason: letter.reason.rawValue, at: letter.lastFailedAt)
                if reasons[letter.fingerprint] == nil { reasons[letter.fingerprint] = letter.reason.rawValue }
            }
            cursor = page.nextCursor
        } while cursor != nil
        result.firstSeen = try await self.firstSeen(filter, reasons: reasons, in: start..<end)
        return result
    }

    /// Of these fingerprints (with a reason each), those whose earliest first failure among the letters
    /// `filter` selects is in `window`, earliest first, at most 100.
    package func firstSeen(
        _ filter: DeadLetterFilter,
        reasons: [String: String],
        in window: Range<Date>
    ) async throws -> [DeadLetterTimeline.FirstSeen] {
        var firstSeen: [DeadLetterTimeline.FirstSeen] = []
        let fingerprints = reasons.keys.sorted()
        for start in stride(from: 0, to: fingerprints.count, by: 500) {
            var those = filter
            those.fingerprints = Array(fingerprints[start..<Swift.min(fingerprints.count, start + 500)])
            for group in try await self.groups(those, limit: 500) where window.contains(group.firstFailedAt) {
                firstSeen.append(
                    DeadLetterTimeline.FirstSeen(
                        fingerprint: group.fingerprint,
                        errorType: group.errorType,
                        reason: reasons[group.fingerprint] ?? "",
                        at: group.firstFailedAt
                    )
                )
            }
        }
        firstSeen.sort { ($0.at, $0.fingerprint) < ($1.at, $1.fingerprint) }
        return Array(firstSeen.prefix(100))
    }

    public func write(
        _ outcomes: [DeadLetterOutcome],
        owner: String,
        recording records: [DeadLetterOperationLetter?]
    ) async throws -> [Bool] {
        let written = try await self.write(outcomes, owner: owner)
        let recorded = zip(records, written).compactMap { record, done in done ? record : nil }
        if !recorded.isEmpty { _ = try? await self.recordOperationLetters(recorded) }
        return written
    }

    public func changeState(
        ids: [String],
        now: Date,
        owner: String,
        leaseUntil: Date,
        _ change: @escaping @Sendable (DeadLetter) -> DeadLetter?
    ) async throws -> [DeadLetter] {
        let claimed = try await self.claim(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil)
        guard !claimed.isEmpty else { return [] }
        let changed = claimed.map(change)
        let outcomes = zip(claimed, changed).map { DeadLetterOutcome.release($1 ?? $0) }
        let written = try await self.write(outcomes, owner: owner)
        return zip(changed, written).compactMap { letter, done in done ? letter : nil }
    }

    public func redrive(_ filter: DeadLetterFilter, now: Date, limit: Int?) async throws -> Int {
        let lifecycle = DeadLetterLifecycle()
        let owner = "redrive-" + DeadLetterIDGenerator().next(at: now)
        var cursor: String?
        var changed = 0
        while limit.map({ changed < $0 }) ?? true {
            let want = Swift.min(500, (limit ?? .max) - changed)
            let page = try await self.pageWithoutPayloads(filter, after: cursor, limit: want)
            guard let last = page.letters.last else { break }
            cursor = last.id
            let context = DeadLetterLifecycle.Context(now: now)
            changed += try await self.changeState(
                ids: page.letters.map(\.id),
                now: now,
                owner: owner,
                leaseUntil: now.adding(.seconds(300))
            ) { letter in
                filter.matches(letter)
                    ? lifecycle.apply(.redriven(dueAt: now), to: letter, context: context).letter : nil
            }.count
            if page.nextCursor == nil { break }
        }
        return changed
    }

    public func pageWithoutPayloads(
        _ filter: DeadLetterFilter,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        var page = try await self.page(filter, after: cursor, limit: limit)
        page.removePayloads()
        return page
    }

    /// Every letter `filter` selects, read page by page in id order, so that memory stays flat however many
    /// there are: at most two pages are held, the one being handed out and the next, which is read while the
    /// caller works on the first.
    /// - Parameter batchSize: letters per page read from the store.
    public func letters(
        matching filter: DeadLetterFilter = DeadLetterFilter(),
        batchSize: Int = 1000
    ) -> DeadLetterSequence<Self> {
        DeadLetterSequence(store: self, filter: filter, batchSize: batchSize)
    }

    /// Stores letters, failing on a duplicate id, with no limits.
    @discardableResult
    public func append(_ letters: [DeadLetter]) async throws -> DeadLetterAppendResult {
        try await self.append(letters, onConflict: .fail, limits: .unbounded)
    }
}

/// The letters of a store, read page by page; see ``DeadLetterStore/letters(matching:batchSize:)``.
///
/// Once a page is handed out, the next is read in a task of its own while the caller works on the letters:
/// reading (the store's work) and, say, encoding an export (the caller's) then run at once. Measured
/// (`dlq-benchmarks --profile-export all`, 1,000,000 SQLite letters to JSON Lines, 2 cores): reading was 47% of
/// the samples and encoding and writing 53%, one after the other. The read ahead is cancelled when the iterator
/// goes, or when the task waiting for it is cancelled; a cancelled task's iteration throws `CancellationError`
/// before its next page. As each page is a snapshot of its letters when it was read, the next one is one from
/// before the caller finished with this page: a change the caller makes meanwhile to a later letter may not be
/// in it.
public struct DeadLetterSequence<Store: DeadLetterStore>: AsyncSequence, Sendable {
    public typealias Element = DeadLetter
    let store: Store
    let filter: DeadLetterFilter
    let batchSize: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let store: Store
        let filter: DeadLetterFilter
        let batchSize: Int
        /// The page being handed out, last letter first: each is moved out with `popLast`, not copied (a copy
        /// retained each of its fields, and they were released again with the page). It must be the only
        /// reference to its storage for that, so pages are moved, never copied, on their way here.
        var buffer: [DeadLetter] = []
        var cursor: String?
        var finished = false
        /// The read of the page after `buffer`, under way.
        var ahead: PageReadAhead?

        public mutating func next() async throws -> DeadLetter? {
            while self.buffer.isEmpty {
                if self.finished { return nil }
                try Task.checkCancellation()
                var page: DeadLetterPage
                // A copy of this iterator may have taken the page read ahead: then it is read again here.
                if let ahead = self.ahead.take(), let read = try await ahead.page() {
                    page = read
                } else {
                    page = try await self.store.page(self.filter, after: self.cursor, limit: self.batchSize)
                    page.letters.reverse()
                }
                swap(&self.buffer, &page.letters)
                self.cursor = page.nextCursor
                self.finished = page.nextCursor == nil
                if let cursor = page.nextCursor {
                    let (store, filter, limit) = (self.store, self.filter, self.batchSize)
                    self.ahead = PageReadAhead { try await store.page(filter, after: cursor, limit: limit) }
                }
            }
            return self.buffer.popLast()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(store: self.store, filter: self.filter, batchSize: Swift.max(1, self.batchSize))
    }
}

/// A page read ahead of its use, in a task of its own, its letters reversed (``DeadLetterSequence/AsyncIterator``
/// pops them); cancelled when nothing holds it any more (an iterator left before its end).
///
/// The page is handed over through a slot rather than as the task's value, which the task would keep a
/// reference to: the letters' array must reach the iterator as the only reference to its storage.
final class PageReadAhead: Sendable {
    private let slot: Locked<Result<DeadLetterPage, any Error>?>
    private let task: Task<Void, Never>

    init(_ read: @escaping @Sendable () async throws -> DeadLetterPage) {
        let slot = Locked<Result<DeadLetterPage, any Error>?>(nil)
        self.slot = slot
        self.task = Task {
            let result: Result<DeadLetterPage, any Error>
            do {
                var page = try await read()
                page.letters.reverse()
                result = .success(page)
            } catch {
                result = .failure(error)
            }
            slot.withLock { $0 = result }
        }
    }

    deinit {
        self.task.cancel()
    }

    /// The page, or the read's error; `nil` when another copy of the iterator took it. Cancelling the waiting
    /// task cancels the read.
    func page() async throws -> DeadLetterPage? {
        await withTaskCancellationHandler {
            await self.task.value
        } onCancel: {
            self.task.cancel()
        }
        return try self.slot.withLock({ $0.take() })?.get()
    }
}
