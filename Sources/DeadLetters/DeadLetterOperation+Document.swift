#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

// How stores keep an operation or an instance (one JSON document beside a few indexed columns), and the JSON
// that `dlq ops --json`, `dlq instances --json` and the HTTP API write. Neither uses Foundation's JSONEncoder:
// under four replaying engines at once it crashed in `JSONWriter.serializeString` (Swift 6.3.1, Linux).

extension DeadLetterOperation {
    /// The stored document: everything but the letters and counts (which stores keep per letter), times in
    /// milliseconds since 1970. Written and read by this package's own JSON code, as letters are.
    package func document() -> String {
        var w = DeadLetterJSON.Writer(buffer: [])
        w.raw(#"{"v":1,"id":"#)
        w.string(self.id)
        w.raw(#","kind":"#)
        w.string(self.kind.rawValue)
        w.raw(#","state":"#)
        w.string(self.state.rawValue)
        w.raw(#","actor":"#)
        w.string(self.actor)
        w.raw(#","createdAt":"#)
        w.millisecondsOrNull(self.createdAt)
        w.raw(#","startedAt":"#)
        w.millisecondsOrNull(self.startedAt)
        w.raw(#","finishedAt":"#)
        w.millisecondsOrNull(self.finishedAt)
        w.raw(#","heartbeatAt":"#)
        w.millisecondsOrNull(self.heartbeatAt)
        let f = self.filter
        w.raw(#","filter":{"ids":"#)
        w.strings(f.ids)
        w.raw(#","sources":"#)
        w.strings(f.sources)
        w.raw(#","reasons":"#)
        w.strings(f.reasons)
        w.raw(#","errorTypes":"#)
        w.strings(f.errorTypes)
        w.raw(#","fingerprints":"#)
        w.strings(f.fingerprints)
        w.raw(#","statuses":"#)
        w.strings(f.statuses.map(\.rawValue))
        w.raw(#","since":"#)
        w.millisecondsOrNull(f.since)
        w.raw(#","until":"#)
        w.millisecondsOrNull(f.until)
        w.raw(#","minAttempts":"#)
        w.intOrNull(f.minAttempts)
        w.raw(#","search":"#)
        w.stringOrNull(f.search)
        w.raw(#","expiresBefore":"#)
        w.millisecondsOrNull(f.expiresBefore)
        if !f.metadata.isEmpty {
            w.raw(#","meta":"#)
            w.stringObject(f.metadata)
        }
        let p = self.parameters
        w.raw(#"},"parameters":{"limit":"#)
        w.intOrNull(p.limit)
        w.raw(#","rate":"#)
        if let rate = p.rate, rate.isFinite { w.buffer.append(contentsOf: "\(rate)".utf8) } else { w.raw("null") }
        w.raw(#","concurrency":"#)
        w.intOrNull(p.concurrency)
        w.raw(#","maxFailures":"#)
        w.intOrNull(p.maxFailures)
        w.raw(#","command":"#)
        w.stringOrNull(p.command)
        w.raw(#","leaseMilliseconds":"#)
        if let lease = p.lease {
            let (seconds, attoseconds) = lease.components
            w.int(Int(seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        } else {
            w.raw("null")
        }
        w.raw(#","canary":"#)
        w.intOrNull(p.canary)
        w.raw(#","keepOnSuccess":"#)
        switch p.keepOnSuccess {
        case true?: w.raw("true")
        case false?: w.raw("false")
        case nil: w.raw("null")
        }
        w.raw(#"},"message":"#)
        w.stringOrNull(self.message)
        w.raw("}")
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// An operation read from its stored document, with `counts`.
    /// - Throws: ``DeadLetterError/Code/invalidFormat`` when the document is not one.
    package init(document: String, counts: Counts) throws {
        let d = try DeadLetterJSON.node(document)
        func date(_ node: DeadLetterJSON.Node?) -> Date? { node?.int64.map { Date(millisecondsSince1970: $0) } }
        guard let id = d["id"]?.string, let kind = d["kind"]?.string, let state = d["state"]?.string,
            let actor = d["actor"]?.string, let createdAt = date(d["createdAt"])
        else {
            throw DeadLetterError(
                code: .invalidFormat,
                message: "a stored operation lacks its id, kind, state or actor"
            )
        }
        let f = d["filter"]
        let p = d["parameters"]
        self.init(
            id: id,
            kind: Kind(rawValue: kind),
            state: State(rawValue: state),
            actor: actor,
            createdAt: createdAt,
            startedAt: date(d["startedAt"]),
            finishedAt: date(d["finishedAt"]),
            heartbeatAt: date(d["heartbeatAt"]),
            filter: DeadLetterFilter(
                ids: f?["ids"]?.strings ?? [],
                sources: f?["sources"]?.strings ?? [],
                reasons: f?["reasons"]?.strings ?? [],
                errorTypes: f?["errorTypes"]?.strings ?? [],
                fingerprints: f?["fingerprints"]?.strings ?? [],
                statuses: (f?["statuses"]?.strings ?? []).compactMap(DeadLetterStatus.init(rawValue:)),
                since: date(f?["since"]),
                until: date(f?["until"]),
                minAttempts: f?["minAttempts"]?.int,
                search: f?["search"]?.string,
                expiresBefore: date(f?["expiresBefore"]),
                metadata: f?["meta"]?.stringObject ?? [:]
            ),
            parameters: Parameters(
                limit: p?["limit"]?.int,
                rate: p?["rate"]?.double,
                concurrency: p?["concurrency"]?.int,
                maxFailures: p?["maxFailures"]?.int,
                command: p?["command"]?.string,
                lease: p?["leaseMilliseconds"]?.int64.map { .milliseconds($0) },
                canary: p?["canary"]?.int,
                keepOnSuccess: p?["keepOnSuccess"]?.bool
            ),
            counts: counts,
            message: d["message"]?.string
        )
    }
}

extension DeadLetterInstance {
    /// The stored document.
    package func document() -> String {
        var w = DeadLetterJSON.Writer(buffer: [])
        w.raw(#"{"id":"#)
        w.string(self.id)
        w.raw(#","host":"#)
        w.string(self.host)
        w.raw(#","pid":"#)
        w.int(self.pid)
        w.raw(#","version":"#)
        w.string(self.version)
        w.raw(#","sources":"#)
        w.strings(self.sources)
        w.raw(#","startedAt":"#)
        w.millisecondsOrNull(self.startedAt)
        w.raw(#","lastSeenAt":"#)
        w.millisecondsOrNull(self.lastSeenAt)
        w.raw("}")
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// An instance read from its stored document.
    package init(document: String) throws {
        let d = try DeadLetterJSON.node(document)
        guard let id = d["id"]?.string, let startedAt = d["startedAt"]?.int64, let lastSeenAt = d["lastSeenAt"]?.int64
        else {
            throw DeadLetterError(code: .invalidFormat, message: "a stored instance lacks its id or times")
        }
        self.init(
            id: id,
            host: d["host"]?.string ?? "",
            pid: d["pid"]?.int ?? 0,
            version: d["version"]?.string ?? "",
            sources: d["sources"]?.strings ?? [],
            startedAt: Date(millisecondsSince1970: startedAt),
            lastSeenAt: Date(millisecondsSince1970: lastSeenAt)
        )
    }
}

extension DeadLetterJSON {
    /// One operation: `id`, `kind`, `state` (as readers show it at `now`), `actor`, `createdAt`, `startedAt`,
    /// `finishedAt` (`null` when not yet), `heartbeatAt` (`null` without a runner), `filter` (the fields
    /// given), `parameters` (the ones given), `counts` (`selected`, `succeeded`, `failed`, `parked`, `pending`,
    /// `skipped`) and `message` (`null` when none).
    public static func operation(_ operation: DeadLetterOperation, now: Date, escapingHTML: Bool = false) -> String {
        var w = Writer(buffer: [], escapesHTML: escapingHTML)
        w.operation(operation, now: now)
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// Operations as a JSON array.
    public static func operations(
        _ operations: [DeadLetterOperation],
        now: Date,
        escapingHTML: Bool = false
    )
        -> String
    {
        var w = Writer(buffer: [], escapesHTML: escapingHTML)
        w.array(operations) { w, operation in w.operation(operation, now: now) }
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// One letter of an operation: `id`, `outcome`, `at`, `errorType`, `errorMessage` (`null` when none).
    public static func operationLetter(_ letter: DeadLetterOperationLetter, escapingHTML: Bool = false) -> String {
        var w = Writer(buffer: [], escapesHTML: escapingHTML)
        w.raw(#"{"id":"#)
        w.string(letter.letterID)
        w.raw(#","outcome":"#)
        w.string(letter.outcome.rawValue)
        w.raw(#","at":"#)
        w.timestampOrNull(letter.at)
        w.raw(#","errorType":"#)
        w.stringOrNull(letter.errorType)
        w.raw(#","errorMessage":"#)
        w.stringOrNull(letter.errorMessage)
        w.raw("}")
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// The filter's fields that narrow the selection, as an object (`{}` for every letter).
    public static func filter(_ filter: DeadLetterFilter) -> String {
        var w = Writer(buffer: [])
        w.filter(filter)
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// The parameters given, as an object (`{}` for none).
    public static func parameters(_ parameters: DeadLetterOperation.Parameters) -> String {
        var w = Writer(buffer: [])
        w.parameters(parameters)
        return String(decoding: w.buffer, as: UTF8.self)
    }

    /// One instance: `id`, `host`, `pid`, `version`, `sources`, `startedAt`, `lastSeenAt`.
    public static func instance(_ instance: DeadLetterInstance, escapingHTML: Bool = false) -> String {
        var w = Writer(buffer: [], escapesHTML: escapingHTML)
        w.raw(#"{"id":"#)
        w.string(instance.id)
        w.raw(#","host":"#)
        w.string(instance.host)
        w.raw(#","pid":"#)
        w.int(instance.pid)
        w.raw(#","version":"#)
        w.string(instance.version)
        w.raw(#","sources":"#)
        w.strings(instance.sources)
        w.raw(#","startedAt":"#)
        w.timestamp(instance.startedAt)
        w.raw(#","lastSeenAt":"#)
        w.timestamp(instance.lastSeenAt)
        w.raw("}")
        return String(decoding: w.buffer, as: UTF8.self)
    }
}

extension DeadLetterJSON.Writer {
    mutating func millisecondsOrNull(_ date: Date?) {
        if let date { self.int(Int(date.millisecondsSince1970)) } else { self.raw("null") }
    }

    mutating func intOrNull(_ value: Int?) {
        if let value { self.int(value) } else { self.raw("null") }
    }

    mutating func stringOrNull(_ value: String?) {
        if let value { self.string(value) } else { self.raw("null") }
    }

    /// An object of strings, keys sorted.
    mutating func stringObject(_ values: [String: String]) {
        self.raw("{")
        for (index, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { self.raw(",") }
            self.string(key)
            self.raw(":")
            self.string(value)
        }
        self.raw("}")
    }

    mutating func strings(_ values: [String]) {
        self.array(values) { w, value in w.string(value) }
    }

    mutating func operation(_ o: DeadLetterOperation, now: Date) {
        self.raw(#"{"id":"#)
        self.string(o.id)
        self.raw(#","kind":"#)
        self.string(o.kind.rawValue)
        self.raw(#","state":"#)
        self.string(o.state(now: now).rawValue)
        self.raw(#","actor":"#)
        self.string(o.actor)
        self.raw(#","createdAt":"#)
        self.timestamp(o.createdAt)
        self.raw(#","startedAt":"#)
        self.timestampOrNull(o.startedAt)
        self.raw(#","finishedAt":"#)
        self.timestampOrNull(o.finishedAt)
        self.raw(#","heartbeatAt":"#)
        self.timestampOrNull(o.heartbeatAt)
        self.raw(#","filter":"#)
        self.filter(o.filter)
        self.raw(#","parameters":"#)
        self.parameters(o.parameters)
        let c = o.counts
        self.raw(#","counts":{"selected":"#)
        self.int(c.selected)
        self.raw(#","succeeded":"#)
        self.int(c.succeeded)
        self.raw(#","failed":"#)
        self.int(c.failed)
        self.raw(#","parked":"#)
        self.int(c.parked)
        self.raw(#","pending":"#)
        self.int(c.pending)
        self.raw(#","skipped":"#)
        self.int(c.skipped)
        self.raw(#"},"message":"#)
        self.stringOrNull(o.message)
        self.raw("}")
    }

    /// Begins the next member of an object whose members are optional: `{` before the first, `,` before the
    /// others, then `"name":`. `first` starts true and is kept by the caller for ``endObject(first:)``.
    mutating func member(_ name: StaticString, first: inout Bool) {
        self.raw(first ? "{" : ",")
        first = false
        self.raw("\"")
        self.raw(name)
        self.raw("\":")
    }

    /// Ends an object begun by ``member(_:first:)``: `{}` when it has no member.
    mutating func endObject(first: Bool) {
        self.raw(first ? "{}" : "}")
    }

    /// The filter's fields that narrow the selection, as the API's filter objects name them.
    mutating func filter(_ f: DeadLetterFilter) {
        var first = true
        if !f.ids.isEmpty {
            self.member("ids", first: &first)
            self.strings(f.ids)
        }
        if !f.sources.isEmpty {
            self.member("sources", first: &first)
            self.strings(f.sources)
        }
        if !f.reasons.isEmpty {
            self.member("reasons", first: &first)
            self.strings(f.reasons)
        }
        if !f.errorTypes.isEmpty {
            self.member("errorTypes", first: &first)
            self.strings(f.errorTypes)
        }
        if !f.fingerprints.isEmpty {
            self.member("fingerprints", first: &first)
            self.strings(f.fingerprints)
        }
        if !f.statuses.isEmpty {
            self.member("statuses", first: &first)
            self.strings(f.statuses.map(\.rawValue))
        }
        if let since = f.since {
            self.member("since", first: &first)
            self.timestamp(since)
        }
        if let until = f.until {
            self.member("until", first: &first)
            self.timestamp(until)
        }
        if let min = f.minAttempts {
            self.member("minAttempts", first: &first)
            self.int(min)
        }
        if let search = f.search {
            self.member("search", first: &first)
            self.string(search)
        }
        if let before = f.expiresBefore {
            self.member("expiresBefore", first: &first)
            self.timestamp(before)
        }
        if !f.metadata.isEmpty {
            self.member("meta", first: &first)
            self.stringObject(f.metadata)
        }
        self.endObject(first: first)
    }

    mutating func parameters(_ p: DeadLetterOperation.Parameters) {
        var first = true
        if let limit = p.limit {
            self.member("limit", first: &first)
            self.int(limit)
        }
        if let rate = p.rate {
            self.member("rate", first: &first)
            self.buffer.append(contentsOf: DeadLetterJSON.number(rate).utf8)
        }
        if let concurrency = p.concurrency {
            self.member("concurrency", first: &first)
            self.int(concurrency)
        }
        if let max = p.maxFailures {
            self.member("maxFailures", first: &first)
            self.int(max)
        }
        if let command = p.command {
            self.member("command", first: &first)
            self.string(command)
        }
        if let lease = p.lease {
            self.member("leaseSeconds", first: &first)
            self.buffer.append(contentsOf: DeadLetterJSON.number(Double(lease.components.seconds)).utf8)
        }
        if let canary = p.canary {
            self.member("canary", first: &first)
            self.int(canary)
        }
        if let keep = p.keepOnSuccess {
            self.member("keepOnSuccess", first: &first)
            if keep { self.raw("true") } else { self.raw("false") }
        }
        self.endObject(first: first)
    }
}
