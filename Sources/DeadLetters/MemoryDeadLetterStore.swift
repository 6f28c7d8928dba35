#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A store that keeps dead letters in memory: fast, and gone when the process ends.
///
/// Use it in tests, and in services that accept losing their dead letters on a restart. Letters are kept
/// in an array ordered by id behind a lock; since ids are time-ordered, an append usually lands at the
/// end. Ids and fingerprints in the package's own formats are kept packed, so a letter costs about 144
/// bytes besides its payload, messages and metadata (240 B with a typical message, measured). Removed
/// letters leave a tombstone that is compacted away once tombstones outnumber letters. Leases (owner and
/// expiry) are kept in a pool beside the letters, never in them; a letter's record names its lease's slot.
public final class MemoryDeadLetterStore: DeadLetterStore {
    struct State {
        /// Ordered by key; may hold tombstones.
        let records = Records()
        /// Every record before this index is a tombstone.
        var head = 0
        var live = 0
        /// The live letters by status (retrying, dead, parked), so that a count by status alone (a replay's
        /// "all but parked") reads three numbers instead of every record.
        var byStatus = [0, 0, 0]
        var bytes = 0
        /// The leases taken and not yet ended, in the slots the records name (``Record/lease``); ended leases
        /// leave their slot to the next. A record names its lease instead of a dictionary keyed by its key
        /// holding it: a replay took and ended a lease per letter, and hashing its key for both was 7-8% of a
        /// memory replay's samples (perf, 300,000 letters, concurrency 1).
        var leasePool: [Lease] = []
        var freeLeaseSlots: [UInt32] = []
        /// The `nextAttemptAt` (milliseconds) of every retrying letter, so claims need not scan the store.
        var retrying: [Key: Int64] = [:]
        var interner = Interner()

        // The helpers below read records in place, through the array's buffer: `records[index]` passed on or
        // `records.last` copied the whole record (its message, payload and extras retained and released),
        // which was 12% of a memory replay's samples (perf, 100,000 letters, concurrency 1).

        /// The letter at `index`, as it was stored; `id` is its id when the caller has it.
        func letter(at index: Int, id: String? = nil) -> DeadLetter {
            self.records.withUnsafeBufferPointer { Record.letter($0.baseAddress! + index, self.interner, id: id) }
        }

        func matches(_ matcher: Matcher, at index: Int) -> Bool {
            self.records.withUnsafeBufferPointer { records in
                if records[index].isRemoved { return false }
                if matcher.selectsAll { return true }
                if let statuses = matcher.onlyStatuses { return statuses.contains(records[index].status) }
                return matcher.matches(records[index], self.interner)
            }
        }

        /// The first index whose key is not less than `key`.
        func lowerBound(_ key: Key) -> Int {
            self.records.withUnsafeBufferPointer { records in
                if let last = records.indices.last, records[last].key < key { return records.count }
                var low = 0
                var high = records.count
                while low < high {
                    let mid = (low + high) / 2
                    if records[mid].key < key { low = mid + 1 } else { high = mid }
                }
                return low
            }
        }

        /// Where the last letter looked up by ``find(_:)`` lies: a replay claims and removes letters in id
        /// order, so the next one is usually at the following index.
        var hint = 0

        /// The index of the live letter with `key` (``index(of:)``), trying the index after the last one found
        /// before a binary search.
        mutating func find(_ key: Key) -> Int? {
            let next = self.hint + 1
            let found = self.records.withUnsafeBufferPointer { records in
                next < records.count && records[next].key == key && !records[next].isRemoved
            }
            guard found else {
                let index = self.index(of: key)
                if let index { self.hint = index }
                return index
            }
            self.hint = next
            return next
        }

        /// The index of the live letter with `key`.
        func index(of key: Key) -> Int? {
            let index = self.lowerBound(key)
            let found = self.records.withUnsafeBufferPointer { records in
                index < records.count && records[index].key == key && !records[index].isRemoved
            }
            return found ? index : nil
        }

        /// The first index after the id `cursor`.
        func start(after cursor: String?) -> Int {
            guard let cursor else { return self.head }
            let key = Key(cursor)
            var index = self.lowerBound(key)
            if index < self.records.count, self.records[index].key == key { index += 1 }
            return Swift.max(index, self.head)
        }

        /// The lease held on the letter at `index`, if any.
        func heldLease(at index: Int) -> Lease? {
            let slot = self.records[index].lease
            return slot == 0 ? nil : self.leasePool[Int(slot - 1)]
        }

