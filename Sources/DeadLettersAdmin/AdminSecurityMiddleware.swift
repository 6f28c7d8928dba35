import DeadLetters
import HTTPTypes
import Hummingbird
import Logging
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Guards every admin route: the token (bearer header or the dashboard's session cookie), cross-site
/// requests, and errors answered as JSON (or as an HTML page on the dashboard).
struct AdminSecurityMiddleware<Context: RequestContext>: RouterMiddleware {
    let admin: DeadLetterAdminRoutes

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = self.relativePath(request.uri.path)
        let isAPI = path.hasPrefix("/api/") || path == "/metrics" || path == "/healthz"
        do {
            try self.checkHost(request)
            try self.checkCrossSite(request, isAPI: isAPI)
            var identity: AdminIdentity?
            if path != "/healthz", self.admin.configuration.hasTokens {
                switch try self.authenticate(request, path: path, isAPI: isAPI) {
                case .redirect(let redirect): return redirect
                case .identity(let who): identity = who
                case .anyone: break
                }
            }
            if let identity,
                let needed = AdminRole.needed(method: request.method, path: path, query: request.uri.query),
                identity.role < needed
            {
                throw DeadLetterAdminError.roleNeeded(needed, identity: identity)
            }
            var response: Response = try await AdminIdentity.$current.withValue(identity) {
                if request.method == .get || request.method == .head, path != "/healthz", path != "/metrics" {
                    // Reads have a deadline (those two keep shorter ones of their own); changes are bounded by
                    // the store's deadlines, and are not cut short between their steps.
                    return try await AdminDeadline.run(self.admin.configuration.requestTimeout) {
                        try await next(request, context)
                    }
                }
                return try await next(request, context)
            }
            if isAPI {
                response.headers[.xContentTypeOptions] = "nosniff"
            } else {
                DashboardViews.addSecurityHeaders(to: &response.headers)
            }
            return response
        } catch let error as DeadLetterAdminError {
            return try self.answer(error, request: request, context: context, isAPI: isAPI)
        } catch let error as DeadLetterError {
            let answer: DeadLetterAdminError
            switch error.code {
            case .notFound: answer = .notFound(error.message)
            case .invalidFilter, .invalidFormat: answer = .badRequest(error.message)
            case .storeUnavailable, .notAStore:
                // The reason (a replaced or damaged store file, a refused login), without the file's path.
                context.logger.info("store unavailable", metadata: ["dlq.error": "\(error)"])
                answer = DeadLetterAdminError(
                    status: .serviceUnavailable,
                    code: "storeUnavailable",
                    message: "the store cannot be used: \(error.message)"
                )
            case .encryption:
                context.logger.error("payload cannot be decrypted", metadata: ["dlq.error": "\(error)"])
                answer = DeadLetterAdminError(
                    status: .internalServerError,
                    code: "encryption",
                    message: error.description
                )
            default:
                context.logger.info("admin request failed", metadata: ["dlq.error": "\(error)"])
                answer = .internalError
            }
            return try self.answer(answer, request: request, context: context, isAPI: isAPI)
        } catch let error as any HTTPResponseError {
            let answer = DeadLetterAdminError(
                status: error.status,
                code: error.status == .notFound ? "notFound" : "httpError",
                message: error.status.reasonPhrase
            )
            return try self.answer(answer, request: request, context: context, isAPI: isAPI)
        } catch {
            context.logger.info("admin request failed", metadata: ["dlq.error": "\(error)"])
            return try self.answer(.internalError, request: request, context: context, isAPI: isAPI)
        }
    }

    func relativePath(_ path: String) -> String {
        let base = self.admin.configuration.basePath
        guard !base.isEmpty, path.hasPrefix(base) else { return path }
        let rest = String(path.dropFirst(base.count))
        return rest.isEmpty ? "/" : rest
    }

    private func answer(
        _ error: DeadLetterAdminError,
        request: Request,
        context: Context,
        isAPI: Bool
    ) throws -> Response {
        if !isAPI, request.method == .get || request.method == .post, Self.wantsHTML(request),
            let page = self.admin.views.errorPage(error)
        {
            return page
        }
        return try error.response(from: request, context: context)
    }

    /// Whether the request comes from a browser showing a page: its `Accept` names `text/html`. Other
    /// clients (`curl`, scripts, `fetch`) get the API's JSON errors on every path.
    static func wantsHTML(_ request: Request) -> Bool {
        request.headers[.accept]?.lowercased().contains("text/html") == true
    }

    /// Without a token, only loopback `Host` names: a DNS-rebinding page has its own name in `Host`.
    private func checkHost(_ request: Request) throws {
        let configuration = self.admin.configuration
        guard !configuration.hasTokens, configuration.loopbackHostsOnlyWithoutToken,
            let authority = request.head.authority, !authority.isEmpty
        else { return }
        guard Self.isLoopbackAuthority(authority) else {
            throw DeadLetterAdminError.forbidden(
                "the Host '\(DeadLetterAdminRoutes.shortened(authority))' is not a loopback name; "
                    + "a server without a token answers only localhost, 127.0.0.1 and [::1]"
            )
        }
    }

    /// Whether `host[:port]` names a loopback address.
    static func isLoopbackAuthority(_ authority: String) -> Bool {
        var host = Substring(authority)
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return false }
            host = host[host.index(after: host.startIndex)..<end]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        return DeadLetterAdminServer.Configuration.isLoopback(String(host))
    }

    /// Refuses state-changing requests that a page of another site made the browser send.
    private func checkCrossSite(_ request: Request, isAPI: Bool) throws {
        let method = request.method
        guard method != .get, method != .head, method != .options else { return }
        if let site = request.headers[Self.secFetchSite], site != "same-origin", site != "none" {
            throw DeadLetterAdminError.forbidden("cross-site requests are refused (Sec-Fetch-Site: \(site))")
        }
        if let origin = request.headers[.origin] {
            let host = request.head.authority ?? ""
            guard let originHost = Self.hostOfOrigin(origin), originHost == host.lowercased() else {
                throw DeadLetterAdminError.forbidden("cross-site requests are refused (Origin does not match Host)")
            }
        }
    }

    static var secFetchSite: HTTPField.Name { HTTPField.Name("Sec-Fetch-Site")! }

    /// `host[:port]` of an `Origin` header, lower-cased; `nil` for `null` or anything else.
    static func hostOfOrigin(_ origin: String) -> String? {
        let lower = origin.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let rest = lower.dropFirst(scheme.count)
            guard !rest.isEmpty, !rest.contains("/") else { return nil }
            return String(rest)
        }
        return nil
    }

    /// What authentication found: who sent the request, or a redirect to the sign-in page.
    enum Authentication {
        case identity(AdminIdentity)
        /// A page that needs no sign-in (the sign-in page itself).
        case anyone
        case redirect(Response)
    }

    /// Checks the bearer token or the session cookie.
    /// - Returns: who sent the request, or a redirect to the sign-in page for a dashboard page.
    private func authenticate(_ request: Request, path: String, isAPI: Bool) throws -> Authentication {
        if let authorization = request.headers[.authorization] {
            let prefix = "bearer "
            guard authorization.lowercased().hasPrefix(prefix) else { throw DeadLetterAdminError.unauthorized }
            guard let identity = self.admin.identity(forToken: String(authorization.dropFirst(prefix.count))) else {
                throw DeadLetterAdminError.wrongToken
            }
            return .identity(identity)
        }
        if let session = request.cookies[SessionStore.cookieName]?.value,
            let identity = self.admin.sessions.identity(session, now: self.admin.clock.now())
        {
            return .identity(identity)
        }
        if !isAPI, path == "/signin" { return .anyone }
        // A session cookie this server does not know: the sign-in expired, or the server restarted (perhaps
        // with another token) since the page was opened. The sign-in page says so.
        let ended = request.cookies[SessionStore.cookieName] != nil ? "&ended=1" : ""
        if !isAPI, request.method == .get {
            let next = FormItems.encode(request.uri.path + (request.uri.query.map { "?" + $0 } ?? ""))
            return .redirect(
                Response(
                    status: .seeOther,
                    headers: [
                        .location: self.admin.views.link("/signin?next=\(next)\(ended)"), .cacheControl: "no-store",
                    ]
                )
            )
        }
        if !isAPI, request.method == .post, Self.wantsHTML(request) {
            // A form of a page opened before: back to sign-in, then to the page the form was on.
            let next = FormItems.encode(self.refererPath(request) ?? self.admin.views.link("/"))
            return .redirect(
                Response(
                    status: .seeOther,
                    headers: [
                        .location: self.admin.views.link("/signin?next=\(next)\(ended)"), .cacheControl: "no-store",
                    ]
                )
            )
        }
        throw DeadLetterAdminError.unauthorized
    }

    /// The path and query of the `Referer` when it is a page of this server (`same-origin` referrer policy).
    private func refererPath(_ request: Request) -> String? {
        guard let referer = request.headers[.referer], let authority = request.head.authority else { return nil }
        for scheme in ["http://", "https://"] where referer.lowercased().hasPrefix(scheme + authority.lowercased()) {
            let rest = String(referer.dropFirst(scheme.count + authority.count))
            return rest.hasPrefix("/") ? rest : nil
        }
        return nil
    }

    /// Compares two strings in a time that depends only on their lengths, not on where they differ.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(truncatingIfNeeded: x.count ^ y.count)
        difference |= x.count == y.count ? 0 : 1
        for index in 0..<max(x.count, y.count) {
            let left = index < x.count ? x[index] : 0
            let right = index < y.count ? y[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }
}

