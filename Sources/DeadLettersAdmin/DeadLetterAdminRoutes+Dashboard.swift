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
        routes.get("") { request, _ in try await self.overview(request) }
        routes.get("letters") { request, _ in try await self.letterList(request) }
        routes.get("letters/:id") { request, context in
            try await self.letterDetail(Self.pathID(context), request: request)
        }
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

    /// Whether the signed-in token's role allows `role`'s actions (always, on a server without tokens): the
    /// dashboard shows only the actions the server would allow.
    func may(_ role: AdminRole) -> Bool {
        AdminIdentity.current.map { $0.role >= role } ?? true
    }

    /// Common values of every page.
    func pageValues(_ title: String, _ section: String) -> [String: Any] {
        [
            "title": title,
            "csrf": self.formToken,
            "signedIn": self.configuration.hasTokens,
            "nav\(section)": true,
            "canRemove": self.may(.admin),
        ]
    }

    func overview(_ request: Request) async throws -> Response {
        let summary = try await self.queue.summary()
        // Failures over time: per hour over 24 hours, or with ?timeline=30d per day over 30 days.
        let days = try self.query(request, allowing: ["timeline"]).last("timeline") == "30d"
        let timeline = try await self.queue.timeline(bucket: .seconds(days ? 86_400 : 3600), count: days ? 30 : 24)
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
        values.merge(DashboardTimeline.values(timeline, days: days)) { _, new in new }
        // The counts, the chart and the groups refresh themselves every 5 seconds while the page is visible.
        values["live"] = 5000
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
        var row: [String: Any] = [
            "fingerprint": group.fingerprint,
            "count": DashboardViews.count(group.count),
            "errorType": group.errorType,
            "sampleMessage": group.sampleMessage,
            "sources": group.sources.joined(separator: ", "),
            "firstFailedAt": DashboardViews.time(group.firstFailedAt),
            "lastFailedAt": DashboardViews.time(group.lastFailedAt),
            "link": self.views.link("/letters?\(filter)"),
        ]
        if self.may(.operator) { row["redriveLink"] = self.views.link("/confirm?action=redrive&\(filter)") }
        if self.may(.admin) { row["purgeLink"] = self.views.link("/confirm?action=purge&\(filter)") }
        return row
    }

    /// The page sizes the letter list offers; `size=` takes any number from 1 to the largest, which is as many
    /// letters as a selection may hold.
    static let pageSizes = [25, 50, 100, maximumSelection]

    func letterList(_ request: Request) async throws -> Response {
        let query = try FormItems(encoded: request.uri.query)
        let filterItems = FormItems(query.items.filter { AdminFilter.isFilterName($0.name) && !$0.value.isEmpty })
        let sort = try AdminSort.parse(query)
        let now = self.clock.now()
        // A bad filter keeps the form as typed, with the error beside its field, and lists nothing.
        var filter = DeadLetterFilter()
        var filterError: DeadLetterAdminError?
        do {
            filter = try AdminFilter.parse(filterItems, now: now)
        } catch let error as DeadLetterAdminError where AdminFilter.isFilterName(error.parameter ?? "") {
            filterError = error
        }
        let size =
            try Self.wholeNumber(query, "size", in: 1...Self.maximumSelection) ?? self.configuration.dashboardPageSize
        let offset = try Self.wholeNumber(query, "offset", in: 0...1_000_000_000) ?? 0
        let cursor = try query.last("cursor").flatMap { try AdminCursor.decode($0) }
        var page = DeadLetterPage(letters: [], nextCursor: nil)
        var matching = 0
        if filterError == nil {
            // The list shows no payload: sealed ones stay closed, so a letter whose key is missing is listed too.
            page = try await self.queue.letters(
                filter,
                sortedBy: sort,
                after: cursor,
                limit: size,
                includingPayloads: false
            )
            matching = try await self.queue.count(filter)
        }
        let summary = try await self.queue.summary()

        var values = self.pageValues("Letters", "Letters")
        values["matching"] = DashboardViews.count(matching)
        // The count, the rows and the range refresh themselves every 5 seconds while the page is visible and
        // nothing is ticked.
        values["live"] = 5000
        values["matchingOne"] = matching == 1
        values["filtered"] = !filterItems.items.isEmpty
        // This view (the filter and the page size) and the links made from it.
        var viewItems = filterItems
        if query.last("size") != nil { viewItems.items.append(("size", "\(size)")) }
        // Paging and the way back keep the order; actions take the filter only.
        if sort != .id { viewItems.items.append(("sort", sort.rawValue)) }
        func lettersLink(_ items: FormItems) -> String {
            self.views.link(items.items.isEmpty ? "/letters" : "/letters?\(items.encoded)")
        }
        // Where actions started here come back to: the first page of this filtered view.
        let back = lettersLink(viewItems)
        values["back"] = back
        func confirmLink(_ action: String, _ items: [(name: String, value: String)]) -> String {
            let first: [(name: String, value: String)] = [("action", action)]
            return self.views.link("/confirm?" + FormItems(first + items + [("back", back)]).encoded)
        }
        let selection = query.last("select")
        values["rows"] = page.letters.map { letter -> [String: Any] in
            let id: [(name: String, value: String)] = [("id", letter.id)]
            let parked = letter.status == .parked
            var row: [String: Any] = [
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
                "redriveLabel": parked ? "Unpark and redrive…" : "Redrive…",
            ]
            if self.may(.operator) {
                row["redriveLink"] = confirmLink("redrive", parked ? id + [("status", "parked")] : id)
                if !parked { row["parkLink"] = confirmLink("park", id) }
            }
            if self.may(.admin) { row["deleteLink"] = confirmLink("delete", id) }
            if selection == "page" || selection == "all" { row["checked"] = true }
            if selection == "all" { row["locked"] = true }
            return row
        }
        // "51–100 of 106", and the links to the next and the first page with the same filter and size.
        if !page.letters.isEmpty {
            values["range"] =
                "\(DashboardViews.count(offset + 1))–\(DashboardViews.count(offset + page.letters.count)) "
                + "of \(DashboardViews.count(max(matching, offset + page.letters.count)))"
        }
        if let next = page.nextCursor {
            values["nextLink"] = lettersLink(
                FormItems(
                    viewItems.items + [
                        ("cursor", AdminCursor.encode(next)), ("offset", "\(offset + page.letters.count)"),
                    ]
                )
            )
        }
        if cursor != nil { values["firstLink"] = back }
        values["sizes"] = Self.pageSizes.map { option -> [String: Any] in
            var chip: [String: Any] = [
                "size": option, "link": lettersLink(FormItems(filterItems.items + [("size", "\(option)")])),
            ]
            if option == size { chip["on"] = true }
            return chip
        }
        if matching > 0 {
            if self.may(.operator) {
                values["redriveLink"] = confirmLink("redrive", filterItems.items)
                values["parkLink"] = confirmLink("park", filterItems.items)
            }
            if self.may(.admin) { values["purgeLink"] = confirmLink("purge", filterItems.items) }
            // The selection: ticked letters of this page, or everything the filter matches.
            var here = viewItems
            if let cursor { here.items += [("cursor", AdminCursor.encode(cursor)), ("offset", "\(offset)")] }
            values["selectPageLink"] = lettersLink(FormItems(here.items + [("select", "page")]))
            // A viewer can act on no selection: no checkboxes' bar.
            if self.may(.operator) {
                values["selectAllLink"] = lettersLink(FormItems(here.items + [("select", "all")]))
            }
            values["clearSelectionLink"] = lettersLink(here)
            if selection == "all" {
                values["allSelected"] = true
                values["selectionFilter"] = filterItems.items.map { ["name": $0.name, "value": $0.value] }
            }
        }
        values["notice"] = Self.notice(query)
        if let filterError {
            let name = filterError.parameter ?? ""
            let problem = String(filterError.message.dropFirst("parameter '\(name)': ".count))
            // Beside the field when the form has one for it, else above the form.
            if ["since", "until", "minAttempts"].contains(name) {
                values["e_\(name)"] = problem
            } else {
                values["filterError"] = filterError.message
            }
            values["listError"] = true
            values["matching"] = "No"
        }
        // The filter form, filled in as given.
        func options(_ counts: [String: Int], selected: [String]) -> [[String: Any]] {
            Set(counts.keys).union(selected).sorted().map { ["value": $0, "selected": selected.contains($0)] }
        }
        values["sourceOptions"] = options(summary.bySource, selected: filterItems.all("source"))
        values["reasonOptions"] = options(summary.byReason, selected: filterItems.all("reason"))
        values["errorTypeOptions"] = options(summary.byErrorType, selected: filterItems.all("errorType"))
        values["statusOptions"] = DeadLetterStatus.allCases.map {
            ["value": $0.rawValue, "selected": filterItems.all("status").contains($0.rawValue)]
        }
        for name in ["source", "reason", "errorType", "status"] {
            let chosen = filterItems.all(name)
            values["n_\(name)"] = chosen.isEmpty ? "Any" : chosen.count == 1 ? chosen[0] : "\(chosen.count) chosen"
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
        if query.last("size") != nil { values["f_size"] = "\(size)" }
        return try self.views.page("letters", values, status: filterError == nil ? .ok : .badRequest)
    }

    /// A whole-number query parameter within `range`, `nil` when it is missing or empty.
    /// - Throws: ``DeadLetterAdminError`` 400 naming the parameter when it is not a number in `range`.
    static func wholeNumber(_ query: FormItems, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = query.last(name), !text.isEmpty else { return nil }
        guard text.utf8.count <= 10, let value = Int(text), range.contains(value) else {
            throw DeadLetterAdminError.invalidParameter(
                name,
                "must be a whole number from \(range.lowerBound) to \(range.upperBound)"
            )
        }
        return value
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

    func letterDetail(_ id: String, request: Request) async throws -> Response {
        guard let (letter, sealed) = try await self.readForDetail(id) else {
            throw DeadLetterAdminError.notFound("no dead letter has the id '\(Self.shortened(id))'")
        }
        let now = self.clock.now()
        let viewer = AdminIdentity.current?.role == .viewer
        let payload =
            viewer
            ? (text: "Hidden: reading payloads needs the operator role.", kind: "not shown to viewers")
            : sealed.map { (text: $0.message, kind: "encrypted, not shown") }
                ?? DashboardViews.payload(letter.payload, contentType: letter.contentType)
        let idFilter = "id=\(FormItems.encode(letter.id))"
        var values = self.pageValues("Letter \(letter.id)", "Letters")
        values["copy"] = true
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
        // A redrive and a park come back to this page; a delete goes to the list.
        let here = "back=" + FormItems.encode(self.views.link("/letters/\(FormItems.encode(letter.id))"))
        values["redriveLink"] = self.views.link(
            "/confirm?action=redrive&\(idFilter)" + (parked ? "&status=parked" : "") + "&\(here)"
        )
        values["redriveLabel"] = parked ? "Unpark and redrive…" : "Redrive…"
        if !parked, self.may(.operator) {
            values["parkLink"] = self.views.link("/confirm?action=park&\(idFilter)&\(here)")
        }
        if self.may(.admin) { values["deleteLink"] = self.views.link("/confirm?action=delete&\(idFilter)") }
        if !self.may(.operator) { values["redriveLink"] = nil }
        values["notice"] = Self.notice(try FormItems(encoded: request.uri.query))
        // Text payloads can be edited in place; binary and sealed ones with `dlq edit`.
        if sealed == nil, !viewer, let raw = String(data: letter.payload, encoding: .utf8),
            letter.payload.count <= 256 * 1024
        {
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
        values["copy"] = true
        values["groups"] = groups.map(self.groupRow)
        values["empty"] = groups.isEmpty
        return try self.views.page("groups", values)
    }
}
