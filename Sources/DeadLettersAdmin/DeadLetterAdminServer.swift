public import DeadLetters
public import Hummingbird
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A ready admin server: the ``DeadLetterAdminRoutes`` of a queue in a Hummingbird application, as a `Service`.
///
/// `dlq serve` runs it in a `ServiceGroup` that shuts it down gracefully on SIGINT and SIGTERM; the server itself
/// installs no signal handler.
///
/// ```swift
/// let server = try DeadLetterAdminServer(queue: queue, registry: registry, configuration: .init(port: 8080))
/// let group = ServiceGroup(services: [queue, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public struct DeadLetterAdminServer: Service {
    /// Where the server listens and how it guards itself.
    public struct Configuration: Sendable {
        /// The address to listen on. Default `127.0.0.1`; any address that is not loopback needs a ``token``.
        public var host: String
        /// The port to listen on; 0 takes a free one. Default 8080.
        public var port: Int
        /// The token every request but `/healthz` must carry; `nil` for none. Default `nil`.
        public var token: String?
        /// Named tokens with roles; see ``DeadLetterAdminRoutes/Configuration/tokens``. Default none.
        public var tokens: [AdminToken] = []
        /// The largest request body accepted, in bytes. Default 1 MiB.
        public var maximumBodySize: Int
        /// How long a read may take before it is answered 503 `timeout`. Default 30 s.
        public var requestTimeout: Duration = .seconds(30)
        /// How long `/healthz` and `/metrics` wait for the store. Default 1.5 s.
        public var healthTimeout: Duration = .milliseconds(1500)

        /// Creates a configuration.
        /// - Parameters:
        ///   - host: the address to listen on; `127.0.0.1` by default.
        ///   - port: the port; 8080 by default.
        ///   - token: the bearer token; none by default.
        ///   - maximumBodySize: the largest request body; 1 MiB by default.
        public init(
            host: String = "127.0.0.1",
            port: Int = 8080,
            token: String? = nil,
            maximumBodySize: Int = 1 << 20
        ) {
            self.host = host
            self.port = port
            self.token = token
            self.maximumBodySize = maximumBodySize
        }

        /// Whether `host` is a loopback address (`127.0.0.0/8`, `::1` or `localhost`).
        public static func isLoopback(_ host: String) -> Bool {
            let host = host.lowercased()
            if host == "localhost" || host == "::1" || host == "[::1]" { return true }
            let parts = host.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
        }

        /// Checks every value; a non-loopback ``host`` without a ``token`` is refused.
        /// - Throws: ``DeadLetters/DeadLetterError`` `invalidConfiguration` naming the field.
        public func validate() throws {
            if self.host.isEmpty {
                throw DeadLetterError(code: .invalidConfiguration, message: "must not be empty", field: "host")
            }
            if !(0...65535).contains(self.port) {
                throw DeadLetterError(code: .invalidConfiguration, message: "must be 0 to 65535", field: "port")
            }
            var routes = DeadLetterAdminRoutes.Configuration(token: self.token)
            routes.tokens = self.tokens
            try AdminToken.validate(routes.allTokens)
            if self.token == nil, self.tokens.isEmpty, !Self.isLoopback(self.host) {
                throw DeadLetterError(
                    code: .invalidConfiguration,
                    message: "refusing to listen on \(self.host) without a token: anyone who can reach it could "
                        + "read, redrive and delete dead letters; set a token (--token or DLQ_ADMIN_TOKEN) or "
                        + "listen on 127.0.0.1",
                    field: "token"
                )
            }
        }
    }

    /// The routes the server answers.
    public let routes: DeadLetterAdminRoutes
    /// The configuration, validated.
    public let configuration: Configuration
    let logger: Logger
    let onServerRunning: @Sendable (Int) async -> Void

    /// Creates the server.
    /// - Parameters:
    ///   - queue: the queue to serve.
    ///   - registry: the Prometheus registry the queue's metrics go to, for `/metrics`; none by default.
    ///   - configuration: where to listen and the token.
    ///   - logger: where the server logs; a logger labelled `dead-letters.admin` by default.
    ///   - clock: where the time comes from; the system's by default.
    ///   - onServerRunning: called with the port once the server listens (useful with port 0).
    /// - Throws: ``DeadLetters/DeadLetterError`` `invalidConfiguration` (a non-loopback host without a token, a
    ///   bad value) or `io` (the dashboard's templates cannot be read).
    public init(
        queue: DeadLetterQueue,
        registry: PrometheusCollectorRegistry? = nil,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "dead-letters.admin"),
        clock: some DeadLetterClock = SystemDeadLetterClock(),
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        var routes = DeadLetterAdminRoutes.Configuration(
            token: configuration.token,
            maximumBodySize: configuration.maximumBodySize
        )
        routes.tokens = configuration.tokens
        routes.requestTimeout = configuration.requestTimeout
        routes.healthTimeout = configuration.healthTimeout
        self.routes = try DeadLetterAdminRoutes(queue: queue, registry: registry, configuration: routes, clock: clock)
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    /// The Hummingbird application: the routes, with JSON 404 answers for unknown paths.
    public func makeApplication() -> some ApplicationProtocol {
        let router = Router(context: AdminRequestContext.self)
        router.add(middleware: AdminNotFoundMiddleware(routes: self.routes))
        self.routes.register(on: router)
        let onServerRunning = self.onServerRunning
        // `HEAD` is answered wherever `GET` is: routed as `GET`, the answer keeps its headers (its
        // `Content-Length` among them) and drops its body.
        let routed = router.buildResponder()
        let responder = CallbackResponder<AdminRequestContext> { request, context in
            guard request.method == .head else { return try await routed.respond(to: request, context: context) }
            var head = request.head
            head.method = .get
            var response = try await routed.respond(to: Request(head: head, body: request.body), context: context)
            response.body = ResponseBody(contentLength: response.body.contentLength) { writer in
                try await writer.finish(nil)
            }
            return response
        }
        return Application(
            responder: responder,
            server: .http1(
                configuration: .init(additionalChannelHandlers: [AdminMalformedRequestHandler()])
            ),
            configuration: .init(
                address: .hostname(self.configuration.host, port: self.configuration.port),
                serverName: "dlq"
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: self.logger
        )
    }

    /// Serves until graceful shutdown.
    /// - Throws: ``DeadLetters/DeadLetterError`` `invalidConfiguration` with field `port` (the port is in use, or
    ///   needs privileges) or `host` (the address is not this machine's) when the server cannot listen.
    public func run() async throws {
        do {
            try await self.makeApplication().run()
        } catch let error as IOError {
            throw self.listenError(error) ?? error
        }
    }

    /// Says why the server cannot listen, naming the address, instead of the system call's name.
    func listenError(_ error: IOError) -> DeadLetterError? {
        let host = self.configuration.host
        let address = (host.contains(":") ? "[\(host)]" : host) + ":\(self.configuration.port)"
        switch error.errnoCode {
        case EADDRINUSE:
            return DeadLetterError(
                code: .invalidConfiguration,
                message: "cannot listen on \(address): the port \(self.configuration.port) is already in use by "
                    + "another program",
                field: "port"
            )
        case EACCES:
            return DeadLetterError(
                code: .invalidConfiguration,
                message: "cannot listen on \(address): permission denied (ports below 1024 need privileges)",
                field: "port"
            )
        case EADDRNOTAVAIL:
            return DeadLetterError(
                code: .invalidConfiguration,
                message: "cannot listen on \(address): the address is not one of this machine's",
                field: "host"
            )
        default:
            return nil
        }
    }
}

