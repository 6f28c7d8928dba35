import DeadLetters
import HTTPTypes
import Hummingbird

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The dashboard's actions (a confirmation page, then a POSTed form) and its sign-in.
extension DeadLetterAdminRoutes {
    enum Action: String {
        case redrive, park, purge, delete

        var verb: String {
            switch self {
            case .redrive: "Redrive"
            case .park: "Park"
            case .purge: "Purge"
            case .delete: "Delete"
            }
        }
    }

    /// The filter of an action's parameters: the filter names plus `id` (repeated) for single letters.
    func actionFilter(_ items: FormItems) throws -> (filter: DeadLetterFilter, items: FormItems) {
        let kept = FormItems(
            items.items.filter { ($0.name == "id" || AdminFilter.isFilterName($0.name)) && !$0.value.isEmpty }
        )
        var filter = try AdminFilter.parse(kept, now: self.clock.now())
        filter.ids = kept.all("id")
        if filter.ids.count > AdminFilter.maximumValueCount {
            throw DeadLetterAdminError.invalidParameter("id", "more than \(AdminFilter.maximumValueCount) values")
        }
        for id in filter.ids {
            if let problem = DeadLetter.idProblem(id) { throw DeadLetterAdminError.invalidParameter("id", problem) }
        }
        return (filter, kept)
    }

    func action(_ name: String?) throws -> Action {
        guard let name, let action = Action(rawValue: name) else {
            throw DeadLetterAdminError.invalidParameter("action", "must be redrive, park, purge or delete")
        }
        return action
    }

    /// "Redrive 42 letters?" with the count the action would change, and a form that does it.
    func confirm(_ request: Request) async throws -> Response {
        let query = try FormItems(encoded: request.uri.query)
        let action = try self.action(query.last("action"))
        let (filter, items) = try self.actionFilter(query)
        let count: Int
        switch action {
        case .redrive: count = try await self.queue.redrive(filter, dryRun: true)
        case .park: count = try await self.queue.park(filter, dryRun: true)
        case .purge: count = try await self.queue.purge(filter, dryRun: true)
        case .delete:
            guard !filter.ids.isEmpty else { throw DeadLetterAdminError.invalidParameter("id", "delete needs an id") }
            count = try await self.queue.count(DeadLetterFilter(ids: filter.ids))
        }
        let letters = count == 1 ? "1 letter" : "\(DashboardViews.count(count)) letters"
        let all = action == .purge && filter.isEmpty
        var values = self.pageValues("\(action.verb) \(letters)?", "Letters")
        values["question"] = all ? "Purge ALL \(letters)?" : "\(action.verb) \(letters)?"
        values["count"] = count
        values["none"] = count == 0
        values["verb"] = action.verb
        values["danger"] = action == .purge || action == .delete
        values["all"] = all
        values["explanation"] =
            switch action {
            case .redrive:
                "They become due now (status retrying), or one after another at the rate given, and the running "
                    + "service retries them; the redrive is recorded as an operation to follow and cancel. Parked "
                    + "letters are left alone unless the filter selects the parked status (they are then unparked). "
                    + "Each letter's history records the redrive and who did it."
            case .park:
                "They stop being retried and are kept: the running service, redrives and replays leave them "
                    + "alone until they are redriven with the parked status. Each letter's history records it."
            case .purge:
                all
                    ? "This removes every letter in the store. Letters go to the configured archive, if any."
                    : "This removes the letters that match the filter. Letters go to the configured archive, if any."
            case .delete: "This removes the letter for good."
            }
        if action == .redrive, count > 0 {
            // Said before the operator confirms: letters of a source no running service handles only wait.
            let unhandled = await self.unhandledSources(try await self.redriveSources(filter))
            if !unhandled.isEmpty { values["warning"] = Self.unhandledWarning(unhandled) }
            values["rateField"] = true
        }
        values["criteria"] = items.items.map { ["name": $0.name, "value": $0.value] }
        values["hasCriteria"] = !items.items.isEmpty
        values["hidden"] = items.items.map { ["name": $0.name, "value": $0.value] }
        values["actionURL"] = self.views.link("/actions/\(action.rawValue)")
        let ids = filter.ids
        values["cancelLink"] =
            ids.count == 1
            ? self.views.link("/letters/\(FormItems.encode(ids[0]))")
            : self.views.link("/letters?\(items.removing(["id"]).encoded)")
        return try self.views.page("confirm", values)
    }

