import DeadLetters
import Hummingbird

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The API of operations (redrives, replays, purges, parks, edits, deletes as records) and of the instances
/// that listen for redriven letters.
extension DeadLetterAdminRoutes {
    /// How many letters that failed again an operation's answer (and page) holds.
    static let operationLetterLimit = 100

    func addOperationRoutes<Context: RequestContext>(to routes: RouteCollection<Context>) {
        routes.get("api/v1/operations") { request, _ in try await self.listOperations(request) }
        self.refuseOtherMethods("api/v1/operations", allowed: [.get], on: routes)
        routes.get("api/v1/operations/:id") { _, context in try await self.showOperation(Self.pathID(context)) }
        self.refuseOtherMethods("api/v1/operations/:id", allowed: [.get], on: routes)
        routes.post("api/v1/operations/:id/cancel") { _, context in
            let operation = try await self.cancel(Self.pathID(context), actor: self.actor(context))
            return Self.json(Array((self.operationJSON(operation) + "\n").utf8))
        }
        self.refuseOtherMethods("api/v1/operations/:id/cancel", allowed: [.post], on: routes)
        routes.get("api/v1/instances") { _, _ in try await self.listInstances() }
        self.refuseOtherMethods("api/v1/instances", allowed: [.get], on: routes)
    }

    /// `GET /api/v1/operations?state=S&limit=N&before=ID`: operations, newest first.
    func listOperations(_ request: Request) async throws -> Response {
        let query = try self.query(request, allowing: ["state", "limit", "before"])
        let states = try query.all("state").filter { !$0.isEmpty }.map(Self.operationState)
        let limit = try self.limit(query, default: 100)
        let before = query.last("before").flatMap { $0.isEmpty ? nil : $0 }
        if let before, let problem = DeadLetter.idProblem(before) {
            throw DeadLetterAdminError.invalidParameter("before", problem)
        }
        let operations = try await self.queue.operations(states: states, before: before, limit: limit)
        let json = DeadLetterJSON.operations(operations, now: self.clock.now(), escapingHTML: true)
        return Self.json(Array((json + "\n").utf8))
    }

    /// `GET /api/v1/operations/{id}`: the operation and its letters that failed again (or were parked), with
    /// their new errors, the first ``operationLetterLimit``.
    func showOperation(_ id: String) async throws -> Response {
        let operation = try await self.operation(id)
        let letters = try await self.queue.operationLetters(
            id: operation.id,
            outcomes: [.failed, .parked],
            limit: Self.operationLetterLimit
        )
        var json = self.operationJSON(operation)
        // The operation's object with one more key.
        json.removeLast()
        json += #","letters":["#
        json += letters.map { DeadLetterJSON.operationLetter($0, escapingHTML: true) }.joined(separator: ",")
        json += "]}\n"
        return Self.json(Array(json.utf8))
    }

    /// `GET /api/v1/instances`: the service instances whose queues run, by id.
    func listInstances() async throws -> Response {
        let instances = try await self.queue.instances()
        let json = "[" + instances.map { DeadLetterJSON.instance($0, escapingHTML: true) }.joined(separator: ",") + "]"
        return Self.json(Array((json + "\n").utf8))
    }

    // MARK: Shared with the dashboard

    /// The operation with `id`.
    /// - Throws: ``DeadLetterAdminError`` 404 when there is none.
    func operation(_ id: String) async throws -> DeadLetterOperation {
        guard let operation = try await self.queue.operation(id: id) else {
            throw DeadLetterAdminError.notFound("no operation has the id '\(Self.shortened(id))'")
        }
        return operation
    }

    /// Cancels the operation with `id` in `actor`'s name.
    /// - Throws: ``DeadLetterAdminError`` 404 for an unknown id, 409 `operationOver` when it is over already.
    func cancel(_ id: String, actor: String) async throws -> DeadLetterOperation {
        do {
            return try await self.queue.cancelOperation(id: id, actor: actor)
        } catch let error as DeadLetterError where error.code == .notFound {
            throw DeadLetterAdminError.notFound("no operation has the id '\(Self.shortened(id))'")
        } catch let error as DeadLetterError where error.code == .invalidConfiguration {
            throw DeadLetterAdminError(status: .conflict, code: "operationOver", message: error.message)
        }
    }

    /// An operation as the API writes it, escaped for HTML too.
    func operationJSON(_ operation: DeadLetterOperation) -> String {
        DeadLetterJSON.operation(operation, now: self.clock.now(), escapingHTML: true)
    }

    /// The `warnings` of a redrive of letters of `sources`: one per source no live instance handles (none
    /// when the store keeps no instances, or cannot be read: the redrive itself is done).
    func redriveWarnings(_ sources: [String]) async -> [String] {
        (await self.unhandledSources(sources)).map {
            "no running service handles source '\($0)'; its letters wait until one does"
        }
    }

    /// The sources among `sources` that no live instance handles; none when the store keeps no instances
    /// or cannot be read.
    func unhandledSources(_ sources: [String]) async -> [String] {
        guard !sources.isEmpty else { return [] }
        return (try? await self.queue.unhandledSources(sources)) ?? []
    }

    /// The sources of the letters a redrive of `filter` selects now (parked letters only when it selects
    /// them, as the redrive does).
    func redriveSources(_ filter: DeadLetterFilter) async throws -> [String] {
        var filter = filter
        if filter.statuses.isEmpty { filter.statuses = [.dead, .retrying] }
        return try await self.queue.summary(filter).bySource.filter { $0.value > 0 }.keys.sorted()
    }

    /// `{"matched":N,"operation":{…}|null,"warnings":[…]}`.
    func actionAnswer(matched: Int, operation: DeadLetterOperation?, warnings: [String]) -> Response {
        var json = #"{"matched":\#(matched),"operation":"#
        json += operation.map(self.operationJSON) ?? "null"
        json += #","warnings":["# + warnings.map(JSONText.string).joined(separator: ",") + "]}\n"
        return Self.json(Array(json.utf8))
    }

    static func operationState(_ text: String) throws -> DeadLetterOperation.State {
        guard let state = DeadLetterOperation.State.all.first(where: { $0.rawValue == text }) else {
            throw DeadLetterAdminError.invalidParameter(
                "state",
                "must be one of \(DeadLetterOperation.State.all.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return state
    }
}
