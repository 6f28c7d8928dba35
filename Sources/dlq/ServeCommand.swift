import ArgumentParser
import DeadLetters
import DeadLettersAdmin
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `dlq serve`: the HTTP admin API, `/metrics`, `/healthz` and the web dashboard over a store, until SIGINT or
/// SIGTERM shuts it down gracefully.
struct ServeCommand: AsyncParsableCommand {
    /// The environment variable holding the token when `--token` is not given.
    static let tokenEnvironmentKey = "DLQ_ADMIN_TOKEN"
    /// The environment variable holding named tokens when `--tokens-file` is not given.
    static let tokensEnvironmentKey = "DLQ_TOKENS"

    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP admin API, /metrics and the web dashboard.",
        discussion: """
            Listens on 127.0.0.1:8080 by default. Listening on any other address needs a token (--token or \
            the DLQ_ADMIN_TOKEN environment variable): then every request but /healthz must send \
            'Authorization: Bearer <token>', and the dashboard asks for the token once and keeps a cookie. \
            Named tokens with roles: --tokens-file FILE (or DLQ_TOKENS) holds one 'name role token' per \
            line (DLQ_TOKENS may separate them with ';'); '#' starts a comment. Roles: viewer (reads \
            everything but payloads), operator (payloads too; redrive, park, unpark, edit, cancel an \
            operation), admin (purge and delete too). A request beyond its token's role is refused with 403 \
            naming the role it needs; the token's name is who acted in the letters' history and the \
            operations. A single --token is named admin, with the admin role. \
            --port 0 takes a free port. The address is printed once the server listens: \
            "dlq: serving STORE at http://HOST:PORT/ (Ctrl-C stops)". Ctrl-C (SIGINT) or SIGTERM stops it \
            gracefully.

            Routes: GET / (dashboard), GET /api/v1/dead-letters, GET|DELETE /api/v1/dead-letters/{id}, \
            POST /api/v1/redrive, POST /api/v1/park, POST /api/v1/purge, GET /api/v1/stats, \
            GET /api/v1/timeline, GET /api/v1/groups, GET /api/v1/operations[/{id}], \
            POST /api/v1/operations/{id}/cancel, GET /api/v1/instances, GET /metrics, GET /healthz.

            Examples:
              dlq serve
              DLQ_ADMIN_TOKEN=$(openssl rand -hex 24) dlq serve --host 0.0.0.0 --port 9090
              dlq serve --host 0.0.0.0 --tokens-file /etc/dlq/tokens
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: ArgumentHelp("The address to listen on.", valueName: "address"))
    var host: String = "127.0.0.1"

    @Option(help: ArgumentHelp("The port to listen on (0: a free one).", valueName: "port"))
    var port: Int = 8080

    @Option(
        help: ArgumentHelp(
            "The token requests must carry (env DLQ_ADMIN_TOKEN); needed off loopback.",
            valueName: "token"
        )
    )
    var token: String?

    @Option(
        help: ArgumentHelp(
            "A file of named tokens with roles, one 'name role token' per line (env DLQ_TOKENS).",
            valueName: "file"
        )
    )
    var tokensFile: String?

    @Option(help: ArgumentHelp("The largest request body, in bytes.", valueName: "bytes"))
    var maxBodySize: Int = 1 << 20

    func validate() throws {
        if !(0...65535).contains(self.port) { throw ValidationError("--port must be 0 to 65535") }
        if self.maxBodySize < 1 { throw ValidationError("--max-body-size must be at least 1") }
        if self.host.isEmpty { throw ValidationError("--host must not be empty") }
    }

    /// `--token`, else `DLQ_ADMIN_TOKEN`; an empty value is no token.
    var resolvedToken: String? {
        if let token = self.token { return token.isEmpty ? nil : token }
        let value = ProcessInfo.processInfo.environment[Self.tokenEnvironmentKey]
        return value?.isEmpty == false ? value : nil
    }

    /// `--tokens-file`, else `DLQ_TOKENS`, parsed; none when neither is given.
    func resolvedTokens() throws -> [AdminToken] {
        if let path = self.tokensFile {
            let text: String
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                guard let decoded = String(data: data, encoding: .utf8) else {
                    throw CLIError.usage("--tokens-file \(path): not UTF-8 text")
                }
                text = decoded
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError.usage("--tokens-file \(path): cannot be read (\(Self.reason(error)))")
            }
            return try AdminToken.parse(text, source: path)
        }
        guard let value = ProcessInfo.processInfo.environment[Self.tokensEnvironmentKey], !value.isEmpty else {
            return []
        }
        return try AdminToken.parse(value, source: Self.tokensEnvironmentKey)
    }

    /// Why a file could not be read, in a few words.
    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
            let code = POSIXErrorCode(rawValue: Int32(underlying.code))
        {
            return String(cString: strerror(code.rawValue))
        }
        return nsError.localizedDescription
    }

    func run() async throws {
        var serverConfiguration = DeadLetterAdminServer.Configuration(
            host: self.host,
            port: self.port,
            token: self.resolvedToken,
            maximumBodySize: self.maxBodySize
        )
        // Refuse a bad bind or bad tokens before opening the store.
        do {
            serverConfiguration.tokens = try self.resolvedTokens()
            try serverConfiguration.validate()
        } catch let error as DeadLetterError {
            throw CLIError.usage(error.message)
        }
        let configuration = serverConfiguration
        let registry = PrometheusCollectorRegistry()
        var logger = Logger(label: "dlq.serve")
        logger.logLevel = .info
        let serverLogger = logger
        let host = self.host
        let location = try self.storeOptions.location.description
        let useRegistry: (inout DeadLetterQueue.Configuration) -> Void = {
            $0.metricsFactory = PrometheusMetricsFactory(registry: registry)
        }
        try await self.storeOptions.withQueue(.existing, configure: useRegistry) { queue in
            let server = try DeadLetterAdminServer(
                queue: queue,
                registry: registry,
                configuration: configuration,
                logger: serverLogger
            ) { port in
                let shownHost = host.contains(":") ? "[\(host)]" : host
                Terminal.line("dlq: serving \(location) at http://\(shownHost):\(port)/ (Ctrl-C stops)")
            }
            let group = ServiceGroup(
                configuration: .init(
                    services: [server],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: serverLogger
                )
            )
            do {
                try await group.run()
            } catch let error as DeadLetterError where error.field == "port" || error.field == "host" {
                let hint =
                    error.field == "port"
                    ? "choose another with --port, or --port 0 for a free one"
                    : "choose an address of this machine with --host"
                throw CLIError.usage("\(error.message); \(hint)")
            }
        }
    }
}