/// The dashboard's sign-ins: random session ids kept in memory for a limited time.
final class SessionStore: Sendable {
    static let cookieName = "dlq_session"
    static let maximumCount = 1000
    let duration: Duration
    private let sessions = Mutex<[String: (expiry: Date, identity: AdminIdentity)]>([:])

    init(duration: Duration) {
        self.duration = duration
    }

    /// Starts a session for `identity` and returns its id.
    func start(_ identity: AdminIdentity, now: Date) -> String {
        let id = Self.randomToken()
        self.sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expiry > now }
            if sessions.count >= Self.maximumCount, let oldest = sessions.min(by: { $0.value.expiry < $1.value.expiry })
            {
                sessions[oldest.key] = nil
            }
            sessions[id] = (now.adding(self.duration), identity)
        }
        return id
    }

    /// Who signed in with the session `id`, while it lasts.
    func identity(_ id: String, now: Date) -> AdminIdentity? {
        self.sessions.withLock { sessions in
            var found: AdminIdentity?
            for (key, session) in sessions where session.expiry > now {
                if AdminSecurityMiddleware<BasicRequestContext>.constantTimeEqual(key, id) { found = session.identity }
            }
            return found
        }
    }

    func end(_ id: String) {
        _ = self.sessions.withLock { $0.removeValue(forKey: id) }
    }

    /// 32 random bytes from the system's secure generator, as hex.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        for _ in 0..<4 {
            let word = generator.next() as UInt64
            let hex = String(word, radix: 16)
            text += String(repeating: "0", count: 16 - hex.count) + hex
        }
        return text
    }
}
