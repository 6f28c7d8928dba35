public import Logging

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A store that keeps payloads sealed with AES-GCM in another store (see ``PayloadEncryption``).
///
/// Letters going in are sealed; letters coming out are opened, so the wrapper has the same semantics as the
/// store it wraps (the conformance suite checks this). A queue whose
/// ``DeadLetterQueue/Configuration/payloadEncryption`` is set wraps its store in one by itself.
///
/// A letter whose payload cannot be opened (its key is not configured, or it was altered) makes the read
/// throw ``DeadLetterError/Code/encryption`` naming the letter, rather than handing out ciphertext as if it
/// were the payload; views that show no payload read ``pageWithoutPayloads(_:after:limit:)``, which lists such
/// letters with the others. Two exceptions keep one such letter from stopping the rest: a claimed letter that cannot
/// be opened is parked (with a history entry saying why, and an error logged) and left out of the claim, and
/// a letter evicted to make room, which has already left the store, is returned sealed for the archive
/// rather than lost.
public struct EncryptedDeadLetterStore: DeadLetterStoreWrapper {
    /// The store that holds the sealed payloads.
    public let base: any DeadLetterStore
    /// The keys; `nil` stores payloads in the clear and refuses to hand out sealed ones.
    public let encryption: PayloadEncryption?
    let logger: Logger

    /// Seals payloads with `encryption`'s current key and opens them with any of its keys.
    /// - Parameter logger: where letters parked because they cannot be opened are reported.
    public init(
        base: some DeadLetterStore,
        encryption: PayloadEncryption,
        logger: Logger = Logger(label: "dead-letters")
    ) {
        self.init(base: base, encryption: Optional(encryption), logger: logger)
    }

    /// Stores payloads in the clear, and refuses to hand out a payload sealed earlier (with
    /// ``DeadLetterError/Code/encryption``) instead of passing ciphertext on as the payload. This is how a
    /// tool that was given no key reads a store that may hold encrypted letters.
    public static func withoutKey(
        base: some DeadLetterStore,
        logger: Logger = Logger(label: "dead-letters")
    ) -> EncryptedDeadLetterStore {
        EncryptedDeadLetterStore(base: base, encryption: nil, logger: logger)
    }

    private init(base: some DeadLetterStore, encryption: PayloadEncryption?, logger: Logger) {
        self.base = base
        self.encryption = encryption
        self.logger = logger
    }

    func sealed(_ letter: DeadLetter) throws -> DeadLetter {
        guard let encryption = self.encryption else { return letter }
        var letter = letter
        letter.payload = try encryption.seal(letter.payload, id: letter.id)
        return letter
    }

    func opened(_ letter: DeadLetter) throws -> DeadLetter {
        guard let encryption = self.encryption else {
            if PayloadEncryption.isSealed(letter.payload) {
                throw DeadLetterError(
                    code: .encryption,
                    message: "the payload is encrypted and no key is configured "
                        + "(the dlq command reads it from DLQ_ENCRYPTION_KEY)",
                    id: letter.id
                )
            }
            return letter
        }
        var letter = letter
        letter.payload = try encryption.open(letter.payload, id: letter.id)
        return letter
    }

    public func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult {
        var result = try await self.base.append(
            letters.map { try self.sealed($0) },
            onConflict: onConflict,
            limits: limits
        )
        result.evicted = result.evicted.map { (try? self.opened($0)) ?? $0 }
        return result
    }

    public func letter(id: String) async throws -> DeadLetter? {
        try await self.base.letter(id: id).map { try self.opened($0) }
    }

