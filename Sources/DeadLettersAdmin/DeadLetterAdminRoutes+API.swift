import DeadLetters
import HTTPTypes
import Hummingbird
import Prometheus

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterAdminRoutes {
    /// The largest `limit` of a page or of the groups.
    static let maximumLimit = 1000

    func addAPIRoutes<Context: RequestContext>(to routes: RouteCollection<Context>) {
        routes.get("api/v1/dead-letters") { request, _ in try await self.list(request) }
        self.refuseOtherMethods("api/v1/dead-letters", allowed: [.get], on: routes)
        routes.get("api/v1/dead-letters/:id") { _, context in try await self.show(Self.pathID(context)) }
        routes.delete("api/v1/dead-letters/:id") { _, context in
            try await self.delete(Self.pathID(context), actor: self.actor(context))
        }
        self.refuseOtherMethods("api/v1/dead-letters/:id", allowed: [.get, .delete], on: routes)
        routes.post("api/v1/redrive") { request, context in try await self.redrive(request, actor: self.actor(context))
        }
        self.refuseOtherMethods("api/v1/redrive", allowed: [.post], on: routes)
        routes.post("api/v1/park") { request, context in try await self.park(request, actor: self.actor(context)) }
        self.refuseOtherMethods("api/v1/park", allowed: [.post], on: routes)
        routes.post("api/v1/purge") { request, context in try await self.purge(request, actor: self.actor(context)) }
        self.refuseOtherMethods("api/v1/purge", allowed: [.post], on: routes)
        routes.get("api/v1/stats") { request, _ in try await self.stats(request) }
        self.refuseOtherMethods("api/v1/stats", allowed: [.get], on: routes)
        routes.get("api/v1/timeline") { request, _ in try await self.timeline(request) }
        self.refuseOtherMethods("api/v1/timeline", allowed: [.get], on: routes)
        routes.get("api/v1/groups") { request, _ in try await self.groups(request) }
        self.refuseOtherMethods("api/v1/groups", allowed: [.get], on: routes)
        routes.get("metrics") { _, _ in try await self.metrics() }
        self.refuseOtherMethods("metrics", allowed: [.get], on: routes)
        routes.get("healthz") { _, _ in await self.health() }
        self.refuseOtherMethods("healthz", allowed: [.get], on: routes)
        self.addOperationRoutes(to: routes)
    }

    // MARK: Handlers

    func list(_ request: Request) async throws -> Response {
        let query = try self.query(request, allowing: AdminFilter.names + ["meta", "sort", "limit", "cursor"])
        let filter = try AdminFilter.parse(query, now: self.clock.now())
        let limit = try self.limit(query, default: self.configuration.defaultPageSize)
        let cursor = try query.last("cursor").flatMap { try AdminCursor.decode($0) }
        let sort = try AdminSort.parse(query)
        let page = try await self.queue.letters(filter, sortedBy: sort, after: cursor, limit: limit)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(page.letters.count * 512 + 64)
        bytes += Array(#"{"items":["#.utf8)
        for (index, letter) in page.letters.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.encode(letter, into: &bytes)
        }
        bytes += Array(#"],"nextCursor":"#.utf8)
        bytes += Array(JSONText.stringOrNull(page.nextCursor.map(AdminCursor.encode)).utf8)
        bytes += Array("}\n".utf8)
        return Self.json(bytes)
    }

    func show(_ id: String) async throws -> Response {
        guard let letter = try await self.queue.letter(id: id) else {
            throw DeadLetterAdminError.notFound("no dead letter has the id '\(Self.shortened(id))'")
        }
        var bytes: [UInt8] = []
        Self.encode(letter, into: &bytes)
        bytes.append(UInt8(ascii: "\n"))
        return Self.json(bytes)
    }

    /// A letter as the API answers it: the stored format; for a viewer, with an empty payload and
    /// `"payloadHidden":true` (reading payloads needs the operator role).
    static func encode(_ letter: DeadLetter, into bytes: inout [UInt8]) {
        guard AdminIdentity.current?.role == .viewer else { return DeadLetterJSON.encode(letter, into: &bytes) }
        var hidden = letter
        hidden.payload = Data()
        var object = DeadLetterJSON.encode(hidden)
        if object.last == UInt8(ascii: "}") {
            object.removeLast()
            object += Array(#","payloadHidden":true}"#.utf8)
        }
        bytes += object
    }

    func delete(_ id: String, actor: String) async throws -> Response {
        guard try await self.queue.delete(ids: [id], actor: actor) > 0 else {
            throw DeadLetterAdminError.notFound("no dead letter has the id '\(Self.shortened(id))'")
        }
        return Self.json(Array(#"{"deleted":1}"#.utf8) + [UInt8(ascii: "\n")])
    }

    /// `POST /api/v1/redrive`: hands the letters the filter selects back to the running services, at `rate`
    /// letters per second when given; answers how many, the operation recorded (`null` for a dry run) and a
    /// warning per source of those letters that no live instance handles.
    func redrive(_ request: Request, actor: String) async throws -> Response {
        let body = try await self.actionBody(request, allowing: ["filter", "dryRun", "limit", "rate"])
        if body.dryRun {
            let matched = try await self.queue.redrive(body.filter, limit: body.limit, dryRun: true, actor: actor)
            var warnings: [String] = []
            if matched > 0 { warnings = await self.redriveWarnings(try await self.redriveSources(body.filter)) }
            return self.actionAnswer(matched: matched, operation: nil, warnings: warnings)
        }
        let redrive = try await self.queue.startRedrive(body.filter, limit: body.limit, rate: body.rate, actor: actor)
        return self.actionAnswer(
            matched: redrive.redriven,
            operation: redrive.operation,
            warnings: await self.redriveWarnings(redrive.sources)
        )
    }

    /// `POST /api/v1/park`: parks the letters the filter selects (a filter, or `"all":true`).
    func park(_ request: Request, actor: String) async throws -> Response {
        let body = try await self.actionBody(request, allowing: ["filter", "dryRun", "limit", "all"])
        try Self.requireScope(body, "park", "to park every letter")
        let id = self.queue.newOperationID()
        let matched = try await self.queue.park(
            body.filter,
            limit: body.limit,
            dryRun: body.dryRun,
            actor: actor,
            operation: id
        )
        let operation = body.dryRun ? nil : try? await self.queue.operation(id: id)
        return self.actionAnswer(matched: matched, operation: operation, warnings: [])
    }

    /// An action on many letters names them: a filter, or `"all":true` for every letter, never both (which one
    /// was meant?).
    /// - Throws: ``DeadLetterAdminError`` 400 `filterRequired` without either, `invalidBody` with both.
    private static func requireScope(_ body: ActionBody, _ verb: String, _ everyLetter: String) throws {
        if body.filter.isEmpty, !body.all {
            throw DeadLetterAdminError.badRequest(
                "\(verb) needs a filter, or \"all\":true \(everyLetter)",
                code: "filterRequired"
            )
        }
        if !body.filter.isEmpty, body.all {
            throw DeadLetterAdminError.badRequest(
                "\"all\":true selects every letter and cannot be combined with a filter",
                code: "invalidBody"
            )
        }
    }

    /// `POST /api/v1/purge`: removes the letters the filter selects (a filter, or `"all":true`).
    func purge(_ request: Request, actor: String) async throws -> Response {
        let body = try await self.actionBody(request, allowing: ["filter", "dryRun", "limit", "all"])
        try Self.requireScope(body, "purge", "to remove every letter")
        let id = self.queue.newOperationID()
        let matched = try await self.queue.purge(
            body.filter,
            limit: body.limit,
            dryRun: body.dryRun,
            actor: actor,
            operation: id
        )
        let operation = body.dryRun ? nil : try? await self.queue.operation(id: id)
        return self.actionAnswer(matched: matched, operation: operation, warnings: [])
    }

    func stats(_ request: Request) async throws -> Response {
        let query = try self.query(request, allowing: AdminFilter.names + ["meta"])
        let filter = try AdminFilter.parse(query, now: self.clock.now())
        let summary = try await self.queue.summary(filter)
        return Self.json(Array((AdminJSON.summary(summary) + "\n").utf8))
    }

    /// `GET /api/v1/timeline?since=24h&bucket=1h` and the filters but `since` (here the window's length):
    /// failures over time.
    func timeline(_ request: Request) async throws -> Response {
        let query = try self.query(request, allowing: AdminFilter.names + ["bucket"])
        var rest = query
        rest.items.removeAll { $0.name == "since" || $0.name == "bucket" }
        let filter = try AdminFilter.parse(rest, now: self.clock.now())
        let timeline = try await self.timeline(
            filter,
            since: query.last("since").flatMap { $0.isEmpty ? nil : $0 } ?? "24h",
            bucket: query.last("bucket").flatMap { $0.isEmpty ? nil : $0 }
        )
        return Self.json(Array((DeadLetterJSON.timeline(timeline, escapingHTML: true) + "\n").utf8))
    }

    /// The timeline of `filter` over `since` in buckets of `bucket`, or a 400 naming the wrong parameter.
    func timeline(_ filter: DeadLetterFilter, since: String, bucket: String?) async throws -> DeadLetterTimeline {
        let span: (bucket: Duration, count: Int)
        do {
            span = try DeadLetterTimeline.span(since: since, bucket: bucket)
        } catch let error as DeadLetterError {
            throw DeadLetterAdminError.invalidParameter(
                error.message.contains("bucket") ? "bucket" : "since",
                error.message
            )
        }
        return try await self.queue.timeline(filter, bucket: span.bucket, count: span.count)
    }

    func groups(_ request: Request) async throws -> Response {
        let query = try self.query(request, allowing: AdminFilter.names + ["meta", "limit"])
        let filter = try AdminFilter.parse(query, now: self.clock.now())
        let limit = try self.limit(query, default: 100)
        let groups = try await self.queue.groups(filter, limit: limit)
        return Self.json(Array((AdminJSON.groups(groups) + "\n").utf8))
    }

    func metrics() async throws -> Response {
        guard let registry = self.registry else {
            throw DeadLetterAdminError.notFound("metrics are not configured: pass a PrometheusCollectorRegistry")
        }
        // Answers whatever the store does: its state as a gauge, and the queue's gauges only when it answers
        // in time (else the last values stay).
        let up = await self.storeAnswers()
        let descriptor = MetricNameDescriptor(
            namespace: "dlq",
            metricName: "store",
            unitName: "up",
            helpText: "1 when the store answers, 0 when it does not"
        )
        registry.makeGauge(descriptor: descriptor).set(to: up ? 1.0 : 0.0)
        if up {
            let queue = self.queue
            _ = await AdminDeadline.race(self.configuration.healthTimeout) { await queue.updateGauges() }
        }
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    func health() async -> Response {
        guard let problem = await self.storeProblem() else {
            return Self.json(Array(#"{"status":"ok"}"#.utf8) + [UInt8(ascii: "\n")])
        }
        // /healthz needs no token: the reason is given only when no route needs one either.
        var body = #"{"status":"unavailable""#
        if !self.configuration.hasTokens { body += #","reason":"# + JSONText.string(problem) }
        return Self.json(Array((body + "}\n").utf8), status: .serviceUnavailable)
    }

    /// Whether the store answers a read of one letter within ``Configuration/healthTimeout``; never waits longer.
    func storeAnswers() async -> Bool {
        await self.storeProblem() == nil
    }

    /// Why the store does not answer a read of one letter within ``Configuration/healthTimeout`` (the store's
    /// own message, or that it did not answer in time), or `nil` when it does; never waits longer.
    func storeProblem() async -> String? {
        let queue = self.queue
        // Without payloads: a letter sealed with a key this server lacks does not make it look down.
        let result = await AdminDeadline.race(self.configuration.healthTimeout) {
            _ = try await queue.letters(limit: 1, includingPayloads: false)
        }
        switch result {
        case .success: return nil
        case .failure(let error as DeadLetterError): return error.message
        case .failure: return "the store failed"
        case nil: return "the store did not answer within \(self.configuration.healthTimeout)"
        }
    }

    // MARK: Reading requests

    /// The letter id of the path's `:id` segment, percent-decoded as a path is (`%20` is a space, `%2F` a
    /// slash, `+` itself): ids that arrive by import may hold any character but a control character.
    /// - Throws: ``DeadLetterAdminError`` 400 `invalidParameter` when the segment is not valid percent-encoded
    ///   UTF-8 or the id holds a control character.
    static func pathID(_ context: some RequestContext) throws -> String {
        let raw = context.parameters.get("id") ?? ""
        guard let id = FormItems.decode(raw[...], plusIsSpace: false) else {
            throw DeadLetterAdminError.invalidParameter("id", "not valid URL encoding")
        }
        if let problem = DeadLetter.idProblem(id) { throw DeadLetterAdminError.invalidParameter("id", problem) }
        return id
    }

    /// The query parameters, refusing names not in `allowed` (a misspelt filter must not select everything).
    func query(_ request: Request, allowing allowed: [String]) throws -> FormItems {
        let query = try FormItems(encoded: request.uri.query)
        for name in query.names where !allowed.contains(name) {
            if allowed.contains("meta"), AdminFilter.isFilterName(name) { continue }
            throw DeadLetterAdminError.invalidParameter(
                Self.shortened(name),
                "unknown parameter; use \(allowed.joined(separator: ", "))"
            )
        }
        return query
    }

    func limit(_ query: FormItems, default value: Int) throws -> Int {
        guard let text = query.last("limit"), !text.isEmpty else { return value }
        guard text.utf8.count <= 9, let limit = Int(text), (1...Self.maximumLimit).contains(limit) else {
            throw DeadLetterAdminError.invalidParameter(
                "limit",
                "must be a whole number from 1 to \(Self.maximumLimit)"
            )
        }
        return limit
    }

    struct ActionBody {
        var filter = DeadLetterFilter()
        var dryRun = false
        var all = false
        var limit: Int?
        var rate: Double?
    }

    /// Reads `{"filter":{…},"dryRun":false,"limit":N,"all":false,"rate":R}`; an empty body is `{}`.
    ///
    /// The body must be sent as `application/json`, which a form of another site cannot send.
    func actionBody(_ request: Request, allowing allowed: [String]) async throws -> ActionBody {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/json") else {
            throw DeadLetterAdminError(
                status: .unsupportedMediaType,
                code: "unsupportedMediaType",
                message: "send the body as Content-Type: application/json"
            )
        }
        let bytes = try await self.body(of: request)
        var result = ActionBody()
        guard bytes.readableBytes > 0 else { return result }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes.readableBytesView))
        } catch {
            throw DeadLetterAdminError.badRequest("the request body is not valid JSON", code: "invalidJSON")
        }
        guard case .object(let object) = value else {
            throw DeadLetterAdminError.badRequest("the request body must be a JSON object", code: "invalidBody")
        }
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw DeadLetterAdminError.invalidField(
                Self.shortened(key),
                "unknown field; use \(allowed.joined(separator: ", "))"
            )
        }
        switch object["filter"] {
        case nil, .null: break
        case .object(let filter): result.filter = try AdminFilter.parse(json: filter, now: self.clock.now())
        case let other?: throw DeadLetterAdminError.invalidField("filter", "must be an object, not \(other.typeName)")
        }
        func flag(_ name: String) throws -> Bool {
            switch object[name] {
            case nil, .null: return false
            case .bool(let value): return value
            case let other?:
                throw DeadLetterAdminError.invalidField(name, "must be true or false, not \(other.typeName)")
            }
        }
        result.dryRun = try flag("dryRun")
        result.all = try flag("all")
        switch object["limit"] {
        case nil, .null: break
        case .number(let number) where number >= 1 && number <= 1e9 && number.rounded() == number:
            result.limit = Int(number)
        default: throw DeadLetterAdminError.invalidField("limit", "must be a whole number, 1 or more")
        }
        switch object["rate"] {
        case nil, .null: break
        case .number(let number) where number > 0 && number.isFinite: result.rate = number
        default: throw DeadLetterAdminError.invalidField("rate", "must be a number of letters per second, above 0")
        }
        return result
    }

    // MARK: Writing answers

    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// A user-given text cut to a length fit for an error message.
    static func shortened(_ text: String) -> String {
        let clean = String(
            String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
        )
        return clean.count > 80 ? String(clean.prefix(80)) + "…" : clean
    }
}

/// The API's page cursor: the last id of a page, base64url-encoded, so that it is opaque and checked.
enum AdminCursor {
    static func encode(_ id: String) -> String {
        String(
            Data(id.utf8).base64EncodedString().compactMap { character -> Character? in
                switch character {
                case "+": "-"
                case "/": "_"
                case "=": nil
                default: character
                }
            }
        )
    }

    /// The id in `cursor`.
    /// - Throws: ``DeadLetterAdminError`` 400 `invalidCursor` when it is not a cursor this API gave.
    static func decode(_ cursor: String) throws -> String? {
        if cursor.isEmpty { return nil }
        let invalid = DeadLetterAdminError.badRequest(
            "parameter 'cursor': not a cursor of this API; pass the nextCursor of the previous page",
            code: "invalidCursor"
        )
        guard cursor.utf8.count <= 1024,
            cursor.utf8.allSatisfy({ byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "_")
            })
        else { throw invalid }
        var base64 = String(cursor.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let id = String(data: data, encoding: .utf8), !id.isEmpty,
            !id.unicodeScalars.contains(where: { $0.value < 0x20 }), Self.encode(id) == cursor
        else { throw invalid }
        return id
    }
}
