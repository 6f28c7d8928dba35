import DeadLetters
import Hummingbird

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The dashboard's Operations page, an operation's page and its Cancel button.
extension DeadLetterAdminRoutes {
    /// How often an operation's page reloads itself while the operation runs, in seconds.
    static let operationRefreshSeconds = 10

    func addOperationPageRoutes<Context: RequestContext>(to routes: RouteCollection<Context>) {
        routes.get("operations") { request, _ in try await self.operationList(request) }
        routes.get("operations/:id") { request, context in
            try await self.operationDetail(Self.pathID(context), request: request)
        }
        routes.get("instances") { _, _ in try await self.instanceList() }
        routes.post("operations/:id/cancel") { request, context in
            let id = try Self.pathID(context)
            _ = try await self.form(request)
            _ = try await self.cancel(id, actor: self.actor(context))
            return Self.redirect(self.views.link("/operations/\(FormItems.encode(id))?done=cancel"))
        }
    }

    /// How many operations a page of the Operations page shows.
    static let operationPageSize = 100

    /// The Operations page: operations newest first, a page at a time (of one state with `state=`); the
    /// next page starts `before=` the last id of this one.
    func operationList(_ request: Request) async throws -> Response {
        let query = try FormItems(encoded: request.uri.query)
        let state = try query.last("state").flatMap { $0.isEmpty ? nil : try Self.operationState($0) }
        let before = query.last("before").flatMap { $0.isEmpty ? nil : $0 }
        if let before, let problem = DeadLetter.idProblem(before) {
            throw DeadLetterAdminError.invalidParameter("before", problem)
        }
        let offset = try Self.wholeNumber(query, "offset", in: 0...1_000_000_000) ?? 0
        let size = Self.operationPageSize
        // One more than a page, to know whether there is a next one.
        var operations = try await self.queue.operations(
            states: state.map { [$0] } ?? [],
            before: before,
            limit: size + 1
        )
        let more = operations.count > size
        if more { operations.removeLast() }
        var values = self.pageValues("Operations", "Operations")
        values["rows"] = operations.map(self.operationRow)
        values["filtered"] = state != nil
        let stateItem = state.map { "state=\($0.rawValue)&" } ?? ""
        if !operations.isEmpty {
            values["range"] =
                "\(DashboardViews.count(offset + 1))–\(DashboardViews.count(offset + operations.count))"
        }
        if more, let last = operations.last {
            values["nextLink"] = self.views.link(
                "/operations?\(stateItem)before=\(FormItems.encode(last.id))&offset=\(offset + operations.count)"
            )
        }
        if before != nil {
            values["firstLink"] = self.views.link("/operations" + (state.map { "?state=\($0.rawValue)" } ?? ""))
        }
        values["stateOptions"] = DeadLetterOperation.State.all.map { option -> [String: Any] in
            var row: [String: Any] = [
                "name": option.rawValue,
                "link": self.views.link("/operations?state=\(option.rawValue)"),
            ]
            if option == state { row["on"] = true }
            return row
        }
        return try self.views.page("operations", values)
    }

    /// The Instances page: the service instances whose queues run (as `GET /api/v1/instances` lists them),
    /// with the sources they handle and when each was last seen.
    func instanceList() async throws -> Response {
        let instances = try await self.queue.instances()
        let now = self.clock.now()
        var values = self.pageValues("Instances", "Instances")
        values["rows"] = instances.map { instance -> [String: Any] in
            [
                "id": instance.id,
                "host": instance.host,
                "pid": instance.pid,
                "version": instance.version,
                "sources": instance.sources.isEmpty ? "—" : instance.sources.joined(separator: ", "),
                "startedAt": DashboardViews.time(instance.startedAt),
                "lastSeenAt": DashboardViews.time(instance.lastSeenAt),
                "lastSeenAge": DashboardViews.age(now.timeIntervalSince(instance.lastSeenAt)),
            ]
        }
        values["count"] = instances.count
        return try self.views.page("instances", values)
    }

    /// One row of the Operations page.
    func operationRow(_ operation: DeadLetterOperation) -> [String: Any] {
        var row = self.operationValues(operation)
        row["link"] = self.views.link("/operations/\(FormItems.encode(operation.id))")
        return row
    }

    /// What both pages show of an operation; keys without a value are left out (a template section shows
    /// for an empty string too).
    func operationValues(_ operation: DeadLetterOperation) -> [String: Any] {
        let counts = operation.counts
        let done = counts.selected - counts.pending
        var values: [String: Any] = [
            "id": operation.id,
            "kind": operation.kind.rawValue,
            "state": operation.state.rawValue,
            "actor": operation.actor,
            "createdAt": DashboardViews.time(operation.createdAt),
            "startedAt": DashboardViews.time(operation.startedAt),
            "finishedAt": DashboardViews.time(operation.finishedAt),
            "selected": DashboardViews.count(counts.selected),
            "succeeded": DashboardViews.count(counts.succeeded),
            "failed": DashboardViews.count(counts.failed),
            "parked": DashboardViews.count(counts.parked),
            "pending": DashboardViews.count(counts.pending),
            "skipped": DashboardViews.count(counts.skipped),
            "done": DashboardViews.count(done),
            "percent": counts.selected == 0 ? 100 : Self.percent(done, counts.selected),
        ]
        values["message"] = operation.message
        return values
    }

