import DeadLetters
import PostgresNIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension PostgresDeadLetterStore {
    /// The columns a letter is read from, in the order ``decodeLetter(_:)`` reads them.
    static let letterColumns = """
        id, source, reason, error_type, error_message, causes::text, attempts, first_failed_at, last_failed_at, \
        next_attempt_at, expires_at, status, fingerprint, replay_count, metadata::text, content_type, payload, \
        history::text, abandoned_claims
        """

    /// The same columns, qualified by the table alias `l`.
    static let qualifiedLetterColumns = """
        l.id, l.source, l.reason, l.error_type, l.error_message, l.causes::text, l.attempts, l.first_failed_at, \
        l.last_failed_at, l.next_attempt_at, l.expires_at, l.status, l.fingerprint, l.replay_count, \
        l.metadata::text, l.content_type, l.payload, l.history::text, l.abandoned_claims
        """

    static func decodeLetter(_ row: PostgresRow) throws -> DeadLetter {
        let cells = row.makeRandomAccess()
        let id = try cells[0].decode(String.self)
        func json<T: Decodable>(_ index: Int, _ type: T.Type, _ field: String, empty: T) throws -> T {
            let text = try cells[index].decode(String.self)
            if text == "[]" || text == "{}" { return empty }
            do {
                return try JSONDecoder().decode(T.self, from: Data(text.utf8))
            } catch {
                throw DeadLetterError(
                    code: .invalidFormat,
                    message: "the stored \(field) is not valid",
                    id: id,
                    field: field
                )
            }
        }
        let historyText = try cells[17].decode(String.self)
        let history: (entries: [DeadLetter.HistoryEntry], omitted: Int)
        do {
            history = historyText == "[]" ? ([], 0) : try DeadLetter.storedHistory(fromJSON: historyText)
        } catch {
            throw DeadLetterError(
                code: .invalidFormat,
                message: "the stored history is not valid",
                id: id,
                field: "history"
            )
        }
        let statusText = try cells[11].decode(String.self)
        guard let status = DeadLetterStatus(rawValue: statusText) else {
            throw DeadLetterError(
                code: .invalidFormat,
                message: "unknown stored status '\(statusText)'",
                id: id,
                field: "status"
            )
        }
        return DeadLetter(
            id: id,
            source: try cells[1].decode(String.self),
            reason: FailureReason(rawValue: try cells[2].decode(String.self)),
            errorType: try cells[3].decode(String.self),
            errorMessage: try cells[4].decode(String.self),
            causes: try json(5, [String].self, "causes", empty: []),
            attempts: Int(try cells[6].decode(Int64.self)),
            firstFailedAt: Date(millisecondsSince1970: try cells[7].decode(Int64.self)),
            lastFailedAt: Date(millisecondsSince1970: try cells[8].decode(Int64.self)),
            nextAttemptAt: try cells[9].decode(Int64?.self).map(Date.init(millisecondsSince1970:)),
            expiresAt: try cells[10].decode(Int64?.self).map(Date.init(millisecondsSince1970:)),
            status: status,
            fingerprint: try cells[12].decode(String.self),
            replayCount: Int(try cells[13].decode(Int64.self)),
            metadata: try json(14, [String: String].self, "metadata", empty: [:]),
            contentType: try cells[15].decode(String?.self),
            payload: try cells[16].decode(Data.self),
            history: history.entries,
            historyOmitted: history.omitted,
            abandonedClaims: Int(try cells[18].decode(Int64.self))
        )
    }

    /// A JSON array of strings.
    static func jsonArray(_ strings: [String]) -> String {
        guard !strings.isEmpty else { return "[]" }
        var out = "["
        for (index, string) in strings.enumerated() {
            if index > 0 { out += "," }
            Self.appendJSONString(string, to: &out)
        }
        return out + "]"
    }

    /// A JSON object of strings.
    static func jsonObject(_ dictionary: [String: String]) -> String {
        guard !dictionary.isEmpty else { return "{}" }
        var out = "{"
        var first = true
        for (key, value) in dictionary {
            if !first { out += "," }
            first = false
            Self.appendJSONString(key, to: &out)
            out += ":"
            Self.appendJSONString(value, to: &out)
        }
        return out + "}"
    }

    /// The letter's ``DeadLetter/storedHistoryJSON``, or `[]`.
    static func jsonHistory(_ letter: DeadLetter) -> String {
        letter.storedHistoryJSON ?? "[]"
    }

    private static func appendJSONString(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Checks what PostgreSQL cannot store: NUL in text.
    static func validateStorable(_ letter: DeadLetter) throws {
        func check(_ text: String, _ field: String) throws {
            if text.utf8.contains(0) {
                throw DeadLetterError(
                    code: .invalidFormat,
                    message: "PostgreSQL text cannot hold a NUL character",
                    id: letter.id,
                    field: field
                )
            }
        }
        try check(letter.id, "id")
        try check(letter.source, "source")
        try check(letter.reason.rawValue, "reason")
        try check(letter.errorType, "errorType")
        try check(letter.errorMessage, "errorMessage")
        try check(letter.fingerprint, "fingerprint")
        try check(letter.contentType ?? "", "contentType")
        for cause in letter.causes { try check(cause, "causes") }
        for (key, value) in letter.metadata {
            try check(key, "metadata")
            try check(value, "metadata")
        }
        for entry in letter.storedHistory {
            for text in [
                entry.event.rawValue, entry.outcome?.rawValue, entry.errorType, entry.errorMessage,
                entry.reason?.rawValue, entry.fingerprint, entry.actor, entry.operation, entry.message,
            ] {
                try check(text ?? "", "history")
            }
            for cause in entry.causes { try check(cause, "history") }
        }
    }
}

/// Letters laid out as one array per column, bound as 19 parameters of one multi-row `INSERT … SELECT unnest`.
struct LetterColumns {
    static let absent = Int64.min

    var ids: [String] = []
    var sources: [String] = []
    var reasons: [String] = []
    var errorTypes: [String] = []
    var errorMessages: [String] = []
    var causes: [String] = []
    var attempts: [Int64] = []
    var firstFailedAt: [Int64] = []
    var lastFailedAt: [Int64] = []
    var nextAttemptAt: [Int64] = []
    var expiresAt: [Int64] = []
    var statuses: [String] = []
    var fingerprints: [String] = []
    var replayCounts: [Int64] = []
    var metadata: [String] = []
    var contentTypes: [String] = []
    var hasContentType: [Bool] = []
    var payloads: [ByteBuffer] = []
    var history: [String] = []
    var sizes: [Int64] = []
    /// Not among the insert's arrays (a new letter has none): written afterwards by ``abandonedClaimsUpdate(in:)``
    /// for the rare letter that arrives with some (an import of an exported letter).
    var abandonedClaims: [Int64] = []

    var count: Int { self.ids.count }

    mutating func append(_ letter: DeadLetter) throws {
        self.ids.append(letter.id)
        self.sources.append(letter.source)
        self.reasons.append(letter.reason.rawValue)
        self.errorTypes.append(letter.errorType)
        self.errorMessages.append(letter.errorMessage)
        self.causes.append(PostgresDeadLetterStore.jsonArray(letter.causes))
        self.attempts.append(Int64(letter.attempts))
        self.firstFailedAt.append(letter.firstFailedAt.millisecondsSince1970)
        self.lastFailedAt.append(letter.lastFailedAt.millisecondsSince1970)
        self.nextAttemptAt.append(letter.nextAttemptAt?.millisecondsSince1970 ?? Self.absent)
        self.expiresAt.append(letter.expiresAt?.millisecondsSince1970 ?? Self.absent)
        self.statuses.append(letter.status.rawValue)
        self.fingerprints.append(letter.fingerprint)
        self.replayCounts.append(Int64(letter.replayCount))
        self.metadata.append(PostgresDeadLetterStore.jsonObject(letter.metadata))
        self.contentTypes.append(letter.contentType ?? "")
        self.hasContentType.append(letter.contentType != nil)
        self.payloads.append(ByteBuffer(bytes: letter.payload))
        self.history.append(PostgresDeadLetterStore.jsonHistory(letter))
        self.sizes.append(Int64(letter.storageSize))
        self.abandonedClaims.append(Int64(letter.abandonedClaims))
    }

    /// Whether some letter arrives with abandoned claims.
    var hasAbandonedClaims: Bool { self.abandonedClaims.contains { $0 != 0 } }

    /// Sets `abandoned_claims` of the inserted letters that arrived with some; `nil` when none did.
    func abandonedClaimsUpdate(in schema: String) -> PostgresQuery? {
        var ids: [String] = []
        var counts: [Int64] = []
        for (index, count) in self.abandonedClaims.enumerated() where count != 0 {
            ids.append(self.ids[index])
            counts.append(count)
        }
        guard !ids.isEmpty else { return nil }
        var binds = PostgresBindings(capacity: 2)
        binds.append(ids)
        binds.append(counts)
        return PostgresQuery(
            unsafeSQL: """
                UPDATE \(schema).letters AS l SET abandoned_claims = u.n
                FROM unnest($1::text[], $2::int8[]) AS u(id, n) WHERE l.id = u.id
                """,
            binds: binds
        )
    }

    /// `INSERT … ON CONFLICT (id) DO NOTHING RETURNING id` of every row; without `onConflict`, a stored id
    /// fails the statement with a unique violation, and it returns `size`.
    func insert(into schema: String, onConflict: Bool = true) -> PostgresQuery {
        let sql =
            Self.insertSQL(into: schema) + "\n"
            + (onConflict ? "ON CONFLICT (id) DO NOTHING RETURNING id" : "RETURNING size")
        return PostgresQuery(unsafeSQL: sql, binds: self.binds)
    }

    /// `SELECT schema.add_letters($1, …, $28)`: the insert, the usage update and the running totals in a
    /// function whose plans the server keeps per connection (see ``addLettersFunction``); a stored id fails it
    /// with a unique violation.
    func add(into schema: String) -> PostgresQuery {
        let parameters = (1...28).map { "$\($0)" }.joined(separator: ", ")
        var binds = self.binds
        self.totals().append(to: &binds)
        return PostgresQuery(unsafeSQL: "SELECT \(schema).add_letters(\(parameters))", binds: binds)
    }

    /// What the rows for which `include` is true add to the running totals.
    func totals(where include: (Int) -> Bool = { _ in true }) -> LetterTotals {
        var totals = LetterTotals()
        for row in 0..<self.count where include(row) {
            totals.add(
                source: self.sources[row],
                reason: self.reasons[row],
                errorType: self.errorTypes[row],
                status: self.statuses[row],
                attempts: self.attempts[row],
                firstFailedAt: self.firstFailedAt[row]
            )
        }
        return totals
    }

    /// The 20 column arrays, in the order of ``insertSQL(into:)``'s parameters.
    var binds: PostgresBindings {
        var binds = PostgresBindings(capacity: 20)
        binds.append(self.ids)
        binds.append(self.sources)
        binds.append(self.reasons)
        binds.append(self.errorTypes)
        binds.append(self.errorMessages)
        binds.append(self.causes)
        binds.append(self.attempts)
        binds.append(self.firstFailedAt)
        binds.append(self.lastFailedAt)
        binds.append(self.nextAttemptAt)
        binds.append(self.expiresAt)
        binds.append(self.statuses)
        binds.append(self.fingerprints)
        binds.append(self.replayCounts)
        binds.append(self.metadata)
        binds.append(self.contentTypes)
        binds.append(self.hasContentType)
        binds.append(self.payloads)
        binds.append(self.history)
        binds.append(self.sizes)
        return binds
    }

    /// The multi-row insert of the 20 column arrays `$1` … `$20`, without a final clause.
    static func insertSQL(into schema: String) -> String {
        """
        INSERT INTO \(schema).letters (id, source, reason, error_type, error_message, causes, attempts,
            first_failed_at, last_failed_at, next_attempt_at, expires_at, status, fingerprint, replay_count,
            metadata, content_type, payload, history, size)
        SELECT u.id, u.source, u.reason, u.error_type, u.error_message, u.causes::jsonb, u.attempts,
            u.first_failed_at, u.last_failed_at, NULLIF(u.next_attempt_at, \(Self.absent)),
            NULLIF(u.expires_at, \(Self.absent)), u.status, u.fingerprint, u.replay_count, u.metadata::jsonb,
            CASE WHEN u.has_content_type THEN u.content_type END, u.payload, u.history::jsonb, u.size
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::text[], $13::text[], $14::int8[], $15::text[],
            $16::text[], $17::bool[], $18::bytea[], $19::text[], $20::int8[])
            AS u(id, source, reason, error_type, error_message, causes, attempts, first_failed_at,
                last_failed_at, next_attempt_at, expires_at, status, fingerprint, replay_count, metadata,
                content_type, has_content_type, payload, history, size)
        """
    }

    /// Schema version 2's `add_letters` (the insert, then the usage counters; the totals were a trigger's);
    /// kept as released, since version 2's migration creates it and version 3's drops it.
    static let addLettersFunctionVersion2 = """
        CREATE FUNCTION $schema.add_letters(text[], text[], text[], text[], text[], text[], int8[], int8[],
            int8[], int8[], int8[], text[], text[], int8[], text[], text[], bool[], bytea[], text[], int8[])
        RETURNS int8 LANGUAGE plpgsql AS $body$
        DECLARE
            inserted int8;
        BEGIN
        \(insertSQL(into: "$schema"));
            GET DIAGNOSTICS inserted = ROW_COUNT;
            UPDATE $schema.usage
            SET count = count + inserted, bytes = bytes + (SELECT coalesce(sum(s), 0) FROM unnest($20) AS s)
            WHERE slot = \(PostgresDeadLetterStore.usageSlotSQL);
            RETURN inserted;
        END
        $body$
        """

    /// The function ``add(into:)`` calls (schema version 3): the insert, the usage counters and the running
    /// totals (``LetterTotals``, parameters 21 to 28); `$schema` stands for the schema. Its statements' plans
    /// are cached by the server per connection, which saves parsing and planning the 20-array insert at every
    /// group commit.
    static let addLettersFunction = """
        CREATE FUNCTION $schema.add_letters(text[], text[], text[], text[], text[], text[], int8[], int8[],
            int8[], int8[], int8[], text[], text[], int8[], text[], text[], bool[], bytea[], text[], int8[],
            text[], text[], text[], text[], int8[], int8[], int8[], int8[])
        RETURNS int8 LANGUAGE plpgsql AS $body$
        DECLARE
            inserted int8;
        BEGIN
            PERFORM set_config('\(PostgresDeadLetterStore.countingWriterSetting)', 'on', true);
        \(insertSQL(into: "$schema"));
            GET DIAGNOSTICS inserted = ROW_COUNT;
            UPDATE $schema.usage
            SET count = count + inserted, bytes = bytes + (SELECT coalesce(sum(s), 0) FROM unnest($20) AS s)
            WHERE slot = \(PostgresDeadLetterStore.usageSlotSQL);
        \(LetterTotals.addSQL(firstParameter: 21))
            RETURN inserted;
        END
        $body$
        """
}

/// What inserted letters add to the running totals (`tallies` and `first_failures`, see
/// ``PostgresDeadLetterStore/compactionSQL``): one row per distinct (source, reason, error type, status) and
/// per 10-minute bucket of first failures. Counted here and written by the insert's own statement, rather than
/// by a trigger with a transition table, which cost the server a copy and two scans of every inserted row.
struct LetterTotals {
    /// Keys compare by bytes, as the totals' table does (``ExactText``).
    private struct Key: Hashable {
        var source: ExactText
        var reason: ExactText
        var errorType: ExactText
        var status: ExactText
    }

    private var tallies: [Key: (count: Int64, attempts: Int64)] = [:]
    private var buckets: [Int64: Int64] = [:]

    var isEmpty: Bool { self.tallies.isEmpty }

    mutating func add(
        source: String,
        reason: String,
        errorType: String,
        status: String,
        attempts: Int64,
        firstFailedAt: Int64
    ) {
        let key = Key(
            source: ExactText(source),
            reason: ExactText(reason),
            errorType: ExactText(errorType),
            status: ExactText(status)
        )
        let tally = self.tallies[key] ?? (0, 0)
        // Saturated: letters appended straight to the store may hold up to Int64.max attempts.
        let (sum, overflow) = tally.attempts.addingReportingOverflow(attempts)
        self.tallies[key] = (tally.count + 1, overflow ? (attempts > 0 ? .max : .min) : sum)
        self.buckets[PostgresDeadLetterStore.bucket(ofMilliseconds: firstFailedAt), default: 0] += 1
    }

    /// Appends the 8 arrays that ``addSQL(firstParameter:)`` reads.
    func append(to binds: inout PostgresBindings) {
        var sources: [String] = []
        var reasons: [String] = []
        var errorTypes: [String] = []
        var statuses: [String] = []
        var counts: [Int64] = []
        var attempts: [Int64] = []
        for (key, tally) in self.tallies {
            sources.append(key.source.string)
            reasons.append(key.reason.string)
            errorTypes.append(key.errorType.string)
            statuses.append(key.status.string)
            counts.append(tally.count)
            attempts.append(tally.attempts)
        }
        binds.append(sources)
        binds.append(reasons)
        binds.append(errorTypes)
        binds.append(statuses)
        binds.append(counts)
        binds.append(attempts)
        binds.append(Array(self.buckets.keys))
        binds.append(Array(self.buckets.values))
    }

    /// `SELECT schema.add_totals($1, …, $8)`, for inserts that do not go through `add_letters`.
    func add(into schema: String) -> PostgresQuery {
        var binds = PostgresBindings(capacity: 8)
        self.append(to: &binds)
        return PostgresQuery(
            unsafeSQL: "SELECT \(schema).add_totals($1, $2, $3, $4, $5, $6, $7, $8)",
            binds: binds
        )
    }

    /// Inserts compact the totals about once every this many rows they add to them: an insert of `n` rows
    /// compacts with odds `n` in ``compactionRows``. Rarer than the updates' and deletes' one statement in
    /// ``PostgresDeadLetterStore/compactionOdds``: a compaction reads every row of the totals (those it deleted
    /// before included, until `VACUUM` reclaims them), and group commits are many and small; yet the rows a
    /// `summary()` adds up stay a few thousand, whatever the size of the appends.
    static let compactionRows = 4096

    /// PL/pgSQL statements that add the 8 arrays from parameter `first` on to the totals, and now and then
    /// (see ``compactionRows``) compact them; `$schema` stands for the schema.
    static func addSQL(firstParameter first: Int) -> String {
        let p = (0..<8).map { "$\(first + $0)" }
        return """
                INSERT INTO $schema.tallies (source, reason, error_type, status, count, attempts)
                SELECT * FROM unnest(\(p[0])::text[], \(p[1])::text[], \(p[2])::text[], \(p[3])::text[], \(p[4])::int8[],
                    \(p[5])::int8[]);
                INSERT INTO $schema.first_failures (bucket, count) SELECT * FROM unnest(\(p[6])::int8[], \(p[7])::int8[]);
                IF random() * \(Self.compactionRows) < cardinality(\(p[0])) THEN
            \(PostgresDeadLetterStore.compactionSQL)
                END IF;
            """
    }

    /// The function ``add(into:)`` calls (schema version 3).
    static let addTotalsFunction = """
        CREATE FUNCTION $schema.add_totals(text[], text[], text[], text[], int8[], int8[], int8[], int8[])
        RETURNS void LANGUAGE plpgsql AS $body$
        BEGIN
        \(addSQL(firstParameter: 1))
        END
        $body$
        """
}
