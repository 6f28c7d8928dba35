import ArgumentParser
import DeadLetters
import Foundation

/// `dlq list`: the letters the filters select, oldest first or in the order of `--sort`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List dead letters, oldest first or by --sort (a table, or a JSON array with --json).",
        discussion: """
            Examples:
              dlq list --source orders --since 2h
              dlq list --since yesterday --until today
              dlq list --since 2026-12-05T22:00 --fingerprint 9f2c41d0
              dlq list --reason timeout --status dead --limit 20
              dlq list --search "connection refused" --json | jq -r '.[].id'
              dlq list --search ord-10109
              dlq list --meta tenant=acme --meta shop=s1 --sort attempts
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Option(
        help: ArgumentHelp(
            "The order: id (oldest first, the default), last-failed (latest first), first-failed (earliest first), "
                + "attempts (most first), source (A to Z); ties by id.",
            valueName: "order"
        ),
        transform: SortOption.parse
    )
    var sort: SortOption?

    @Flag(help: "Write a JSON array of letters in the stored format.")
    var json = false

    func run() async throws {
        let filters = self.filters
        let limit = self.filters.limit
        let json = self.json
        let sort = self.sort?.sort ?? .id
        try await self.storeOptions.withStore(.read) { store in
            let filter = try await filters.resolvedFilter(in: store)
            if json {
                try await Self.writeJSON(store: store, filter: filter, sort: sort, limit: limit)
            } else {
                try await Self.writeTable(store: store, filter: filter, sort: sort, limit: limit)
            }
        }
    }

    /// Streams the array page by page, so memory stays flat.
    static func writeJSON(
        store: any DeadLetterStore,
        filter: DeadLetterFilter,
        sort: DeadLetterSort = .id,
        limit: Int?
    ) async throws {
        var written = 0
        var cursor: String?
        var buffer: [UInt8] = []
        buffer.append(UInt8(ascii: "["))
        repeat {
            let want = min(1000, (limit ?? Int.max) - written)
            guard want > 0 else { break }
            let page = try await store.page(filter, sortedBy: sort, after: cursor, limit: want)
            for letter in page.letters {
                buffer.append(contentsOf: written == 0 ? Array("\n".utf8) : Array(",\n".utf8))
                DeadLetterJSON.encode(letter, into: &buffer)
                written += 1
            }
            Terminal.out(bytes: buffer)
            buffer.removeAll(keepingCapacity: true)
            cursor = page.nextCursor
        } while cursor != nil
        Terminal.out(written == 0 ? "]\n" : "\n]\n")
    }

    static func writeTable(
        store: any DeadLetterStore,
        filter: DeadLetterFilter,
        sort: DeadLetterSort = .id,
        limit: Int?
    ) async throws {
        var written = 0
        var cursor: String?
        let now = Date()
        repeat {
            let want = min(1000, (limit ?? Int.max) - written)
            guard want > 0 else { break }
            // The table shows no payload: sealed ones stay closed, so a letter whose key is missing is listed too.
            let page = try await store.pageWithoutPayloads(filter, sortedBy: sort, after: cursor, limit: want)
            if page.letters.isEmpty { break }
            Terminal.out(LetterView.table(page.letters, now: now))
            written += page.letters.count
            cursor = page.nextCursor
        } while cursor != nil
        let total = try await store.count(filter)
        let style = Style.stdout
        if written == 0 {
            Terminal.line(style.dim(filter.isEmpty ? "No dead letters." : "No dead letters match."))
        } else if written < total {
            Terminal.line(style.dim("\(written) of \(total) letters shown (--limit)"))
        } else {
            Terminal.line(style.dim(Human.count(total, "letter")))
        }
    }
}

/// How letters look for people.
enum LetterView {
    /// A table row per letter: id, source, reason, status, attempts, last failure, error.
    static func table(_ letters: [DeadLetter], now: Date, style: Style = .stdout) -> String {
        let messageWidth = max(24, Terminal.width - 36 - 50)
        var table = Table(
            [
                .init(title: "ID"), .init(title: "SOURCE", maxWidth: 24), .init(title: "REASON"),
                .init(title: "STATUS"), .init(title: "TRIES", alignment: .right), .init(title: "LAST FAILED"),
                .init(title: "ERROR", maxWidth: messageWidth),
            ],
            style: style
        )
        for letter in letters {
            table.append([
                letter.id, letter.source, letter.reason.rawValue, style.status(letter.status.rawValue),
                "\(letter.attempts)", Human.age(letter.lastFailedAt, now: now),
                "\(letter.errorType): \(letter.errorMessage)".truncated(to: messageWidth),
            ])
        }
        return table.render()
    }

    /// Everything about one letter, then its payload.
    /// - Parameter sealed: why the payload could not be opened, shown in its place.
    static func detail(_ letter: DeadLetter, now: Date, sealed: String? = nil, style: Style = .stdout) -> String {
        var rows: [(String, String)] = [
            ("id", style.bold(letter.id)),
            ("source", letter.source),
            ("reason", letter.reason.rawValue + (letter.reason.isRetryable ? "" : style.dim(" (permanent)"))),
            ("status", style.status(letter.status.rawValue)),
            ("error", "\(style.bold(letter.errorType)): \(letter.errorMessage)"),
        ]
        for (index, cause) in letter.causes.enumerated() {
            rows.append((index == 0 ? "caused by" : "", cause))
        }
        rows += [
            ("attempts", "\(letter.attempts)"),
            (
                "first failed",
                "\(Timestamp.format(letter.firstFailedAt))  \(style.dim(Human.age(letter.firstFailedAt, now: now)))"
            ),
            (
                "last failed",
                "\(Timestamp.format(letter.lastFailedAt))  \(style.dim(Human.age(letter.lastFailedAt, now: now)))"
            ),
        ]
        if let next = letter.nextAttemptAt {
            rows.append(("next attempt", "\(Timestamp.format(next))  \(style.dim(Human.relative(next, now: now)))"))
        }
        if let expires = letter.expiresAt {
            rows.append(("expires", "\(Timestamp.format(expires))  \(style.dim(Human.relative(expires, now: now)))"))
        }
        rows += [("fingerprint", letter.fingerprint), ("replays failed", "\(letter.replayCount)")]
        for (key, value) in letter.metadata.sorted(by: { $0.key < $1.key }) {
            rows.append(("metadata", "\(key)=\(value)"))
        }
        for (index, entry) in letter.history.enumerated() {
            rows.append(("history", Self.describe(entry, style: style)))
            if index == 0, letter.historyOmitted > 0 {
                rows.append(("history", style.dim("… \(Human.count(letter.historyOmitted, "earlier entry")) left out")))
            }
        }
        if letter.abandonedClaims > 0 { rows.append(("abandoned claims", "\(letter.abandonedClaims)")) }
        let size = sealed == nil ? Human.bytes(letter.payload.count) : "encrypted, not shown"
        rows.append(("payload", size + (letter.contentType.map { ", \($0)" } ?? "")))
        let width = rows.map(\.0.count).max() ?? 0
        var output = ""
        for (key, value) in rows {
            output += style.dim(key.padding(toLength: width, withPad: " ", startingAt: 0)) + "  " + value + "\n"
        }
        let preview = sealed.map { style.dim("(\($0))") } ?? Self.payloadPreview(letter.payload, style: style)
        output += "\n" + preview + "\n"
        return output
    }

    /// One history entry on one line: when, what, how it ended, the error, why, who and which operation.
    static func describe(_ entry: DeadLetter.HistoryEntry, style: Style) -> String {
        var text = "\(Timestamp.format(entry.at))  \(entry.event)"
        if let outcome = entry.outcome {
            text += " " + (outcome == .failed ? style.red(outcome.rawValue) : style.green(outcome.rawValue))
        }
        if let message = entry.errorMessage { text += ": \(entry.errorType.map { "\($0): " } ?? "")\(message)" }
        if let reason = entry.reason, entry.event == .failed { text += style.dim(" (\(reason))") }
        if let message = entry.message { text += " — \(message)" }
        if let actor = entry.actor { text += style.dim(" by \(actor)") }
        if let operation = entry.operation { text += style.dim(" [operation \(operation)]") }
        return text
    }

    /// The payload as text when it is UTF-8 (pretty-printed when it is JSON), else a note and a hex preview.
    static func payloadPreview(_ payload: Data, style: Style) -> String {
        if payload.isEmpty { return style.dim("(empty payload)") }
        if let text = String(data: payload, encoding: .utf8),
            !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\r" && $0 != "\t" })
        {
            // Short payloads read best as they are; long JSON is pretty-printed.
            if text.count <= 160 { return text }
            if let object = try? JSONSerialization.jsonObject(with: payload, options: [.fragmentsAllowed]),
                JSONSerialization.isValidJSONObject(object),
                let pretty = try? JSONSerialization.data(
                    withJSONObject: object,
                    options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                ),
                let prettyText = String(data: pretty, encoding: .utf8)
            {
                return prettyText
            }
            return text
        }
        let hex = payload.prefix(64).map { String(format: "%02x", $0) }.joined(separator: " ")
        return style.dim("(binary; 'dlq show ID --raw' writes the bytes)") + "\n" + hex
            + (payload.count > 64 ? " …" : "")
    }
}
