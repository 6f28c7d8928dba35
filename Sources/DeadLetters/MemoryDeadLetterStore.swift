import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A store that keeps dead letters in memory: fast, and gone when the process ends.
///
/// Use it in tests, and in services that accept losing their dead letters on a restart. Letters are kept
/// in an array ordered by id behind a `Mutex`; since ids are time-ordered, an append usually lands at the
/// end. Removed letters leave a tombstone that is compacted away once tombstones outnumber letters.
/// Leases (owner and expiry) are kept beside each letter, never in it.
public final class MemoryDeadLetterStore: DeadLetterStore {
    struct Record {
        var id: String
        /// `nil` once removed (a tombstone).
        var letter: DeadLetter?
        var leaseOwner: String?
        var leaseUntil: Int64 = 0

        func isLeased(at now: Int64) -> Bool { self.leaseOwner != nil && self.leaseUntil > now }
    }

    struct State {
        /// Ordered by id; may hold tombstones.
        var records: [Record] = []
        /// Every record before this index is a tombstone.
        var head = 0
        var live = 0
        var bytes = 0

        /// The first index whose id is not less than `id`.
        func lowerBound(_ id: String) -> Int {
            var low = 0
            var high = self.records.count
            while low < high {
                let mid = (low + high) / 2
                if self.records[mid].id < id { low = mid + 1 } else { high = mid }
            }
            return low
        }

        /// The index of the live letter with `id`.
        func index(of id: String) -> Int? {
            let index = self.lowerBound(id)
            guard index < self.records.count, self.records[index].id == id, self.records[index].letter != nil
            else { return nil }
            return index
        }

        /// The first index after the id `cursor`.
        func start(after cursor: String?) -> Int {
            guard let cursor else { return self.head }
            var index = self.lowerBound(cursor)
            if index < self.records.count, self.records[index].id == cursor { index += 1 }
            return Swift.max(index, self.head)
        }

        mutating func insert(_ letter: DeadLetter) {
            self.live += 1
            self.bytes += letter.storageSize
            if let last = self.records.last, last.id >= letter.id {
                let index = self.lowerBound(letter.id)
                if index < self.records.count, self.records[index].id == letter.id {
                    self.records[index] = Record(id: letter.id, letter: letter)
                } else {
                    self.records.insert(Record(id: letter.id, letter: letter), at: index)
                }
                self.head = Swift.min(self.head, index)
            } else {
                self.records.append(Record(id: letter.id, letter: letter))
            }
        }

        @discardableResult
        mutating func remove(at index: Int) -> DeadLetter? {
            guard let letter = self.records[index].letter else { return nil }
            self.records[index] = Record(id: self.records[index].id, letter: nil)
            self.live -= 1
            self.bytes -= letter.storageSize
            if index == self.head {
                while self.head < self.records.count, self.records[self.head].letter == nil { self.head += 1 }
            }
            return letter
        }

        /// Removes the tombstones once they outnumber the letters.
        mutating func compactIfNeeded() {
            let tombstones = self.records.count - self.live
            guard tombstones > 1024, tombstones > self.live else { return }
            self.records.removeAll { $0.letter == nil }
            self.head = 0
        }
    }

    let state = Mutex(State())

    /// Creates an empty store.
    public init() {}

    public func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits
    ) async throws -> DeadLetterAppendResult {
        try self.state.withLock { state in try Self.append(letters, onConflict: onConflict, limits: limits, &state) }
    }

    private static func append(
        _ letters: [DeadLetter],
        onConflict: DeadLetterConflictPolicy,
        limits: DeadLetterLimits,
        _ state: inout State
    ) throws -> DeadLetterAppendResult {
        var fresh = letters
        var skipped = 0
        if letters.count == 1 {
            if state.index(of: letters[0].id) != nil {
                if onConflict == .fail { throw duplicate(letters[0].id) }
                return DeadLetterAppendResult(inserted: 0, skipped: 1)
            }
        } else {
            var seen = Set<String>(minimumCapacity: letters.count)
            fresh.removeAll(keepingCapacity: true)
            for letter in letters {
                guard seen.insert(letter.id).inserted, state.index(of: letter.id) == nil else {
                    if onConflict == .fail { throw duplicate(letter.id) }
                    skipped += 1
                    continue
                }
                fresh.append(letter)
            }
        }
        if limits.isBounded, limits.overflow == .rejectNew {
            let count = state.live + fresh.count
            let bytes = state.bytes + fresh.reduce(0) { $0 + $1.storageSize }
            if let maxEntries = limits.maxEntries, count > maxEntries {
                throw DeadLetterError(
                    code: .capacityExceeded,
                    message: "the memory store holds \(state.live) letters of at most \(maxEntries); "
                        + "\(fresh.count) more do not fit"
                )
            }
            if let maxBytes = limits.maxBytes, bytes > maxBytes {
                throw DeadLetterError(
                    code: .capacityExceeded,
                    message: "the memory store holds \(state.bytes) bytes of at most \(maxBytes); "
                        + "\(bytes - state.bytes) more do not fit"
                )
            }
        }
        for letter in fresh { state.insert(letter) }
        var evicted: [DeadLetter] = []
        if limits.isBounded, limits.overflow == .dropOldest {
            while state.live > 0,
                state.live > (limits.maxEntries ?? .max) || state.bytes > (limits.maxBytes ?? .max)
            {
                if let letter = state.remove(at: state.head) { evicted.append(letter) }
            }
            state.compactIfNeeded()
        }
        return DeadLetterAppendResult(inserted: fresh.count, skipped: skipped, evicted: evicted)
    }

    private static func duplicate(_ id: String) -> DeadLetterError {
        DeadLetterError(code: .duplicateID, message: "a letter with this id is already stored", id: id)
    }

    public func letter(id: String) async throws -> DeadLetter? {
        self.state.withLock { state in state.index(of: id).flatMap { state.records[$0].letter } }
    }

    public func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        let limit = Swift.max(1, limit)
        return self.state.withLock { state in
            var letters: [DeadLetter] = []
            var index = state.start(after: cursor)
            while index < state.records.count {
                if let letter = state.records[index].letter, filter.matches(letter) {
                    if letters.count == limit { return DeadLetterPage(letters: letters, nextCursor: letters.last?.id) }
                    letters.append(letter)
                }
                index += 1
            }
            return DeadLetterPage(letters: letters, nextCursor: nil)
        }
    }

    public func count(_ filter: DeadLetterFilter) async throws -> Int {
        self.state.withLock { state in
            if filter.isEmpty { return state.live }
            return self.matching(filter, state).reduce(0) { count, _ in count + 1 }
        }
    }

    /// The live letters `filter` selects, in id order.
    func matching(_ filter: DeadLetterFilter, _ state: State) -> some Sequence<DeadLetter> {
        state.records[state.head...].lazy.compactMap { $0.letter }.filter(filter.matches)
    }
}

extension DeadLetterStore where Self == MemoryDeadLetterStore {
    /// A new, empty in-memory store.
    public static var memory: MemoryDeadLetterStore { MemoryDeadLetterStore() }
}
