#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

// How stores keep an operation or an instance (one JSON document beside a few indexed columns), and the JSON
// that `dlq ops --json`, `dlq instances --json` and the HTTP API write.

extension DeadLetterOperation {
    /// The stored document: everything but the letters and counts (which stores keep per letter).
    package func document() throws -> String {
        let document = OperationDocument(
            v: 1,
            id: self.id,
            kind: self.kind.rawValue,
            state: self.state.rawValue,
            actor: self.actor,
            createdAt: self.createdAt.millisecondsSince1970,
            startedAt: self.startedAt?.millisecondsSince1970,
            finishedAt: self.finishedAt?.millisecondsSince1970,
            heartbeatAt: self.heartbeatAt?.millisecondsSince1970,
            filter: FilterDocument(self.filter),
            parameters: ParametersDocument(self.parameters),
            message: self.message
        )
        return String(decoding: try JSONEncoder().encode(document), as: UTF8.self)
    }

    /// An operation read from its stored document, with `counts`.
    /// - Throws: ``DeadLetterError/Code/invalidFormat`` when the document is not one.
    package init(document: String, counts: Counts) throws {
        let d: OperationDocument
        do {
            d = try JSONDecoder().decode(OperationDocument.self, from: Data(document.utf8))
        } catch {
            throw DeadLetterError(code: .invalidFormat, message: "a stored operation is not readable: \(error)")
        }
        self.init(
            id: d.id,
            kind: Kind(rawValue: d.kind),
            state: State(rawValue: d.state),
            actor: d.actor,
            createdAt: Date(millisecondsSince1970: d.createdAt),
            startedAt: d.startedAt.map { Date(millisecondsSince1970: $0) },
            finishedAt: d.finishedAt.map { Date(millisecondsSince1970: $0) },
            heartbeatAt: d.heartbeatAt.map { Date(millisecondsSince1970: $0) },
            filter: d.filter.filter,
            parameters: d.parameters.parameters,
            counts: counts,
            message: d.message
        )
    }
}

extension DeadLetterInstance {
    /// The stored document.
    package func document() throws -> String {
        let document = InstanceDocument(
            id: self.id,
            host: self.host,
            pid: self.pid,
            version: self.version,
            sources: self.sources,
            startedAt: self.startedAt.millisecondsSince1970,
            lastSeenAt: self.lastSeenAt.millisecondsSince1970
        )
        return String(decoding: try JSONEncoder().encode(document), as: UTF8.self)
    }

    /// An instance read from its stored document.
    package init(document: String) throws {
        let d: InstanceDocument
        do {
            d = try JSONDecoder().decode(InstanceDocument.self, from: Data(document.utf8))
        } catch {
            throw DeadLetterError(code: .invalidFormat, message: "a stored instance is not readable: \(error)")
        }
        self.init(
            id: d.id,
            host: d.host,
            pid: d.pid,
            version: d.version,
            sources: d.sources,
            startedAt: Date(millisecondsSince1970: d.startedAt),
            lastSeenAt: Date(millisecondsSince1970: d.lastSeenAt)
        )
    }
}

private struct OperationDocument: Codable {
    var v: Int
    var id: String
    var kind: String
    var state: String
    var actor: String
    var createdAt: Int64
    var startedAt: Int64?
    var finishedAt: Int64?
    var heartbeatAt: Int64?
    var filter: FilterDocument
    var parameters: ParametersDocument
    var message: String?
}

private struct FilterDocument: Codable {
    var ids: [String]?
    var sources: [String]?
    var reasons: [String]?
    var errorTypes: [String]?
    var fingerprints: [String]?
    var statuses: [String]?
    var since: Int64?
    var until: Int64?
    var minAttempts: Int?
    var search: String?
    var expiresBefore: Int64?

    init(_ f: DeadLetterFilter) {
        func list(_ values: [String]) -> [String]? { values.isEmpty ? nil : values }
        self.ids = list(f.ids)
        self.sources = list(f.sources)
        self.reasons = list(f.reasons)
        self.errorTypes = list(f.errorTypes)
        self.fingerprints = list(f.fingerprints)
        self.statuses = list(f.statuses.map(\.rawValue))
        self.since = f.since?.millisecondsSince1970
        self.until = f.until?.millisecondsSince1970
        self.minAttempts = f.minAttempts
        self.search = f.search
        self.expiresBefore = f.expiresBefore?.millisecondsSince1970
    }