    public func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        var page = try await self.base.page(filter, after: cursor, limit: limit)
        page.letters = try page.letters.map { try self.opened($0) }
        return page
    }

    /// The base store's page without payloads: nothing is opened, so letters sealed with a key that is not
    /// configured are listed like the others.
    public func pageWithoutPayloads(
        _ filter: DeadLetterFilter,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        var page = try await self.base.pageWithoutPayloads(filter, after: cursor, limit: limit)
        page.removePayloads()  // in case the base store returned them: never ciphertext as a payload
        return page
    }

    public func page(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        var page = try await self.base.page(filter, sortedBy: sort, after: cursor, limit: limit)
        page.letters = try page.letters.map { try self.opened($0) }
        return page
    }

    /// ``pageWithoutPayloads(_:after:limit:)`` in the order `sort`.
    public func pageWithoutPayloads(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        var page = try await self.base.pageWithoutPayloads(filter, sortedBy: sort, after: cursor, limit: limit)
        page.removePayloads()
        return page
    }

    public func count(_ filter: DeadLetterFilter) async throws -> Int {
        try await self.base.count(filter)
    }

    public func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        try await self.base.summary(filter, now: now)
    }

    public func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        try await self.base.groups(filter, limit: limit)
    }

    /// Claims as the base store does. A claimed letter whose payload cannot be opened is parked (status
    /// `parked`, no next attempt, a `"parked"` history entry with the reason) and left out of the result, so
    /// that it neither blocks the letters behind it nor is run with ciphertext.
    public func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] {
        let claimed = try await self.base.claimDue(
            now: now,
            limit: limit,
            owner: owner,
            leaseUntil: leaseUntil,
            sources: sources
        )
        return try await self.openingClaimed(claimed, owner: owner, now: now)
    }

    /// Claims as the base store does; see ``claimDue(now:limit:owner:leaseUntil:sources:)`` for letters that
    /// cannot be opened.
    public func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        let claimed = try await self.base.claim(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil)
        return try await self.openingClaimed(claimed, owner: owner, now: now)
    }

    private func openingClaimed(_ claimed: [DeadLetter], owner: String, now: Date) async throws -> [DeadLetter] {
        var opened: [DeadLetter] = []
        opened.reserveCapacity(claimed.count)
        for letter in claimed {
            do {
                opened.append(try self.opened(letter))
            } catch {
                let parked = DeadLetterLifecycle().apply(
                    .parked(message: "its payload cannot be decrypted: \(error)"),
                    to: letter,
                    context: DeadLetterLifecycle.Context(now: now, actor: owner)
                ).letter
                self.logger.error(
                    "parked a letter whose payload cannot be decrypted",
                    metadata: ["dlq.id": "\(letter.id)", "dlq.source": "\(letter.source)", "dlq.error": "\(error)"]
                )
                _ = try await self.base.release(parked, owner: owner)
            }
        }
        return opened
    }

    public func complete(id: String, owner: String) async throws -> Bool {
        try await self.base.complete(id: id, owner: owner)
    }

    /// Writes the letter back with its payload sealed again with the current key (so rewritten letters move
    /// to the newest key).
    public func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        try await self.base.release(self.sealed(letter), owner: owner)
    }

    /// Writes the outcomes with every released letter's payload sealed again with the current key.
    public func write(_ outcomes: [DeadLetterOutcome], owner: String) async throws -> [Bool] {
        try await self.base.write(try self.sealed(outcomes), owner: owner)
    }

    /// The base store's timeline: it reads no payload.
    public func timeline(
        _ filter: DeadLetterFilter,
        into timeline: DeadLetterTimeline
    ) async throws -> DeadLetterTimeline {
        try await self.base.timeline(filter, into: timeline)
    }

    /// Writes the outcomes sealed as ``write(_:owner:)`` does, with their operation records, through the base
    /// store (in its transaction).
    public func write(
        _ outcomes: [DeadLetterOutcome],
        owner: String,
        recording records: [DeadLetterOperationLetter?]
    ) async throws -> [Bool] {
        try await self.base.write(try self.sealed(outcomes), owner: owner, recording: records)
    }

    /// The outcomes with every released letter's payload sealed with the current key.
    private func sealed(_ outcomes: [DeadLetterOutcome]) throws -> [DeadLetterOutcome] {
        try outcomes.map { outcome in
            switch outcome {
            case .complete: return outcome
            case .release(let letter): return .release(try self.sealed(letter))
            }
        }
    }

    /// Changes the letters' state in the base store without opening their payloads: a letter sealed with a key
    /// that is not configured is redriven or parked like the others, its payload written back as it was.
    public func changeState(
        ids: [String],
        now: Date,
        owner: String,
        leaseUntil: Date,
        _ change: @escaping @Sendable (DeadLetter) -> DeadLetter?
    ) async throws -> [DeadLetter] {
        var changed = try await self.base.changeState(ids: ids, now: now, owner: owner, leaseUntil: leaseUntil, change)
        // Never hand ciphertext out as a payload.
        for index in changed.indices { changed[index].payload = Data() }
        return changed
    }

    public func delete(ids: [String]) async throws -> Int {
        try await self.base.delete(ids: ids)
    }

    public func usage() async throws -> DeadLetterUsage {
        try await self.base.usage()
    }

    public func importLetters<Letters: AsyncSequence & Sendable>(
        _ letters: Letters,
        onConflict: DeadLetterConflictPolicy
    ) async throws -> DeadLetterAppendResult where Letters.Element == DeadLetter {
        guard self.encryption != nil else {
            return try await self.base.importLetters(letters, onConflict: onConflict)
        }
        let sealing = SealingSequence(base: letters, store: self)
        return try await self.base.importLetters(sealing, onConflict: onConflict)
    }
}

/// The letters of another sequence with their payloads sealed.
struct SealingSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == DeadLetter {
    typealias Element = DeadLetter
    let base: Base
    let store: EncryptedDeadLetterStore

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let store: EncryptedDeadLetterStore

        mutating func next() async throws -> DeadLetter? {
            guard let letter = try await self.base.next() else { return nil }
            return try self.store.sealed(letter)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), store: self.store)
    }
}
