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

    /// The most letters a selection may tick: the largest page of the letter list.
    static let maximumSelection = 200
    /// The most pairs in the query of a confirmation page or an action's form: a whole selection and more.
    static let maximumActionItems = 2 * maximumSelection

    /// The filter of an action's parameters: the filter names plus `id` (repeated) for single letters.
    func actionFilter(_ items: FormItems) throws -> (filter: DeadLetterFilter, items: FormItems) {
        let kept = FormItems(
            items.items.filter { ($0.name == "id" || AdminFilter.isFilterName($0.name)) && !$0.value.isEmpty }
        )
        var filter = try AdminFilter.parse(kept, now: self.clock.now())
        filter.ids = kept.all("id")
        if filter.ids.count > Self.maximumSelection {
            throw DeadLetterAdminError.invalidParameter("id", "more than \(Self.maximumSelection) letters selected")
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
        let query = try FormItems(encoded: request.uri.query, maximumCount: Self.maximumActionItems)
        let action = try self.action(query.last("action"))
        var (filter, items) = try self.actionFilter(query)
        let back = self.safeBack(query.last("back"))
        let ids = filter.ids
        if query.last("selection") == "ids", action == .redrive, !ids.isEmpty, filter.statuses.isEmpty {
            // Letters ticked one by one are redriven whatever their status: parked ones are unparked, as a
            // row's "Unpark and redrive" does. The confirmation says so in its criteria, and its form sends it.
            filter.statuses = DeadLetterStatus.allCases
            items.items += DeadLetterStatus.allCases.map { ("status", $0.rawValue) }
        }
        if query.last("selection") == "ids", ids.isEmpty {
            // "Redrive selected" with nothing ticked: never the whole store.
            var values = self.pageValues("Nothing selected", "Letters")
            values["none"] = true
            values["noneTitle"] = "Nothing selected"
            values["noneText"] = "Tick the letters to \(action.rawValue) first, or select all that match the filter."
            values["cancelLink"] = back ?? self.views.link("/letters")
            return try self.views.page("confirm", values)
        }
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
            if !unhandled.isEmpty {
                values["warning"] = Self.unhandledWarning(unhandled)
                values["instancesLink"] = self.views.link("/instances")
            }
            values["rateField"] = true
        }
        // The criteria as the operator chose them; a selection of many letters as its count.
        var criteria = items.removing(["id"]).items.map { ["name": $0.name, "value": $0.value] }
        if ids.count == 1 {
            criteria.insert(["name": "id", "value": ids[0]], at: 0)
        } else if ids.count > 1 {
            criteria.insert(["name": "selected", "value": "\(ids.count) letters"], at: 0)
            values["selectedIDs"] = ids.map { ["id": $0, "link": self.views.link("/letters/\(FormItems.encode($0))")] }
            values["selectedCount"] = ids.count
        }
        values["criteria"] = criteria
        values["hasCriteria"] = !criteria.isEmpty
        var hidden = items.items.map { ["name": $0.name, "value": $0.value] }
        if let back { hidden.append(["name": "back", "value": back]) }
        values["hidden"] = hidden
        values["actionURL"] = self.views.link("/actions/\(action.rawValue)")
        values["cancelLink"] =
            back
            ?? (ids.count == 1
                ? self.views.link("/letters/\(FormItems.encode(ids[0]))")
                : self.views.link("/letters?\(items.removing(["id"]).encoded)"))
        return try self.views.page("confirm", values)
    }

    /// Does a confirmed action and sends the browser to the list with what was done.
    func act(_ request: Request, action name: String, actor: String) async throws -> Response {
        let action = try self.action(name)
        let form = try await self.form(request)
        let (filter, items) = try self.actionFilter(form)
        // Back to the view the action was started from; else the list with the action's filter.
        let filterView = items.removing(["id"])
        let back =
            self.safeBack(form.last("back"))
            ?? self.views.link(filterView.items.isEmpty ? "/letters" : "/letters?\(filterView.encoded)")
        let count: Int
        switch action {
        case .redrive:
            let redrive = try await self.queue.startRedrive(filter, rate: try Self.rate(form), actor: actor)
            // The operator lands on the operation: how far it got, what failed again, a Cancel button.
            if let operation = redrive.operation {
                return Self.redirect(
                    self.views.link(
                        "/operations/\(FormItems.encode(operation.id))?done=redrive&count=\(redrive.redriven)"
                            + "&back=\(FormItems.encode(back))"
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
        return Self.redirect(Self.adding([("done", action.rawValue), ("count", "\(count)")], to: back))
    }

    /// `path` with `items` in its query, in place of earlier ones of the same names.
    static func adding(_ items: [(name: String, value: String)], to path: String) -> String {
        let parts = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let names = Set(items.map(\.name))
        let kept =
            ((try? FormItems(encoded: parts.count > 1 ? String(parts[1]) : nil, maximumCount: .max))
            ?? FormItems()).removing(names)
        return String(parts[0]) + "?" + FormItems(kept.items + items).encoded
    }

    /// A page of the dashboard to go back to after an action, `nil` when `back` is missing or is not one.
    func safeBack(_ back: String?) -> String? {
        guard let back, !back.isEmpty, self.safeNext(back) == back else { return nil }
        return back
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
        let form = try FormItems(encoded: String(buffer: body), what: "form", maximumCount: Self.maximumActionItems)
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
        guard self.configuration.hasTokens else { return Self.redirect(self.views.link("/")) }
        let query = try FormItems(encoded: request.uri.query)
        var values = self.pageValues("Sign in", "SignIn")
        values["signedIn"] = false
        values["next"] = self.safeNext(query.last("next"))
        values["failed"] = failed
        if query.last("ended") == "1" {
            values["alert"] =
                "Your sign-in has ended: the server restarted, its token changed, or the sign-in expired. "
                + "Sign in again to go on."
        }
        return try self.views.page("signin", values, status: failed ? .unauthorized : .ok)
    }

    func signIn(_ request: Request) async throws -> Response {
        guard self.configuration.hasTokens else { return Self.redirect(self.views.link("/")) }
        let form = try await self.form(request)
        let given = form.last("token") ?? ""
        guard let identity = self.identity(forToken: given) else {
            var values = self.pageValues("Sign in", "SignIn")
            values["signedIn"] = false
            values["next"] = self.safeNext(form.last("next"))
            values["failed"] = true
            return try self.views.page("signin", values, status: .unauthorized)
        }
        let session = self.sessions.start(identity, now: self.clock.now())
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

    /// The name and role of the token `given`, compared with every token in constant time; `nil` for none.
    func identity(forToken given: String) -> AdminIdentity? {
        var found: AdminIdentity?
        for token in self.configuration.allTokens
        where AdminSecurityMiddleware<BasicRequestContext>.constantTimeEqual(given, token.token) {
            found = AdminIdentity(name: token.name, role: token.role)
        }
        return found
    }
}