        /// Sets the lease of the letter at `index`, in the slot of the one it held or in a free slot.
        /// - Returns: the lease it held.
        @discardableResult
        mutating func setLease(_ lease: Lease, at index: Int) -> Lease? {
            let slot = self.records[index].lease
            if slot != 0 {
                let held = self.leasePool[Int(slot - 1)]
                self.leasePool[Int(slot - 1)] = lease
                return held
            }
            if let free = self.freeLeaseSlots.popLast() {
                self.leasePool[Int(free - 1)] = lease
                self.records[index].lease = free
            } else {
                self.leasePool.append(lease)
                self.records[index].lease = UInt32(self.leasePool.count)
            }
            return nil
        }

        /// Ends the lease of the letter at `index`, if it holds one.
        mutating func endLease(at index: Int) {
            let slot = self.records[index].lease
            guard slot != 0 else { return }
            self.records[index].lease = 0
            // The owner's text is let go; the slot waits for the next lease.
            self.leasePool[Int(slot - 1)] = Lease(owner: "", until: 0)
            self.freeLeaseSlots.append(slot)
        }

        /// The ids of the last claim by ids, with their keys, in order: a replay's outcomes name its letters by
        /// the ids it was given back, in the same order, and the key of each is then found by comparing the
        /// id's bits instead of reading its 36 digits again (2% of a memory replay's samples).
        struct LastClaim {
            var ids: [String]
            var keys: [Key]
            var next = 0
        }
        var lastClaim = LastClaim(ids: [], keys: [])

        /// The key of `id`: from ``lastClaim`` when `id` is the very text it holds next, else read from `id`.
        mutating func key(ofClaimed id: String) -> Key {
            let next = self.lastClaim.next
            if next < self.lastClaim.ids.count, ExactText.identical(self.lastClaim.ids[next], id) {
                self.lastClaim.next = next + 1
                return self.lastClaim.keys[next]
            }
            return Key(id)
        }

        /// Takes a lease on the letter at `index`; a lease still recorded (it ran out without an outcome) counts
        /// as an abandoned claim.
        mutating func lease(at index: Int, _ lease: Lease) {
            if self.setLease(lease, at: index) != nil {
                self.records[index].abandonedClaims = DeadLetterLifecycle.increment(self.records[index].abandonedClaims)
            }
        }

        /// Takes a lease on the letter at `index` unless another owner holds a live one (``lease(at:_:)``).
        /// - Returns: whether it was taken.
        mutating func claim(at index: Int, _ lease: Lease, now: Int64) -> Bool {
            if let held = self.heldLease(at: index), held.until > now, held.owner != lease.owner { return false }
            self.lease(at: index, lease)
            return true
        }

        func isLeased(at index: Int, now: Int64) -> Bool {
            guard let lease = self.heldLease(at: index) else { return false }
            return lease.until > now
        }

        /// The index of `status` in ``byStatus``.
        static func slot(_ status: DeadLetterStatus) -> Int {
            switch status {
            case .retrying: return 0
            case .dead: return 1
            case .parked: return 2
            }
        }

        mutating func insert(_ letter: DeadLetter, key: Key) throws(DeadLetterError) {
            try self.insert(
                Record(letter, key: key, interner: &self.interner),
                size: letter.storageSize,
                nextAttemptAt: letter.status == .retrying ? letter.nextAttemptAt?.millisecondsSince1970 : nil
            )
        }

        /// Inserts a record whose key no live letter has.
        /// - Parameters:
        ///   - size: its letter's ``DeadLetter/storageSize``.
        ///   - nextAttemptAt: when a retrying letter is due (``track(_:_:)``); `nil` for others.
        /// - Parameter record: moved into the store (a record passed on by copy retained and released each of
        ///   its message, payload and extras once more).
        /// - Throws: ``DeadLetterError`` `capacityExceeded` when the store cannot grow; no letter is changed then.
        mutating func insert(_ record: consuming Record, size: Int, nextAttemptAt: Int64?) throws(DeadLetterError) {
            try self.records.reserve(self.records.count + 1)
            self.live += 1
            self.byStatus[Self.slot(record.status)] += 1
            self.bytes += size
            let index = self.lowerBound(record.key)
            if index == self.records.count {
                // A new key is not in the index of retrying letters: only a retrying letter needs it.
                if let nextAttemptAt { self.retrying[record.key] = nextAttemptAt }
                self.records.append(consume record)
            } else if self.records[index].key == record.key {
                self.retrying[record.key] = nextAttemptAt
                self.records[index] = consume record
                self.head = Swift.min(self.head, index)
            } else {
                if let nextAttemptAt { self.retrying[record.key] = nextAttemptAt }
                self.records.insert(consume record, at: index)
                self.head = Swift.min(self.head, index)
            }
        }

