import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Testing

/// A queue on a seeded memory store, a manual clock, a Prometheus registry, and the admin server over a real
/// socket (HummingbirdTesting's `.live` mode binds 127.0.0.1 on a free port).
struct AdminHarness: Sendable {
    let clock: ManualClock
    let store: any DeadLetterStore
    let registry = PrometheusCollectorRegistry()
    let queue: DeadLetterQueue
    let server: DeadLetterAdminServer
    let letters: [DeadLetter]

    static let token = "s3cret-token-for-tests"
    static let scriptPayload = #"<script>document.title='pwned'</script>"#

    /// - Parameters:
    ///   - token: the server's token; none by default.
    ///   - maximumBodySize: the server's body limit.
    ///   - seed: whether to store the standard letters.
    ///   - store: the store; a new memory store by default.
    init(
        token: String? = nil,
        tokens: [AdminToken] = [],
        maximumBodySize: Int = 4096,
        seed: Bool = true,
        store: (any DeadLetterStore)? = nil,
        requestTimeout: Duration = .seconds(30)
    ) async throws {
        // The clock is 20 hours after the letters' epoch, so ages are known.
        let clock = ManualClock(now: DeadLetterFixtures.epoch.addingTimeInterval(72_000))
        self.clock = clock
        self.store = store ?? MemoryDeadLetterStore()
        var configuration = DeadLetterQueue.Configuration()
        configuration.metricsFactory = PrometheusMetricsFactory(registry: self.registry)
        configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        self.queue = try DeadLetterQueue(store: self.store, configuration: configuration, clock: clock)
        self.letters = seed ? Self.seedLetters() : []
        if !self.letters.isEmpty { _ = try await self.store.append(self.letters) }
        var server = DeadLetterAdminServer.Configuration(
            host: "127.0.0.1",
            port: 0,
            token: token,
            maximumBodySize: maximumBodySize
        )
        server.requestTimeout = requestTimeout
        server.tokens = tokens
        self.server = try DeadLetterAdminServer(
            queue: self.queue,
            registry: self.registry,
            configuration: server,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            clock: clock
        )
    }

    /// 12 letters: 6 orders/validation (dead), 3 payments/timeout (retrying), 2 emails/processing (parked),
    /// and one orders/decoding letter whose payload is a `<script>`, failing one second apart from the epoch.
    static func seedLetters() -> [DeadLetter] {
        DeadLetterFixtures.letters(count: 12, seed: 7) { index, letter in
            switch index {
            case 0..<6:
                letter.source = "orders"
                letter.reason = .validation
                letter.errorType = "DecodingError"
                letter.errorMessage = "keyNotFound: total in order \(index)"
                letter.attempts = 1
            case 6..<9:
                letter.source = "payments"
                letter.reason = .timeout
                letter.errorType = "TimeoutError"
                letter.errorMessage = "timed out after 30s"
                letter.status = .retrying
                letter.nextAttemptAt = DeadLetterFixtures.epoch.addingTimeInterval(7200)
                letter.attempts = 3
            case 9..<11:
                letter.source = "emails"
                letter.reason = .processing
                letter.errorType = "SMTPError"
                letter.errorMessage = "mailbox unavailable"
                letter.status = .parked
                letter.attempts = 5
                letter.replayCount = 3
            default:
                letter.source = "orders"
                letter.reason = .decoding
                letter.errorType = "HTMLError"
                letter.errorMessage = "bad <b>markup</b> & \"quotes\""
                letter.contentType = "text/html"
                letter.payload = Data(Self.scriptPayload.utf8)
                letter.metadata = ["tenant": "<img src=x onerror=alert(1)>"]
            }
            letter.fingerprint = Fingerprint.compute(errorType: letter.errorType, message: letter.errorMessage)
        }
    }

    /// Runs `test` against the server listening on a real socket.
    func run<Value: Sendable>(
        _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        try await self.server.makeApplication().test(.live, test)
    }
}

extension TestResponse {
    var text: String { String(buffer: self.body) }

    /// The body as a JSON object.
    func object() throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(self.text.utf8)) as? [String: Any])
    }

    /// The `error.code` of a JSON error answer.
    func errorCode() throws -> String? {
        let object = try self.object()
        return (object["error"] as? [String: Any])?["code"] as? String
    }
}

extension TestClientProtocol {
    /// Sends a request and returns the response.
    func send(
        _ method: HTTPRequest.Method,
        _ uri: String,
        headers: HTTPFields = [:],
        body: String? = nil
    ) async throws -> TestResponse {
        try await self.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    /// POSTs JSON.
    func postJSON(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await self.send(.post, uri, headers: headers, body: body)
    }

    /// POSTs a form as the dashboard does.
    func postForm(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/x-www-form-urlencoded"
        return try await self.send(.post, uri, headers: headers, body: body)
    }
}

/// The value of `name="csrf"` in a dashboard page.
func formToken(in html: String) throws -> String {
    let marker = #"name="csrf" value=""#
    let start = try #require(html.range(of: marker)).upperBound
    let end = try #require(html[start...].firstIndex(of: "\""))
    return String(html[start..<end])
}

let bearer: HTTPFields = [.authorization: "Bearer \(AdminHarness.token)"]
