public import DeadLetters
public import Hummingbird
import Mustache
public import Prometheus

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The admin HTTP API, `/metrics`, `/healthz` and the web dashboard of a ``DeadLetters/DeadLetterQueue``, as
/// routes to mount in a Hummingbird application.
///
/// ```swift
/// let registry = PrometheusCollectorRegistry()
/// var configuration = DeadLetterQueue.Configuration()
/// configuration.metricsFactory = PrometheusMetricsFactory(registry: registry)
/// let queue = try DeadLetterQueue(store: store, configuration: configuration)
///
/// let admin = try DeadLetterAdminRoutes(
///     queue: queue,
///     registry: registry,
///     configuration: .init(token: token, basePath: "/dlq")
/// )
/// let router = Router()
/// admin.register(on: router)
/// ```
///
/// Routes, relative to ``Configuration/basePath``: `GET /api/v1/dead-letters`, `GET|DELETE
/// /api/v1/dead-letters/{id}`, `POST /api/v1/redrive`, `POST /api/v1/purge`, `GET /api/v1/stats`,
/// `GET /api/v1/groups`, `POST /api/v1/park`, `GET /api/v1/operations`, `GET /api/v1/operations/{id}`,
/// `POST /api/v1/operations/{id}/cancel`, `GET /api/v1/instances`, `GET /metrics`, `GET /healthz`, and the
/// dashboard at `GET /` (with `/letters`, `/groups`, `/operations` and `/instances`).
public struct DeadLetterAdminRoutes: Sendable {
    /// How the routes behave.
    public struct Configuration: Sendable {
        /// The token every request but `/healthz` must carry (`Authorization: Bearer <token>`, or the
        /// dashboard's sign-in cookie); `nil` for none, which is safe only on a loopback address.
        /// Default `nil`.
        public var token: String?
        /// Named tokens with roles (``AdminRole``): each request is allowed what its token's role allows, and
        /// the token's name is who acts in the letters' history. A ``token`` counts as one more, named `admin`
        /// with the `admin` role. Default none.
        public var tokens: [AdminToken] = []
        /// The largest request body accepted, in bytes; larger bodies are answered with 413. Default 1 MiB.
        public var maximumBodySize: Int
        /// The path the routes are mounted at, such as `/dlq`; the dashboard's links and its cookie use it.
        /// Default `""` (the root).
        public var basePath: String
        /// How many letters a page of the API list holds when `limit` is not given. Default 100.
        public var defaultPageSize: Int
        /// How many letters a page of the dashboard shows. Default 50.
        public var dashboardPageSize: Int
        /// How long a dashboard sign-in lasts. Default 12 hours.
        public var sessionDuration: Duration
        /// How long a read (`GET`, `HEAD`) may take before it is answered 503 `timeout`; changes are bounded by
        /// the store's own deadlines (a connection, a statement). Default 30 s.
        public var requestTimeout: Duration
        /// How long `/healthz` waits for the store before it answers 503, and `/metrics` before it renders what
        /// it has with `dlq_store_up 0`. Default 1.5 s.
        public var healthTimeout: Duration
        /// Without a ``token``, refuse (403) requests whose `Host` is not a loopback name (`localhost`,
        /// `127.0.0.0/8`, `[::1]`), so that a web page cannot reach the routes through DNS rebinding.
        /// Default `true`.
        public var loopbackHostsOnlyWithoutToken: Bool

        /// Creates a configuration.
        /// - Parameters:
        ///   - token: the bearer token; `nil` (the default) for none.
        ///   - maximumBodySize: the largest request body, in bytes; 1 MiB by default.
        ///   - basePath: where the routes are mounted; the root by default.
        public init(token: String? = nil, maximumBodySize: Int = 1 << 20, basePath: String = "") {
            self.token = token
            self.maximumBodySize = maximumBodySize
            self.basePath = basePath
            self.defaultPageSize = 100
            self.dashboardPageSize = 50
            self.sessionDuration = .seconds(12 * 3600)
            self.requestTimeout = .seconds(30)
            self.healthTimeout = .milliseconds(1500)
            self.loopbackHostsOnlyWithoutToken = true
        }

        /// Every token the routes accept: the named ``tokens`` and the single ``token`` as `admin`.
        var allTokens: [AdminToken] {
            self.tokens + (self.token.map { [AdminToken(name: "admin", role: .admin, token: $0)] } ?? [])
        }

        /// Whether requests must carry a token.
        var hasTokens: Bool { self.token != nil || !self.tokens.isEmpty }