    /// An operation's page: its parameters, filter and counts, the letters that failed again with their new
    /// errors, and a Cancel button while it can be cancelled; it reloads itself while the operation runs.
    func operationDetail(_ id: String, request: Request) async throws -> Response {
        let operation = try await self.operation(id)
        let query = try FormItems(encoded: request.uri.query)
        var values = self.pageValues("Operation \(operation.id)", "Operations")
        values["operation"] = self.operationValues(operation)
        let document = DeadLetterJSON.operation(operation, now: self.clock.now())
        let object: [String: JSONValue]
        if case .object(let fields) = try? JSONDecoder().decode(JSONValue.self, from: Data(document.utf8)) {
            object = fields
        } else {
            object = [:]
        }
        let filter = Self.facts(object["filter"])
        values["filter"] = filter
        values["hasFilter"] = !filter.isEmpty
        let parameters = Self.facts(object["parameters"])
        values["parameters"] = parameters
        values["hasParameters"] = !parameters.isEmpty
        let letters = try await self.queue.operationLetters(
            id: operation.id,
            outcomes: [.failed, .parked],
            limit: Self.operationLetterLimit
        )
        values["letters"] = letters.map { letter -> [String: Any] in
            var row: [String: Any] = [
                "id": letter.letterID,
                "link": self.views.link("/letters/\(FormItems.encode(letter.letterID))"),
                "outcome": letter.outcome.rawValue,
                "at": DashboardViews.time(letter.at),
            ]
            row["errorType"] = letter.errorType
            row["errorMessage"] = letter.errorMessage.map {
                $0.count > 300 ? String($0.prefix(300)) + "…" : $0
            }
            return row
        }
        values["hasLetters"] = !letters.isEmpty
        values["moreLetters"] = letters.count == Self.operationLetterLimit
        let cancellable =
            operation.state == .running || operation.state == .paused
            || operation.state == .interrupted
        if cancellable, self.may(.operator) {
            values["cancelURL"] = self.views.link("/operations/\(FormItems.encode(operation.id))/cancel")
        }
        if operation.state == .running {
            // Refreshed in place by the page's script while it runs; reloaded whole without JavaScript.
            values["live"] = Self.operationRefreshSeconds * 1000
            values["refresh"] = Self.operationRefreshSeconds
        }
        if operation.kind == .redrive, operation.state == .running, operation.counts.pending > 0 {
            let sources = try await self.pendingSources(operation)
            let unhandled = await self.unhandledSources(sources)
            if !unhandled.isEmpty { values["warning"] = Self.unhandledWarning(unhandled) }
        }
        if let notice = Self.notice(query) { values["notice"] = notice }
        if let back = self.safeBack(query.last("back")) {
            values["backLink"] = back
            let toLetter = back.hasPrefix(self.views.link("/letters/"))
            values["backLabel"] = toLetter ? "← Back to the letter" : "← Back to the letters"
        }
        return try self.views.page("operation", values)
    }

    /// The sources of the first letters of a redrive that have not run yet.
    func pendingSources(_ operation: DeadLetterOperation) async throws -> [String] {
        let pending = try await self.queue.operationLetters(id: operation.id, outcomes: [.pending], limit: 100)
        guard !pending.isEmpty else { return [] }
        let page = try await self.queue.letters(
            DeadLetterFilter(ids: pending.map(\.letterID)),
            limit: pending.count,
            includingPayloads: false
        )
        return Set(page.letters.map(\.source)).sorted()
    }

    /// "No running service handles orders: these letters will wait until one starts."
    static func unhandledWarning(_ sources: [String]) -> String {
        let names: String
        switch sources.count {
        case 1: names = sources[0]
        case 2: names = "\(sources[0]) or \(sources[1])"
        default: names = sources.dropLast().joined(separator: ", ") + " or " + sources[sources.count - 1]
        }
        return "No running service handles \(names): these letters will wait until one starts."
    }

    /// The fields of a JSON object as `name`/`value` rows, arrays joined with commas, in key order; `null`s
    /// and empty values left out.
    static func facts(_ value: JSONValue?) -> [[String: Any]] {
        guard case .object(let object)? = value else { return [] }
        func text(_ value: JSONValue) -> String {
            switch value {
            case .null: ""
            case .bool(let bool): bool ? "true" : "false"
            case .number(let number):
                number.rounded() == number && abs(number) < 1e15 ? "\(Int(number))" : "\(number)"
            case .string(let string): string
            case .array(let values): values.map(text).filter { !$0.isEmpty }.joined(separator: ", ")
            case .object(let fields):
                fields.keys.sorted().map { "\($0): \(text(fields[$0] ?? .null))" }.joined(separator: ", ")
            }
        }
        return object.keys.sorted().compactMap { key in
            let value = text(object[key] ?? .null)
            return value.isEmpty ? nil : ["name": key, "value": value]
        }
    }
}