        /// Writes the new state of the live letter at `index`.
        mutating func replace(at index: Int, with letter: DeadLetter) {
            var record = Record(letter, interner: &self.interner)
            let (size, status) = self.records.withUnsafeBufferPointer { records in
                (Record.storageSize(records.baseAddress! + index, self.interner), records[index].status)
            }
            self.bytes += letter.storageSize - size
            self.byStatus[Self.slot(status)] -= 1
            self.byStatus[Self.slot(letter.status)] += 1
            self.track(record.key, letter)
            // The lease stays with the letter (it is ended apart).
            record.lease = self.records[index].lease
            self.records[index] = record
        }

        /// Keeps the index of retrying letters in step with `letter`.
        mutating func track(_ key: Key, _ letter: DeadLetter) {
            if letter.status == .retrying, let next = letter.nextAttemptAt {
                self.retrying[key] = next.millisecondsSince1970
            } else {
                self.retrying[key] = nil
            }
        }

        @discardableResult
        mutating func remove(at index: Int) -> DeadLetter? {
            guard !self.records[index].isRemoved else { return nil }
            let letter = self.letter(at: index)
            self.discard(at: index)
            return letter
        }

        /// Removes the letter at `index` (with its lease) without reading it back.
        /// - Returns: whether there was a letter.
        @discardableResult
        mutating func discard(at index: Int) -> Bool {
            let (removed, key, status, size) = self.records.withUnsafeBufferPointer { records in
                (
                    records[index].isRemoved, records[index].key, records[index].status,
                    Record.storageSize(records.baseAddress! + index, self.interner)
                )
            }
            guard !removed else { return false }
            // Only retrying letters are in `retrying` (``track(_:_:)``): others spare the lookup.
            if status == .retrying { self.retrying[key] = nil }
            self.byStatus[Self.slot(status)] -= 1
            self.bytes -= size
            self.endLease(at: index)
            self.records[index].markRemoved()
            self.live -= 1
            if index == self.head {
                while self.head < self.records.count, self.records[self.head].isRemoved { self.head += 1 }
            }
            return true
        }

        /// Removes the letter `key` if `owner` holds its lease (a handled letter's outcome).
        mutating func complete(_ key: Key, owner: String) -> Bool {
            guard let index = self.find(key), let held = self.heldLease(at: index), held.owner == owner else {
                return false
            }
            self.discard(at: index)
            return true
        }

        /// Writes `letter`'s new state and ends its lease if `owner` holds it.
        mutating func release(_ letter: DeadLetter, owner: String) -> Bool {
            let key = Key(letter.id)
            guard let index = self.index(of: key), self.heldLease(at: index)?.owner == owner else { return false }
            self.replace(at: index, with: letter)
            self.endLease(at: index)
            return true
        }

        /// Removes the tombstones once they outnumber the letters.
        mutating func compactIfNeeded() {
            let tombstones = self.records.count - self.live
            guard tombstones > 1024, tombstones > self.live else { return }
            if tombstones == self.head {
                // Every tombstone lies before the first letter (removed oldest first, as a replay does): the
                // tombstones go, the letters move down bitwise, and the places they leave hold vacated records
                // until they are cut off. Filtering (and `removeSubrange`) copied each record it moved, into a
                // new array: about one copy per removed letter, and a new array's pages faulted in (15% of a
                // memory replay's samples with the page faults, perf, 100,000 letters, concurrency 1).
                let (head, live) = (self.head, self.live)
                self.records.withUnsafeMutableBufferPointer { records in
                    guard let base = records.baseAddress else { return }
                    base.deinitialize(count: head)
                    base.moveInitialize(from: base + head, count: live)
                    (base + live).initialize(repeating: .vacated, count: head)
                }
                self.records.removeLast(head)
            } else {
                self.records.removeAll { $0.isRemoved }
            }
            self.head = 0
        }
    }