    var filter: DeadLetterFilter {
        DeadLetterFilter(
            ids: self.ids ?? [],
            sources: self.sources ?? [],
            reasons: self.reasons ?? [],
            errorTypes: self.errorTypes ?? [],
            fingerprints: self.fingerprints ?? [],
            statuses: (self.statuses ?? []).compactMap(DeadLetterStatus.init(rawValue:)),
            since: self.since.map { Date(millisecondsSince1970: $0) },
            until: self.until.map { Date(millisecondsSince1970: $0) },
            minAttempts: self.minAttempts,
            search: self.search,
            expiresBefore: self.expiresBefore.map { Date(millisecondsSince1970: $0) }
        )
    }
}

private struct ParametersDocument: Codable {
    var limit: Int?
    var rate: Double?
    var concurrency: Int?
    var maxFailures: Int?
    var command: String?
    var leaseMilliseconds: Int64?
    var canary: Int?
    var keepOnSuccess: Bool?

    init(_ p: DeadLetterOperation.Parameters) {
        self.limit = p.limit
        self.rate = p.rate
        self.concurrency = p.concurrency
        self.maxFailures = p.maxFailures
        self.command = p.command
        self.leaseMilliseconds = p.lease.map {
            $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000
        }
        self.canary = p.canary
        self.keepOnSuccess = p.keepOnSuccess
    }

    var parameters: DeadLetterOperation.Parameters {
        DeadLetterOperation.Parameters(
            limit: self.limit,
            rate: self.rate,
            concurrency: self.concurrency,
            maxFailures: self.maxFailures,
            command: self.command,
            lease: self.leaseMilliseconds.map { .milliseconds($0) },
            canary: self.canary,
            keepOnSuccess: self.keepOnSuccess
        )
    }
}

private struct InstanceDocument: Codable {
    var id: String
    var host: String
    var pid: Int
    var version: String
    var sources: [String]
    var startedAt: Int64
    var lastSeenAt: Int64
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
        w.raw("[")
        for (index, operation) in operations.enumerated() {
            if index > 0 { w.raw(",") }
            w.operation(operation, now: now)
        }
        w.raw("]")
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
    mutating func stringOrNull(_ value: String?) {
        if let value { self.string(value) } else { self.raw("null") }
    }

    mutating func strings(_ values: [String]) {
        self.raw("[")
        for (index, value) in values.enumerated() {
            if index > 0 { self.raw(",") }
            self.string(value)
        }
        self.raw("]")
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

    /// The filter's fields that narrow the selection, as the API's filter objects name them.
    mutating func filter(_ f: DeadLetterFilter) {
        var first = true
        func key(_ name: StaticString) {
            self.raw(first ? "{" : ",")
            first = false
            self.raw("\"")
            self.raw(name)
            self.raw("\":")
        }
        if !f.ids.isEmpty {
            key("ids")
            self.strings(f.ids)
        }
        if !f.sources.isEmpty {
            key("sources")
            self.strings(f.sources)
        }
        if !f.reasons.isEmpty {
            key("reasons")
            self.strings(f.reasons)
        }
        if !f.errorTypes.isEmpty {
            key("errorTypes")
            self.strings(f.errorTypes)
        }
        if !f.fingerprints.isEmpty {
            key("fingerprints")
            self.strings(f.fingerprints)
        }
        if !f.statuses.isEmpty {
            key("statuses")
            self.strings(f.statuses.map(\.rawValue))
        }
        if let since = f.since {
            key("since")
            self.timestamp(since)
        }
        if let until = f.until {
            key("until")
            self.timestamp(until)
        }
        if let min = f.minAttempts {
            key("minAttempts")
            self.int(min)
        }
        if let search = f.search {
            key("search")
            self.string(search)
        }
        if let before = f.expiresBefore {
            key("expiresBefore")
            self.timestamp(before)
        }
        self.raw(first ? "{}" : "}")
    }

    mutating func parameters(_ p: DeadLetterOperation.Parameters) {
        var first = true
        func key(_ name: StaticString) {
            self.raw(first ? "{" : ",")
            first = false
            self.raw("\"")
            self.raw(name)
            self.raw("\":")
        }
        if let limit = p.limit {
            key("limit")
            self.int(limit)
        }
        if let rate = p.rate {
            key("rate")
            self.buffer.append(contentsOf: DeadLetterJSON.number(rate).utf8)
        }
        if let concurrency = p.concurrency {
            key("concurrency")
            self.int(concurrency)
        }
        if let max = p.maxFailures {
            key("maxFailures")
            self.int(max)
        }
        if let command = p.command {
            key("command")
            self.string(command)
        }
        if let lease = p.lease {
            key("leaseSeconds")
            self.buffer.append(contentsOf: DeadLetterJSON.number(Double(lease.components.seconds)).utf8)
        }
        if let canary = p.canary {
            key("canary")
            self.int(canary)
        }
        if let keep = p.keepOnSuccess {
            key("keepOnSuccess")
            if keep { self.raw("true") } else { self.raw("false") }
        }
        self.raw(first ? "{}" : "}")
    }
}
