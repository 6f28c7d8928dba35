import DeadLetters
import GRDB

/// What a batch of inserted letters adds to the running totals, written with one upsert per distinct key.
struct SQLiteInsertTotals {
    /// Keys compare by bytes, as the totals' tables do (``ExactText``).
    private struct TallyKey: Hashable {
        var source: ExactText
        var reason: ExactText
        var errorType: ExactText
        var status: ExactText
    }

    private struct GroupKey: Hashable {
        var fingerprint: ExactText
        var source: ExactText
    }

    /// Attempts are added up in floating point (exact to 2^53): letters appended straight to the store
    /// (``DeadLetters/DeadLetter/maximumCount`` bounds only what the queue and imports accept) may hold up to
    /// `Int.max`, and their sum must not overflow. A sum beyond `Int64` is written as a `REAL`, as SQLite's own
    /// `+` in the totals' upsert does; the summary reads it as a `Double`.
    private var tallies: [TallyKey: (count: Int, bytes: Int, attempts: Double)] = [:]
    private var minutes: [Int64: Int] = [:]
    private var groups: [GroupKey: Int] = [:]

    /// A number of distinct keys past which a long import writes its totals, so that memory stays flat.
    static let largeKeyCount = 8192

    /// How many distinct keys the totals hold.
    var keyCount: Int { self.tallies.count + self.minutes.count + self.groups.count }

    mutating func add(_ letter: DeadLetter) {
        let key = TallyKey(
            source: ExactText(letter.source),
            reason: ExactText(letter.reason.rawValue),
            errorType: ExactText(letter.errorType),
            status: ExactText(letter.status.rawValue)
        )
        let size = letter.storageSize
        if let tally = self.tallies[key] {
            self.tallies[key] = (tally.count + 1, tally.bytes + size, tally.attempts + Double(letter.attempts))
        } else {
            self.tallies[key] = (1, size, Double(letter.attempts))
        }
        self.minutes[SQLiteSchema.minute(ofMilliseconds: letter.firstFailedAt.millisecondsSince1970), default: 0] += 1
        self.groups[
            GroupKey(fingerprint: ExactText(letter.fingerprint), source: ExactText(letter.source)),
            default: 0
        ] +=
            1
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
            let statement = try SQLiteRawStatement(db, sql: SQLiteSchema.addTally)
            for (key, tally) in self.tallies {
                statement.reset()
                statement.bindText(key.source.string, 1)
                statement.bindText(key.reason.string, 2)
                statement.bindText(key.errorType.string, 3)
                statement.bindText(key.status.string, 4)
                statement.bindInt(tally.count, 5)
                statement.bindInt(tally.bytes, 6)
                statement.bindNumber(tally.attempts, 7)
                _ = try statement.run()
            }
        }
        if !self.minutes.isEmpty {
            let statement = try SQLiteRawStatement(db, sql: SQLiteSchema.addFirstFailures)
            for (minute, count) in self.minutes {
                statement.reset()
                statement.bindInt(minute, 1)
                statement.bindInt(count, 2)
                _ = try statement.run()
            }
        }
        if !self.groups.isEmpty {
            let statement = try SQLiteRawStatement(db, sql: SQLiteSchema.addGroup)
            for (key, count) in self.groups {
                statement.reset()
                statement.bindText(key.fingerprint.string, 1)
                statement.bindText(key.source.string, 2)
                statement.bindInt(count, 3)
                _ = try statement.run()
            }
        }
        self = SQLiteInsertTotals()
    }
}