    let state = PThreadLock(State())
    /// Operations and instances, apart from the letters so that neither waits for the other.
    let log = PThreadLock(OperationLogState())

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
        if letters.count == 1, !limits.isBounded {
            // The common case, without the copies of the general one.
            let key = Key(letters[0].id)
            if state.index(of: key) != nil {
                if onConflict == .fail { throw duplicate(letters[0].id) }
                return DeadLetterAppendResult(inserted: 0, skipped: 1)
            }
            try state.insert(letters[0], key: key)
            return DeadLetterAppendResult(inserted: 1)
        }
        var fresh: [(letter: DeadLetter, key: Key)] = []
        fresh.reserveCapacity(letters.count)
        var skipped = 0
        if letters.count == 1 {
            let key = Key(letters[0].id)
            if state.index(of: key) != nil {
                if onConflict == .fail { throw duplicate(letters[0].id) }
                return DeadLetterAppendResult(inserted: 0, skipped: 1)
            }
            fresh.append((letters[0], key))
        } else if letters.count > 1 {
            var seen = Set<Key>(minimumCapacity: letters.count)
            for letter in letters {
                let key = Key(letter.id)
                guard seen.insert(key).inserted, state.index(of: key) == nil else {
                    if onConflict == .fail { throw duplicate(letter.id) }
                    skipped += 1
                    continue
                }
                fresh.append((letter, key))
            }
        }
        if limits.isBounded, limits.overflow == .rejectNew {
            try self.checkRoom(for: fresh.map(\.letter), limits: limits, state)
        }
        // Room for them all first: a store that cannot grow takes none of them, not some.
        try state.records.reserve(state.records.count + fresh.count)
        for entry in fresh { try state.insert(entry.letter, key: entry.key) }
        var evicted: [DeadLetter] = []
        if limits.isBounded, limits.overflow == .dropOldest {
            let maxEntries = limits.maxEntries ?? .max
            let maxBytes = limits.maxBytes ?? .max
            while state.live > 0, state.live > maxEntries || state.bytes > maxBytes {
                if let letter = state.remove(at: state.head) { evicted.append(letter) }
            }
            state.compactIfNeeded()
        }
        return DeadLetterAppendResult(inserted: fresh.count, skipped: skipped, evicted: evicted)
    }

    private static func checkRoom(for letters: [DeadLetter], limits: DeadLetterLimits, _ state: State) throws {
        if let maxEntries = limits.maxEntries, state.live + letters.count > maxEntries {
            throw DeadLetterError(
                code: .capacityExceeded,
                message: "the memory store holds \(state.live) letters of at most \(maxEntries); "
                    + "\(letters.count) more do not fit"
            )
        }
        let bytes = letters.reduce(0) { $0 + $1.storageSize }
        if let maxBytes = limits.maxBytes, state.bytes + bytes > maxBytes {
            throw DeadLetterError(
                code: .capacityExceeded,
                message: "the memory store holds \(state.bytes) bytes of at most \(maxBytes); "
                    + "\(bytes) more do not fit"
            )
        }
    }

    static func duplicate(_ id: String) -> DeadLetterError {
        DeadLetterError(code: .duplicateID, message: "a letter with this id is already stored", id: id)
    }

    public func letter(id: String) async throws -> DeadLetter? {
        let key = Key(id)
        return self.state.withLock { state in state.index(of: key).map { state.letter(at: $0) } }
    }

    public func page(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) async throws -> DeadLetterPage {
        let limit = Swift.max(1, limit)
        let matcher = Matcher(filter)
        return self.state.withLock { state in
            var letters: [DeadLetter] = []
            var index = state.start(after: cursor)
            while index < state.records.count {
                if state.matches(matcher, at: index) {
                    if letters.count == limit { return DeadLetterPage(letters: letters, nextCursor: letters.last?.id) }
                    letters.append(state.letter(at: index))
                }
                index += 1
            }
            return DeadLetterPage(letters: letters, nextCursor: nil)
        }
    }

    /// The ids of the letters ``page(_:after:limit:)`` would return, without rebuilding the letters (a replay
    /// freezing its set needs only these).
    /// - Returns: the ids, and whether more letters follow.
    func ids(_ filter: DeadLetterFilter, after cursor: String?, limit: Int) -> (ids: [String], more: Bool) {
        let limit = Swift.max(1, limit)
        let matcher = Matcher(filter)
        return self.state.withLock { state in
            var ids: [String] = []
            var index = state.start(after: cursor)
            while index < state.records.count {
                if state.matches(matcher, at: index) {
                    if ids.count == limit { return (ids, true) }
                    ids.append(state.records[index].key.string)
                }
                index += 1
            }
            return (ids, false)
        }
    }

    public func count(_ filter: DeadLetterFilter) async throws -> Int {
        let matcher = Matcher(filter)
        return self.state.withLock { state in
            if matcher.selectsAll { return state.live }
            if let statuses = matcher.onlyStatuses {
                // Each status counted once, by a bit per slot: a `Set` of statuses here was the first of its
                // type in a process, and making its type's metadata cost more than the count.
                var counted: UInt8 = 0
                var total = 0
                for status in statuses where counted & 1 << State.slot(status) == 0 {
                    counted |= 1 << State.slot(status)
                    total += state.byStatus[State.slot(status)]
                }
                return total
            }
            var count = 0
            for index in state.head..<state.records.count where state.matches(matcher, at: index) { count += 1 }
            return count
        }
    }
}

extension DeadLetterStore where Self == MemoryDeadLetterStore {
    /// A new, empty in-memory store.
    public static var memory: MemoryDeadLetterStore { MemoryDeadLetterStore() }
}