        /// Checks every value.
        /// - Throws: ``DeadLetters/DeadLetterError`` `invalidConfiguration` naming the field.
        public func validate() throws {
            func invalid(_ field: String, _ message: String) -> DeadLetterError {
                DeadLetterError(code: .invalidConfiguration, message: message, field: field)
            }
            if let token = self.token {
                if token.isEmpty { throw invalid("token", "must not be empty; leave it out for no token") }
                if token.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) {
                    throw invalid("token", "must be printable ASCII without spaces")
                }
            }
            try AdminToken.validate(self.allTokens)
            if self.maximumBodySize < 1 { throw invalid("maximumBodySize", "must be at least 1 byte") }
            if !self.basePath.isEmpty, !self.basePath.hasPrefix("/") || self.basePath.hasSuffix("/") {
                throw invalid("basePath", "must be empty or start with '/' and not end with '/'")
            }
            if !(1...1000).contains(self.defaultPageSize) {
                throw invalid("defaultPageSize", "must be between 1 and 1000")
            }
            if !(1...1000).contains(self.dashboardPageSize) {
                throw invalid("dashboardPageSize", "must be between 1 and 1000")
            }
            if self.sessionDuration <= .zero { throw invalid("sessionDuration", "must be positive") }
            if self.requestTimeout <= .zero { throw invalid("requestTimeout", "must be positive") }
            if self.healthTimeout <= .zero { throw invalid("healthTimeout", "must be positive") }
        }
    }

    /// The queue the routes read and change.
    public let queue: DeadLetterQueue
    /// The configuration, validated.
    public let configuration: Configuration
    let registry: PrometheusCollectorRegistry?
    let clock: any DeadLetterClock
    let views: DashboardViews
    let sessions: SessionStore
    /// The token of the dashboard's forms: a page of another site cannot read it, so it cannot post a form.
    let formToken: String

    /// Creates the routes.
    /// - Parameters:
    ///   - queue: the queue to serve.
    ///   - registry: the Prometheus registry the queue's `metricsFactory` writes to (a
    ///     `PrometheusMetricsFactory(registry:)`); `/metrics` renders it. `nil` (the default) answers
    ///     `/metrics` with 404.
    ///   - configuration: how the routes behave.
    ///   - clock: where the time comes from, for ages such as `since=2h`; the system's by default.
    /// - Throws: ``DeadLetters/DeadLetterError`` `invalidConfiguration` for a bad value, or `io` when the
    ///   dashboard's templates cannot be read.
    public init(
        queue: DeadLetterQueue,
        registry: PrometheusCollectorRegistry? = nil,
        configuration: Configuration = Configuration(),
        clock: some DeadLetterClock = SystemDeadLetterClock()
    ) throws {
        try configuration.validate()
        self.queue = queue
        self.registry = registry
        self.configuration = configuration
        self.clock = clock
        self.views = try DashboardViews(basePath: configuration.basePath)
        self.sessions = SessionStore(duration: configuration.sessionDuration)
        self.formToken = SessionStore.randomToken()
    }

    /// The routes as a collection, to add with `router.addRoutes(_:atPath:)` at ``Configuration/basePath``.
    /// - Parameter context: the request context type of the application.
    public func routeCollection<Context: RequestContext>(
        context: Context.Type = BasicRequestContext.self
    ) -> RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.add(middleware: AdminSecurityMiddleware<Context>(admin: self))
        self.addAPIRoutes(to: routes)
        self.addDashboardRoutes(to: routes)
        return routes
    }

    /// Adds the routes to `router` at ``Configuration/basePath``.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.addRoutes(self.routeCollection(context: Context.self), atPath: RouterPath(self.mountPath))
    }

    var mountPath: String { self.configuration.basePath.isEmpty ? "/" : self.configuration.basePath }

    /// Every route's path, relative to the base path (`:name` for any one segment), and the methods it takes;
    /// `HEAD` is answered wherever `GET` is.
    static let routeMethods: [(path: [Substring], methods: [HTTPRequest.Method])] = [
        ("", [.get]), ("letters", [.get]), ("letters/:id", [.get]), ("groups", [.get]), ("confirm", [.get]),
        ("actions/:action", [.post]), ("signin", [.get, .post]), ("signout", [.post]),
        ("api/v1/dead-letters", [.get]), ("api/v1/dead-letters/:id", [.get, .delete]),
        ("api/v1/redrive", [.post]), ("api/v1/purge", [.post]), ("api/v1/stats", [.get]),
        ("api/v1/groups", [.get]), ("metrics", [.get]), ("healthz", [.get]), ("api/v1/park", [.post]),
        ("api/v1/operations", [.get]), ("api/v1/operations/:id", [.get]), ("api/v1/operations/:id/cancel", [.post]),
        ("api/v1/instances", [.get]), ("operations", [.get]), ("operations/:id", [.get]),
        ("operations/:id/cancel", [.post]), ("letters/:id/edit", [.post]), ("instances", [.get]),
    ].map { (path: $0.0.split(separator: "/"), methods: $0.1) }

    /// The methods the route at `path` (the request's path, base path included) takes, or `nil` when no
    /// route has that path.
    func allowedMethods(at path: String) -> [HTTPRequest.Method]? {
        var path = Substring(path)
        let base = self.configuration.basePath
        if !base.isEmpty {
            guard path.hasPrefix(base) else { return nil }
            path = path.dropFirst(base.count)
        }
        let segments = path.split(separator: "/")
        for route in Self.routeMethods where route.path.count == segments.count {
            let matches = zip(route.path, segments).allSatisfy { pattern, segment in
                pattern.hasPrefix(":") || pattern == segment
            }
            if matches { return route.methods }
        }
        return nil
    }

    /// Adds handlers answering 405 for the methods `path` does not take.
    func refuseOtherMethods<Context>(
        _ path: String,
        allowed: [HTTPRequest.Method],
        on routes: RouteCollection<Context>
    ) {
        let all: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete]
        for method in all where !allowed.contains(method) {
            routes.on(
                RouterPath(path),
                method: method,
                use: { (_: Request, _: Context) -> Response in
                    throw DeadLetterAdminError.methodNotAllowed(method, allowed: allowed)
                }
            )
        }
    }

    /// The request's body, at most ``Configuration/maximumBodySize`` bytes.
    /// - Throws: ``DeadLetterAdminError`` 413 when it is larger.
    func body(of request: Request) async throws -> ByteBuffer {
        let limit = self.configuration.maximumBodySize
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw DeadLetterAdminError.tooLarge(limit)
        }
        var buffer = ByteBuffer()
        for try await chunk in request.body {
            if buffer.readableBytes + chunk.readableBytes > limit { throw DeadLetterAdminError.tooLarge(limit) }
            var chunk = chunk
            buffer.writeBuffer(&chunk)
        }
        return buffer
    }
}