    /// Does a confirmed action and sends the browser to the list with what was done.
    func act(_ request: Request, action name: String, actor: String) async throws -> Response {
        let action = try self.action(name)
        let form = try await self.form(request)
        let (filter, _) = try self.actionFilter(form)
        let count: Int
        switch action {
        case .redrive:
            let redrive = try await self.queue.startRedrive(filter, rate: try Self.rate(form), actor: actor)
            // The operator lands on the operation: how far it got, what failed again, a Cancel button.
            if let operation = redrive.operation {
                return Self.redirect(
                    self.views.link(
                        "/operations/\(FormItems.encode(operation.id))?done=redrive&count=\(redrive.redriven)"
                    )
                )
            }
            count = redrive.redriven
        case .park:
            count = try await self.queue.park(filter, actor: actor)
        case .purge:
            if filter.isEmpty, form.last("all") != "1" {
                throw DeadLetterAdminError.badRequest("purge needs a filter, or all=1", code: "filterRequired")
            }
            count = try await self.queue.purge(filter, actor: actor)
        case .delete:
            guard !filter.ids.isEmpty else { throw DeadLetterAdminError.invalidParameter("id", "delete needs an id") }
            count = try await self.queue.delete(ids: filter.ids, actor: actor)
        }
        return Self.redirect(self.views.link("/letters?done=\(action.rawValue)&count=\(count)"))
    }

    /// The confirmation form's `rate` (letters per second), `nil` when left empty.
    /// - Throws: ``DeadLetterAdminError`` 400 when it is not a number above 0.
    static func rate(_ form: FormItems) throws -> Double? {
        guard let raw = form.last("rate") else { return nil }
        let text = String(raw.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
        guard !text.isEmpty else { return nil }
        guard text.utf8.count <= 20, let rate = Double(text), rate > 0, rate.isFinite else {
            throw DeadLetterAdminError.invalidParameter("rate", "must be a number of letters per second, above 0")
        }
        return rate
    }

    /// A dashboard form: `application/x-www-form-urlencoded`, within the size limit, with the form token.
    func form(_ request: Request) async throws -> FormItems {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/x-www-form-urlencoded") else {
            throw DeadLetterAdminError(
                status: .unsupportedMediaType,
                code: "unsupportedMediaType",
                message: "send the form as application/x-www-form-urlencoded"
            )
        }
        let body = try await self.body(of: request)
        let form = try FormItems(encoded: String(buffer: body), what: "form")
        guard let token = form.last("csrf"),
            AdminSecurityMiddleware<BasicRequestContext>.constantTimeEqual(
                token,
                self.formToken
            )
        else {
            throw DeadLetterAdminError.forbidden("the form is out of date or from another site; reload the page")
        }
        return form
    }

    static func redirect(_ location: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }

    // MARK: Sign-in

    func signInPage(_ request: Request, failed: Bool = false) throws -> Response {
        guard self.configuration.token != nil else { return Self.redirect(self.views.link("/")) }
        let query = try FormItems(encoded: request.uri.query)
        var values = self.pageValues("Sign in", "SignIn")
        values["signedIn"] = false
        values["next"] = self.safeNext(query.last("next"))
        values["failed"] = failed
        return try self.views.page("signin", values, status: failed ? .unauthorized : .ok)
    }

    func signIn(_ request: Request) async throws -> Response {
        guard let token = self.configuration.token else { return Self.redirect(self.views.link("/")) }
        let form = try await self.form(request)
        let given = form.last("token") ?? ""
        guard AdminSecurityMiddleware<BasicRequestContext>.constantTimeEqual(given, token) else {
            var values = self.pageValues("Sign in", "SignIn")
            values["signedIn"] = false
            values["next"] = self.safeNext(form.last("next"))
            values["failed"] = true
            return try self.views.page("signin", values, status: .unauthorized)
        }
        let session = self.sessions.start(now: self.clock.now())
        let maxAge = Int(self.configuration.sessionDuration.components.seconds)
        let cookie =
            "\(SessionStore.cookieName)=\(session); Path=\(self.mountPath); Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
        return Self.redirect(self.safeNext(form.last("next")), headers: [.setCookie: cookie])
    }

    func signOut(_ request: Request) async throws -> Response {
        _ = try await self.form(request)
        if let session = request.cookies[SessionStore.cookieName]?.value { self.sessions.end(session) }
        let cookie = "\(SessionStore.cookieName)=; Path=\(self.mountPath); Max-Age=0; HttpOnly; SameSite=Strict"
        return Self.redirect(self.views.link("/signin"), headers: [.setCookie: cookie])
    }

    /// Where to go after signing in: a path of the dashboard, never another site.
    func safeNext(_ next: String?) -> String {
        let home = self.views.link("/")
        guard let next, next.hasPrefix(self.configuration.basePath + "/"), !next.hasPrefix("//"),
            !next.contains("\\"), !next.unicodeScalars.contains(where: { $0.value < 0x21 })
        else { return home }
        return next
    }
}
