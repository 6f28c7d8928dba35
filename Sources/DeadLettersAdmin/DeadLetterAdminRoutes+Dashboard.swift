import DeadLetters
import HTTPTypes
import Hummingbird

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterAdminRoutes {
    func addDashboardRoutes<Context: RequestContext>(to routes: RouteCollection<Context>) {
        routes.get("") { _, _ in try await self.overview() }
        routes.get("letters") { request, _ in try await self.letterList(request) }
        routes.get("letters/:id") { _, context in try await self.letterDetail(Self.pathID(context)) }
        routes.post("letters/:id/edit") { request, context in
            try await self.editPayload(request, id: Self.pathID(context), actor: self.actor(context))
        }
        routes.get("groups") { _, _ in try await self.groupList() }
        routes.get("confirm") { request, _ in try await self.confirm(request) }
        routes.post("actions/:action") { request, context in
            try await self.act(request, action: context.parameters.get("action") ?? "", actor: self.actor(context))
        }
        routes.get("signin") { request, _ in try self.signInPage(request) }
        routes.post("signin") { request, _ in try await self.signIn(request) }
        routes.post("signout") { request, _ in try await self.signOut(request) }
        self.addOperationPageRoutes(to: routes)
    }

    /// Common values of every page.
    func pageValues(_ title: String, _ section: String) -> [String: Any] {
        [
            "title": title,
            "csrf": self.formToken,
            "signedIn": self.configuration.token != nil,
            "nav\(section)": true,
        ]
    }

    func overview() async throws -> Response {
        let summary = try await self.queue.summary()
        let groups = try await self.queue.groups(limit: 5)
        let now = self.clock.now()
        var values = self.pageValues("Overview", "Overview")
        values["total"] = DashboardViews.count(summary.total)
        values["empty"] = summary.total == 0
        for status in DeadLetterStatus.allCases {
            values[status.rawValue] = DashboardViews.count(summary.byStatus[status.rawValue] ?? 0)
        }
        values["oldestAge"] = summary.oldestFailedAt.map { DashboardViews.age(now.timeIntervalSince($0)) } ?? "—"
        values["oldestAt"] = DashboardViews.time(summary.oldestFailedAt)
        values["averageAttempts"] = DeadLetterJSON.number((summary.averageAttempts * 10).rounded() / 10)
        values["byReason"] = self.countRows(summary.byReason, total: summary.total, parameter: "reason")
        values["bySource"] = self.countRows(summary.bySource, total: summary.total, parameter: "source")
        values["byErrorType"] = self.countRows(summary.byErrorType, total: summary.total, parameter: "errorType")
        values["byAge"] = DeadLetterSummary.ageBuckets.map { bucket -> [String: Any] in
            let count = summary.byAge[bucket] ?? 0
            return [
                "name": bucket, "count": DashboardViews.count(count), "percent": Self.percent(count, summary.total),
            ]
        }
        values["groups"] = groups.map(self.groupRow)
        return try self.views.page("overview", values)
    }

    func countRows(_ counts: [String: Int], total: Int, parameter: String) -> [[String: Any]] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { entry in
            [
                "name": entry.key,
                "count": DashboardViews.count(entry.value),
                "percent": Self.percent(entry.value, total),
                "link": self.views.link("/letters?\(parameter)=\(FormItems.encode(entry.key))"),
            ]
        }
    }

    static func percent(_ part: Int, _ total: Int) -> Int {
        total == 0 ? 0 : max(part > 0 ? 1 : 0, Int((Double(part) * 100 / Double(total)).rounded()))
    }

    func groupRow(_ group: DeadLetterGroup) -> [String: Any] {
        let filter = "fingerprint=\(FormItems.encode(group.fingerprint))"
        return [
            "fingerprint": group.fingerprint,
            "shortFingerprint": String(group.fingerprint.prefix(12)),
            "count": DashboardViews.count(group.count),
            "errorType": group.errorType,
            "sampleMessage": group.sampleMessage,
            "sources": group.sources.joined(separator: ", "),
            "firstFailedAt": DashboardViews.time(group.firstFailedAt),
            "lastFailedAt": DashboardViews.time(group.lastFailedAt),
            "link": self.views.link("/letters?\(filter)"),
            "redriveLink": self.views.link("/confirm?action=redrive&\(filter)"),
            "purgeLink": self.views.link("/confirm?action=purge&\(filter)"),
        ]
    }

    func letterList(_ request: Request) async throws -> Response {
        let query = try FormItems(encoded: request.uri.query)
        let filterItems = FormItems(query.items.filter { AdminFilter.isFilterName($0.name) && !$0.value.isEmpty })
        let filter = try AdminFilter.parse(filterItems, now: self.clock.now())
        let cursor = try query.last("cursor").flatMap { try AdminCursor.decode($0) }
        let sort = try AdminSort.parse(query)
        // The list shows no payload: sealed ones stay closed, so a letter whose key is missing is listed too.
        let page = try await self.queue.letters(
            filter,
            sortedBy: sort,
            after: cursor,
            limit: self.configuration.dashboardPageSize,
            includingPayloads: false
        )
        let matching = try await self.queue.count(filter)
        let summary = try await self.queue.summary()
        let now = self.clock.now()

        var values = self.pageValues("Letters", "Letters")
        values["matching"] = DashboardViews.count(matching)
        values["matchingOne"] = matching == 1
        values["filtered"] = !filter.isEmpty
        values["rows"] = page.letters.map { letter -> [String: Any] in
            [
                "id": letter.id,
                "link": self.views.link("/letters/\(FormItems.encode(letter.id))"),
                "source": letter.source,
                "reason": letter.reason.rawValue,
                "status": letter.status.rawValue,
                "errorType": letter.errorType,
                "errorMessage": letter.errorMessage.count > 160
                    ? String(letter.errorMessage.prefix(160)) + "…" : letter.errorMessage,
                "attempts": letter.attempts,
                "lastFailedAt": DashboardViews.time(letter.lastFailedAt),
                "age": DashboardViews.age(now.timeIntervalSince(letter.firstFailedAt)),
            ]
        }
        let encodedFilter = filterItems.encoded
        let separator = encodedFilter.isEmpty ? "" : "&"
        // Paging keeps the order; actions take the filter only.
        let listQuery = encodedFilter + (sort == .id ? "" : "\(separator)sort=\(sort.rawValue)")
        let listSeparator = listQuery.isEmpty ? "" : "&"
        if let next = page.nextCursor {
            values["nextLink"] = self.views.link(
                "/letters?\(listQuery)\(listSeparator)cursor=\(AdminCursor.encode(next))"
            )
        }
        if cursor != nil { values["firstLink"] = self.views.link("/letters?\(listQuery)") }
        if matching > 0 {
            values["redriveLink"] = self.views.link("/confirm?action=redrive\(separator)\(encodedFilter)")
            values["parkLink"] = self.views.link("/confirm?action=park\(separator)\(encodedFilter)")
            values["purgeLink"] = self.views.link("/confirm?action=purge\(separator)\(encodedFilter)")
        }
        values["notice"] = Self.notice(query)
        // The filter form, filled in.
        func options(_ counts: [String: Int], selected: [String]) -> [[String: Any]] {
            Set(counts.keys).union(selected).sorted().map { ["value": $0, "selected": selected.contains($0)] }
        }
        values["sourceOptions"] = options(summary.bySource, selected: filter.sources)
        values["reasonOptions"] = options(summary.byReason, selected: filter.reasons)
        values["statusOptions"] = DeadLetterStatus.allCases.map {
            ["value": $0.rawValue, "selected": filter.statuses.contains($0)]
        }
        for name in ["errorType", "fingerprint", "since", "until", "minAttempts", "search"] {
            values["f_\(name)"] = filterItems.last(name) ?? ""
        }
        let pairs = filter.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + [""]
        values["metaFields"] = pairs.enumerated().map { index, pair -> [String: Any] in
            ["fieldID": index == 0 ? "meta" : "meta-\(index + 1)", "value": pair]
        }
        let sortLabels = [
            "id": "Oldest first", "last-failed": "Last failed, latest first",
            "first-failed": "First failed, earliest first", "attempts": "Most attempts", "source": "Source",
        ]
        values["sortOptions"] = DeadLetterSort.all.map { option -> [String: Any] in
            [
                "value": option.rawValue, "label": sortLabels[option.rawValue] ?? option.rawValue,
                "selected": option == sort,
            ]
        }
        return try self.views.page("letters", values)
    }

    /// The sentence after an action, from `done=` and `count=` (never free text from the link).
    static func notice(_ query: FormItems) -> String? {
        if query.last("done") == "cancel" { return "Cancelled: the letters that had not run yet are dead again." }
        guard let done = query.last("done"), let count = query.last("count").flatMap({ Int($0) }) else { return nil }
        let letters = count == 1 ? "1 letter" : "\(DashboardViews.count(count)) letters"
        switch done {
        case "redrive": return "Redriven: \(letters) handed back to the running services."
        case "park": return "Parked: \(letters) set aside; retries, redrives and replays leave them alone."
        case "purge": return "Purged: \(letters) removed."
        case "delete": return "Deleted: \(letters) removed."
        default: return nil
        }
    }

    /// The letter with `id`; when its payload cannot be opened (sealed with a key this server does not have),
    /// the letter without its payload and the reason, so that its error and history can still be read.
    private func readForDetail(_ id: String) async throws -> (DeadLetter, sealed: DeadLetterError?)? {
        do {
            return try await self.queue.letter(id: id).map { ($0, nil) }
        } catch let error as DeadLetterError where error.code == .encryption {
            let page = try await self.queue.letters(DeadLetterFilter(ids: [id]), limit: 1, includingPayloads: false)
            return page.letters.first.map { ($0, error) }
        }
    }

    func letterDetail(_ id: String) async throws -> Response {
        guard let (letter, sealed) = try await self.readForDetail(id) else {
            throw DeadLetterAdminError.notFound("no dead letter has the id '\(Self.shortened(id))'")
        }
        let now = self.clock.now()
        let payload =
            sealed.map { (text: $0.message, kind: "encrypted, not shown") }
            ?? DashboardViews.payload(letter.payload, contentType: letter.contentType)
        let idFilter = "id=\(FormItems.encode(letter.id))"
        var values = self.pageValues("Letter \(letter.id)", "Letters")
        values["letter"] =
            [
                "id": letter.id,
                "source": letter.source,
                "reason": letter.reason.rawValue,
                "status": letter.status.rawValue,
                "errorType": letter.errorType,
                "errorMessage": letter.errorMessage,
                "attempts": letter.attempts,
                "replayCount": letter.replayCount,
                "firstFailedAt": DashboardViews.time(letter.firstFailedAt),
                "lastFailedAt": DashboardViews.time(letter.lastFailedAt),
                "age": DashboardViews.age(now.timeIntervalSince(letter.firstFailedAt)),
                "nextAttemptAt": DashboardViews.time(letter.nextAttemptAt),
                "expiresAt": DashboardViews.time(letter.expiresAt),
                "fingerprint": letter.fingerprint,
                "fingerprintLink": self.views.link("/letters?fingerprint=\(FormItems.encode(letter.fingerprint))"),
                "contentType": letter.contentType ?? "—",
                "payload": payload.text,
                "payloadKind": payload.kind,
            ] as [String: Any]
        values["causes"] = letter.causes
        values["hasCauses"] = !letter.causes.isEmpty
        values["metadata"] = letter.metadata.sorted { $0.key < $1.key }.map { ["key": $0.key, "value": $0.value] }
        values["hasMetadata"] = !letter.metadata.isEmpty
        values["history"] = letter.history.enumerated().map { index, entry in
            // Only what the entry has: a template section shows for any value, an empty string too.
            var row: [String: Any] = ["event": entry.event.rawValue, "at": DashboardViews.time(entry.at)]
            row["outcome"] = entry.outcome?.rawValue
            row["message"] = entry.message
            row["who"] = entry.actor
            row["operation"] = entry.operation
            row["operationLink"] = entry.operation.map { self.views.link("/operations/\(FormItems.encode($0))") }
            row["error"] = entry.errorMessage.map { message in entry.errorType.map { "\($0): \(message)" } ?? message }
            if entry.event == .failed { row["reason"] = entry.reason?.rawValue }
            if index == 0, letter.historyOmitted > 0 { row["omitted"] = DashboardViews.count(letter.historyOmitted) }
            return row
        }
        let parked = letter.status == .parked
        values["redriveLink"] = self.views.link(
            "/confirm?action=redrive&\(idFilter)" + (parked ? "&status=parked" : "")
        )
        values["redriveLabel"] = parked ? "Unpark and redrive…" : "Redrive…"
        if !parked { values["parkLink"] = self.views.link("/confirm?action=park&\(idFilter)") }
        values["deleteLink"] = self.views.link("/confirm?action=delete&\(idFilter)")
        // Text payloads can be edited in place; binary and sealed ones with `dlq edit`.
        if sealed == nil, let raw = String(data: letter.payload, encoding: .utf8), letter.payload.count <= 256 * 1024 {
            var detail = values["letter"] as? [String: Any] ?? [:]
            detail["editable"] = true
            // The bytes as stored, not the pretty-printed view: an edit changes only what the person changed. (A
            // browser drops the line break right after <textarea>, which the template writes for that reason.)
            detail["rawPayload"] = raw
            detail["editURL"] = self.views.link("/letters/\(FormItems.encode(letter.id))/edit")
            detail["csrf"] = self.formToken
            values["letter"] = detail
        }
        return try self.views.page("letter", values)
    }

    /// The letter page's edit form: replaces a text payload, then shows the letter (its history has the edit).
    func editPayload(_ request: Request, id: String?, actor: String) async throws -> Response {
        guard let id else { throw DeadLetterAdminError.notFound("no dead letter has this id") }
        let form = try await self.form(request)
        var text = form.last("payload") ?? ""
        // Browsers send a textarea's line breaks as CRLF: keep LF when the payload had no CR.
        if let current = try? await self.queue.letter(id: id), !current.payload.contains(UInt8(ascii: "\r")) {
            text = String(text.split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n"))
        }
        let payload = Data(text.utf8)
        do {
            try await self.queue.edit(id: id, payload: payload, redrive: form.last("redrive") == "1", actor: actor)
        } catch let error as DeadLetterError where error.code == .notFound {
            throw DeadLetterAdminError.notFound("no dead letter has the id '\(Self.shortened(id))'")
        }
        return Self.redirect(self.views.link("/letters/\(FormItems.encode(id))"))
    }

    func groupList() async throws -> Response {
        let groups = try await self.queue.groups(limit: 200)
        var values = self.pageValues("Groups", "Groups")
        values["groups"] = groups.map(self.groupRow)
        values["empty"] = groups.isEmpty
        return try self.views.page("groups", values)
    }
}