extension DeadLetterAdminServer: CustomStringConvertible {
    /// The server and where it listens, for the service group's logs.
    public var description: String { "DeadLetterAdminServer(\(self.configuration.host):\(self.configuration.port))" }
}

/// Answers what no route takes with the API's JSON errors: a path no route has with 404, a method its route
/// does not take (`CONNECT`, `OPTIONS`, `PROPFIND`, …) with 405 and `Allow`. A browser asking for a dashboard
/// page gets the dashboard's HTML error page instead.
struct AdminNotFoundMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: DeadLetterAdminRoutes

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError where error.status == .notFound {
            let path = request.uri.path
            let answer: DeadLetterAdminError
            if let allowed = self.routes.allowedMethods(at: path) {
                answer = .methodNotAllowed(
                    request.method,
                    allowed: allowed.contains(.get) ? allowed + [.head] : allowed
                )
            } else {
                answer = .notFound("no such path: \(DeadLetterAdminRoutes.shortened(path))")
            }
            let relative = path.dropFirst(self.routes.configuration.basePath.count)
            let isAPI = relative.hasPrefix("/api/") || relative == "/metrics" || relative == "/healthz"
            if !isAPI, request.method == .get || request.method == .post,
                AdminSecurityMiddleware<Context>.wantsHTML(request),
                var page = self.routes.views.errorPage(answer)
            {
                DashboardViews.addSecurityHeaders(to: &page.headers)
                return page
            }
            return try answer.response(from: request, context: context)
        }
    }
}
