import DeadLetters
import GRDB

/// What a batch of inserted letters adds to the running totals, written with one upsert per distinct key.
struct SQLiteInsertTotals {
    private struct TallyKey: Hashable {
        var source: String
        var reason: String
        var errorType: String
        var status: String
    }

    private struct GroupKey: Hashable {
        var fingerprint: String
        var source: String
    }

    private var tallies: [TallyKey: (count: Int, bytes: Int, attempts: Int)] = [:]
    private var minutes: [Int64: Int] = [:]
    private var groups: [GroupKey: Int] = [:]

    /// A number of distinct keys past which a long import writes its totals, so that memory stays flat.
    static let largeKeyCount = 8192

    /// How many distinct keys the totals hold.
    var keyCount: Int { self.tallies.count + self.minutes.count + self.groups.count }

    mutating func add(_ letter: DeadLetter) {
        let key = TallyKey(
            source: letter.source,
            reason: letter.reason.rawValue,
            errorType: letter.errorType,
            status: letter.status.rawValue
        )
        let size = letter.storageSize
        if let tally = self.tallies[key] {
            self.tallies[key] = (tally.count + 1, tally.bytes + size, tally.attempts + letter.attempts)
        } else {
            self.tallies[key] = (1, size, letter.attempts)
        }
        self.minutes[SQLiteSchema.minute(ofMilliseconds: letter.firstFailedAt.millisecondsSince1970), default: 0] += 1
        self.groups[GroupKey(fingerprint: letter.fingerprint, source: letter.source), default: 0] += 1
    }

    mutating func merge(_ other: SQLiteInsertTotals) {
        for (key, tally) in other.tallies {
            if let mine = self.tallies[key] {
                self.tallies[key] = (mine.count + tally.count, mine.bytes + tally.bytes, mine.attempts + tally.attempts)
            } else {
                self.tallies[key] = tally
            }
        }
        for (minute, count) in other.minutes { self.minutes[minute, default: 0] += count }
        for (key, count) in other.groups { self.groups[key, default: 0] += count }
    }

    /// Writes the totals and empties them.
    mutating func write(_ db: Database) throws {
        if !self.tallies.isEmpty {
            let statement = try db.cachedStatement(sql: SQLiteSchema.addTally)
            for (key, tally) in self.tallies {
                try statement.execute(arguments: [
                    SQLiteRows.text(key.source), SQLiteRows.text(key.reason), SQLiteRows.text(key.errorType),
                    key.status, tally.count, tally.bytes, tally.attempts,
                ])
            }
        }
        if !self.minutes.isEmpty {
            let statement = try db.cachedStatement(sql: SQLiteSchema.addFirstFailures)
            for (minute, count) in self.minutes { try statement.execute(arguments: [minute, count]) }
        }
        if !self.groups.isEmpty {
            let statement = try db.cachedStatement(sql: SQLiteSchema.addGroup)
            for (key, count) in self.groups {
                try statement.execute(arguments: [SQLiteRows.text(key.fingerprint), SQLiteRows.text(key.source), count])
            }
        }
        self = SQLiteInsertTotals()
    }
}
