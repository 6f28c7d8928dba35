import Synchronization

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension MemoryDeadLetterStore {
    public func summary(_ filter: DeadLetterFilter, now: Date) async throws -> DeadLetterSummary {
        let nowMilliseconds = now.millisecondsSince1970
        return self.state.withLock { state in
            var summary = DeadLetterSummary(
                total: 0,
                byReason: [:],
                bySource: [:],
                byErrorType: [:],
                byStatus: ["retrying": 0, "dead": 0, "parked": 0],
                byAge: ["<1h": 0, "1h-6h": 0, "6h-24h": 0, ">24h": 0],
                oldestFailedAt: nil,
                newestFailedAt: nil,
                averageAttempts: 0
            )
            var attempts = 0
            var oldest = Int64.max
            var newest = Int64.min
            for letter in self.matching(filter, state) {
                summary.total += 1
                attempts += letter.attempts
                summary.byReason[letter.reason.rawValue, default: 0] += 1
                summary.bySource[letter.source, default: 0] += 1
                summary.byErrorType[letter.errorType, default: 0] += 1
                summary.byStatus[letter.status.rawValue, default: 0] += 1
                let first = letter.firstFailedAt.millisecondsSince1970
                let age = nowMilliseconds - first
                let bucket = age < 3_600_000 ? "<1h" : age < 21_600_000 ? "1h-6h" : age < 86_400_000 ? "6h-24h" : ">24h"
                summary.byAge[bucket, default: 0] += 1
                oldest = Swift.min(oldest, first)
                newest = Swift.max(newest, letter.lastFailedAt.millisecondsSince1970)
            }
            if summary.total > 0 {
                summary.oldestFailedAt = Date(millisecondsSince1970: oldest)
                summary.newestFailedAt = Date(millisecondsSince1970: newest)
                summary.averageAttempts = Double(attempts) / Double(summary.total)
            }
            return summary
        }
    }

    public func groups(_ filter: DeadLetterFilter, limit: Int) async throws -> [DeadLetterGroup] {
        let groups: [String: DeadLetterGroup] = self.state.withLock { state in
            var groups: [String: DeadLetterGroup] = [:]
            for letter in self.matching(filter, state) {
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
        let until = leaseUntil.millisecondsSince1970
        let sourceSet = Set(sources)
        return self.state.withLock { state in
            var due: [(at: Int64, index: Int)] = []
            var index = state.head
            while index < state.records.count {
                let record = state.records[index]
                if let letter = record.letter, letter.status == .retrying, let next = letter.nextAttemptAt,
                    !record.isLeased(at: nowMilliseconds), sourceSet.contains(letter.source)
                {
                    let at = next.millisecondsSince1970
                    if at <= nowMilliseconds { due.append((at, index)) }
                }
                index += 1
            }
            // Indices follow id order, so ties on the due time go by id.
            due.sort { $0.at != $1.at ? $0.at < $1.at : $0.index < $1.index }
            return due.prefix(limit).compactMap { entry in
                state.records[entry.index].leaseOwner = owner
                state.records[entry.index].leaseUntil = until
                return state.records[entry.index].letter
            }
        }
    }

    public func claim(ids: [String], now: Date, owner: String, leaseUntil: Date) async throws -> [DeadLetter] {
        let nowMilliseconds = now.millisecondsSince1970
        let until = leaseUntil.millisecondsSince1970
        return self.state.withLock { state in
            var claimed: [DeadLetter] = []
            for id in Set(ids).sorted() {
                guard let index = state.index(of: id), !state.records[index].isLeased(at: nowMilliseconds) else {
                    continue
                }
                state.records[index].leaseOwner = owner
                state.records[index].leaseUntil = until
                if let letter = state.records[index].letter { claimed.append(letter) }
            }
            return claimed
        }
    }

    public func complete(id: String, owner: String) async throws -> Bool {
        self.state.withLock { state in
            guard let index = state.index(of: id), state.records[index].leaseOwner == owner else { return false }
            state.remove(at: index)
            state.compactIfNeeded()
            return true
        }
    }

    public func release(_ letter: DeadLetter, owner: String) async throws -> Bool {
        self.state.withLock { state in
            guard let index = state.index(of: letter.id), state.records[index].leaseOwner == owner,
                let old = state.records[index].letter
            else { return false }
            state.bytes += letter.storageSize - old.storageSize
            state.records[index] = Record(id: letter.id, letter: letter)
            return true
        }
    }

    public func redrive(_ filter: DeadLetterFilter, now: Date, limit: Int?) async throws -> Int {
        let nowMilliseconds = now.millisecondsSince1970
        let due = now.roundedToMilliseconds
        let limit = limit ?? .max
        guard limit > 0 else { return 0 }
        return self.state.withLock { state in
            var changed = 0
            var index = state.head
            while index < state.records.count, changed < limit {
                let record = state.records[index]
                if var letter = record.letter, !record.isLeased(at: nowMilliseconds), filter.matches(letter) {
                    letter.status = .retrying
                    letter.nextAttemptAt = due
                    // A redriven letter starts afresh: an expired lease no longer names an owner.
                    state.records[index] = Record(id: letter.id, letter: letter)
                    changed += 1
                }
                index += 1
            }
            return changed
        }
    }

    public func delete(ids: [String]) async throws -> Int {
        self.state.withLock { state in
            var removed = 0
            for id in Set(ids) {
                if let index = state.index(of: id), state.remove(at: index) != nil { removed += 1 }
            }
            state.compactIfNeeded()
            return removed
        }
    }

    public func usage() async throws -> DeadLetterUsage {
        self.state.withLock { DeadLetterUsage(count: $0.live, bytes: $0.bytes) }
    }
}
