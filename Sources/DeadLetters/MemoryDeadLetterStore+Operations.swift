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
            var total = 0
            // In floating point: the attempts of letters stored before their bound cannot overflow the sum.
            var attempts = 0.0
            var oldest = Int64.max
            var newest = Int64.min
            var byReason: [String: Int] = [:]
            var bySource: [String: Int] = [:]
            var byErrorType: [String: Int] = [:]
            var byStatus = [0, 0, 0]
            var byAge = [0, 0, 0, 0]
            var reasonCounts: [UInt32: Int] = [:]
            var sourceCounts: [UInt32: Int] = [:]
            var errorTypeCounts: [UInt32: Int] = [:]
            for index in state.head..<state.records.count where state.matches(matcher, at: index) {
                let record = state.records[index]
                total += 1
                attempts += Double(record.attempts)
                reasonCounts[record.reason, default: 0] += 1
                sourceCounts[record.source, default: 0] += 1
                errorTypeCounts[record.errorType, default: 0] += 1
                switch record.status {
                case .retrying: byStatus[0] += 1
                case .dead: byStatus[1] += 1
                case .parked: byStatus[2] += 1
                }
                let first = record.firstFailedAt
                let age = nowMilliseconds - first
                byAge[age < 3_600_000 ? 0 : age < 21_600_000 ? 1 : age < 86_400_000 ? 2 : 3] += 1
                oldest = Swift.min(oldest, first)
                newest = Swift.max(newest, record.lastFailedAt)
            }
            // Two interned reasons may share a name (one retryable, one not): their counts add up.
            for (id, count) in reasonCounts { byReason[state.interner[reason: id].rawValue, default: 0] += count }
            for (id, count) in sourceCounts { bySource[state.interner[string: id], default: 0] += count }
            for (id, count) in errorTypeCounts { byErrorType[state.interner[string: id], default: 0] += count }
            return DeadLetterSummary(
                total: total,
                byReason: byReason,
                bySource: bySource,
                byErrorType: byErrorType,
                byStatus: ["retrying": byStatus[0], "dead": byStatus[1], "parked": byStatus[2]],
                byAge: ["<1h": byAge[0], "1h-6h": byAge[1], "6h-24h": byAge[2], ">24h": byAge[3]],
                oldestFailedAt: total > 0 ? Date(millisecondsSince1970: oldest) : nil,
                newestFailedAt: total > 0 ? Date(millisecondsSince1970: newest) : nil,
                averageAttempts: total > 0 ? attempts / Double(total) : 0
            )
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
            for (key, at) in state.retrying where at <= nowMilliseconds && !state.isLeased(key, at: nowMilliseconds) {
                guard let index = state.index(of: key),
                    sourceSet.contains(state.interner[string: state.records[index].source])
                else {
                    continue
                }
                due.append((at, key, index))
            }
            due.sort { $0.at != $1.at ? $0.at < $1.at : $0.key < $1.key }
            return due.prefix(limit).map { entry in
                state.lease(entry.key, at: entry.index, lease)
                return state.letter(at: entry.index)
            }
        }
    }

    public func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        let nowMilliseconds = now.millisecondsSince1970
        let lease = Lease(owner: owner, until: leaseUntil.millisecondsSince1970)
        let keys = Set(ids.map(Key.init)).sorted()
        return self.state.withLock { state in
            var claimed: [DeadLetter] = []
            for key in keys {
                guard let index = state.index(of: key),
                    !state.isLeased(key, at: nowMilliseconds) || state.leases[key]?.owner == owner
                else { continue }
                state.lease(key, at: index, lease)
                claimed.append(state.letter(at: index))
            }
            return claimed
        }
    }

    public func complete(id: String, owner: String) async throws -> Bool {
        let key = Key(id)
        return self.state.withLock { state in
            guard state.leases[key]?.owner == owner, let index = state.index(of: key) else { return false }
            state.remove(at: index)
            state.compactIfNeeded()
            return true
        }
    }

    public func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        let key = Key(letter.id)
        return self.state.withLock { state in
            guard state.leases[key]?.owner == owner, let index = state.index(of: key) else { return false }
            state.replace(at: index, with: letter)
            state.leases[key] = nil
            return true
        }
    }

    public func delete(ids: [String]) async throws -> Int {
        let keys = Set(ids.map(Key.init))
        return self.state.withLock { state in
            var removed = 0
            for key in keys {
                if let index = state.index(of: key), state.remove(at: index) != nil { removed += 1 }
            }
            state.compactIfNeeded()
            return removed
        }
    }

    public func usage() async throws -> DeadLetterUsage {
        self.state.withLock { DeadLetterUsage(count: $0.live, bytes: $0.bytes) }
    }
}
