#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension MemoryDeadLetterStore {
    public func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        let nowMilliseconds = now.millisecondsSince1970
        let matcher = Matcher(filter)
        return self.state.withLock { state in
            // Counted by interned id and index in the scan, then added up by name in the tally.
            var tally = DeadLetterSummaryTally()
            var byStatus = [0, 0, 0]
            var byAge = [Int](repeating: 0, count: DeadLetterSummary.ageBuckets.count)
            var reasonCounts: [UInt32: Int] = [:]
            var sourceCounts: [UInt32: Int] = [:]
            var errorTypeCounts: [UInt32: Int] = [:]
            for index in state.head..<state.records.count where state.matches(matcher, at: index) {
                let record = state.records[index]
                tally.add(count: 1, attempts: Double(record.attempts))
                reasonCounts[record.reason, default: 0] += 1
                sourceCounts[record.source, default: 0] += 1
                errorTypeCounts[record.errorType, default: 0] += 1
                switch record.status {
                case .retrying: byStatus[0] += 1
                case .dead: byStatus[1] += 1
                case .parked: byStatus[2] += 1
                }
                byAge[DeadLetterSummary.ageBucketIndex(milliseconds: nowMilliseconds - record.firstFailedAt)] += 1
                tally.include(firstFailedAt: record.firstFailedAt, lastFailedAt: record.lastFailedAt)
            }
            // Two interned reasons may share a name (one retryable, one not): their counts add up.
            for (id, count) in reasonCounts { tally.add(count, to: .reason, key: state.interner[reason: id].rawValue) }
            for (id, count) in sourceCounts { tally.add(count, to: .source, key: state.interner[string: id]) }
            for (id, count) in errorTypeCounts { tally.add(count, to: .errorType, key: state.interner[string: id]) }
            for (status, count) in zip([DeadLetterStatus.retrying, .dead, .parked], byStatus) {
                tally.add(count, to: .status, key: status.rawValue)
            }
            for (bucket, count) in zip(DeadLetterSummary.ageBuckets, byAge) { tally.add(count, to: .age, key: bucket) }
            return tally.summary
        }
    }

    public func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        let matcher = Matcher(filter)
        let groups: [String: DeadLetterGroup] = self.state.withLock { state in
            var groups: [String: DeadLetterGroup] = [:]
            for index in state.head..<state.records.count where state.matches(matcher, at: index) {
                let letter = state.letter(at: index)
                if var group = groups[letter.fingerprint] {
                    group.count += 1
                    if !group.sources.contains(letter.source) { group.sources.append(letter.source) }
                    group.firstFailedAt = Swift.min(group.firstFailedAt, letter.firstFailedAt)
                    group.lastFailedAt = Swift.max(group.lastFailedAt, letter.lastFailedAt)
                    groups[letter.fingerprint] = group
                } else {
                    groups[letter.fingerprint] = DeadLetterGroup(
                        fingerprint: letter.fingerprint,
                        count: 1,
                        errorType: letter.errorType,
                        sampleMessage: letter.errorMessage,
                        sources: [letter.source],
                        firstFailedAt: letter.firstFailedAt,
                        lastFailedAt: letter.lastFailedAt
                    )
                }
            }
            return groups
        }
        let sorted = groups.values.sorted {
            $0.count != $1.count ? $0.count > $1.count : $0.fingerprint < $1.fingerprint
        }
        return sorted.prefix(Swift.max(0, limit)).map { group in
            var group = group
            group.sources.sort()
            return group
        }
    }

    public func claimDue(
        now: Date,
        limit: Int,
        owner: String,
        leaseUntil: Date,
        sources: [String]
    ) async throws -> [DeadLetter] {
        guard limit > 0, !sources.isEmpty else { return [] }
        let nowMilliseconds = now.millisecondsSince1970
        let lease = Lease(owner: owner, until: leaseUntil.millisecondsSince1970)
        let sourceSet = Set(sources)
        return self.state.withLock { state in
            var due: [(at: Int64, key: Key, index: Int)] = []
            for (key, at) in state.retrying where at <= nowMilliseconds {
                guard let index = state.index(of: key), !state.isLeased(at: index, now: nowMilliseconds),
                    sourceSet.contains(state.interner[string: state.records[index].source])
                else {
                    continue
                }
                due.append((at, key, index))
            }
            due.sort { $0.at != $1.at ? $0.at < $1.at : $0.key < $1.key }
            return due.prefix(limit).map { entry in
                state.lease(at: entry.index, lease)
                return state.letter(at: entry.index)
            }
        }
    }

    public func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        let nowMilliseconds = now.millisecondsSince1970
        let lease = Lease(owner: owner, until: leaseUntil.millisecondsSince1970)
        var keys = ids.map(Key.init)
        // A replay's page comes in id order without repeats: sorted and deduplicated only when it is not. In
        // order, each key's id is at the same index and the claimed letters reuse it.
        var ascending = true
        for index in keys.indices.dropFirst() where !(keys[index - 1] < keys[index]) {
            ascending = false
            break
        }
        if !ascending { keys = Set(keys).sorted() }
        return self.state.withLock { state in
            var claimed: [DeadLetter] = []
            claimed.reserveCapacity(keys.count)
            for (position, key) in keys.enumerated() {
                guard let index = state.find(key), state.claim(at: index, lease, now: nowMilliseconds)
                else { continue }
                claimed.append(state.letter(at: index, id: ascending ? ids[position] : nil))
            }
            if ascending { state.lastClaim = State.LastClaim(ids: ids, keys: keys) }
            return claimed
        }
    }

    public func complete(id: String, owner: String) async throws -> Bool {
        let key = Key(id)
        return self.state.withLock { state in
            defer { state.compactIfNeeded() }
            return state.complete(key, owner: owner)
        }
    }

    public func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        self.state.withLock { state in state.release(letter, owner: owner) }
    }

    /// Writes the outcomes one after the other, under one lock: a memory store has no commits to share.
    public func write(_ outcomes: [DeadLetterOutcome], owner: String) async throws -> [Bool] {
        self.state.withLock { state in
            var written: [Bool] = []
            written.reserveCapacity(outcomes.count)
            // Read where they lie: `for outcome in outcomes` copied each (a letter's every field, for a release).
            outcomes.withUnsafeBufferPointer { outcomes in
                for index in outcomes.indices {
                    switch outcomes[index] {
                    case .complete(let id): written.append(state.complete(state.key(ofClaimed: id), owner: owner))
                    case .release(let letter): written.append(state.release(letter, owner: owner))
                    }
                }
            }
            state.compactIfNeeded()
            return written
        }
    }

    public func delete(ids: [String]) async throws -> Int {
        let keys = Set(ids.map(Key.init))
        return self.state.withLock { state in
            var removed = 0
            for key in keys {
                if let index = state.index(of: key), state.discard(at: index) { removed += 1 }
            }
            state.compactIfNeeded()
            return removed
        }
    }

    public func usage() async throws -> DeadLetterUsage {
        self.state.withLock { DeadLetterUsage(count: $0.live, bytes: $0.bytes) }
    }
}
