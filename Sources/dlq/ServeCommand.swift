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

    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP admin API, /metrics and the web dashboard.",
        discussion: """
            Listens on 127.0.0.1:8080 by default. Listening on any other address needs a token (--token or \
            the DLQ_ADMIN_TOKEN environment variable): then every request but /healthz must send \
            'Authorization: Bearer <token>', and the dashboard asks for the token once and keeps a cookie. \
            --port 0 takes a free port. The address is printed once the server listens: \
            "dlq: serving STORE at http://HOST:PORT/ (Ctrl-C stops)". Ctrl-C (SIGINT) or SIGTERM stops it \
            gracefully.

            Routes: GET / (dashboard), GET /api/v1/dead-letters, GET|DELETE /api/v1/dead-letters/{id}, \
            POST /api/v1/redrive, POST /api/v1/purge, GET /api/v1/stats, GET /api/v1/groups, GET /metrics, \
            GET /healthz.

            Examples:
              dlq serve
              DLQ_ADMIN_TOKEN=$(openssl rand -hex 24) dlq serve --host 0.0.0.0 --port 9090
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

    func run() async throws {
        let serverConfiguration = DeadLetterAdminServer.Configuration(
            host: self.host,
            port: self.port,
            token: self.resolvedToken,
            maximumBodySize: self.maxBodySize
        )
        // Refuse a bad bind before opening the store.
        do {
            try serverConfiguration.validate()
        } catch let error as DeadLetterError {
            throw CLIError.usage(error.message)
        }
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
                configuration: serverConfiguration,
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
