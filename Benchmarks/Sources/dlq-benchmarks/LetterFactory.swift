import DeadLetters
import Foundation

/// Makes realistic letters, the same for a given index in every run: about 300-byte JSON payloads, 5 sources,
/// 6 reasons, error messages with varying numbers that group into 50 fingerprints, 85% dead, 10% retrying,
/// 5% parked, first failures spread over the last 48 hours.
struct LetterFactory: Sendable {
    /// Bump when the letters change, so that cached stores are rebuilt.
    static let version = 1

    static let sources = ["orders", "payments", "emails", "webhooks", "inventory"]
    static let reasons: [FailureReason] = [.validation, .decoding, .processing, .timeout, .dependency, .rateLimited]
    static let errorTypes = ["DecodingError", "HTTPClientError", "TimeoutError", "ValidationError", "DatabaseError"]
    /// Ten messages; with five error types, 50 fingerprints. `#` is replaced by a number.
    static let phrases = [
        "keyNotFound: total at offset #",
        "upstream answered 503 Service Unavailable after # ms",
        "request timed out after # ms waiting for the payment gateway",
        "field quantity must be positive, got -#",
        "deadlock detected on row # of table orders",
        "customer # has no billing address",
        "rate limit exceeded: # requests in the last minute",
        "connection reset by peer after # bytes",
        "duplicate key value violates unique constraint on order #",
        "unexpected end of input at line #",
    ]
    /// Text that `search` finds in one phrase of ten.
    static let searchText = "timed out"

    /// A random-looking but fixed number for `index` and `salt` (SplitMix64).
    static func mix(_ index: Int, _ salt: UInt64) -> UInt64 {
        var z = UInt64(truncatingIfNeeded: index) &+ salt &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The fingerprints of the 50 templates, computed once.
    let fingerprints: [String]
    let ids = DeadLetterIDGenerator()
    let now: Date

    init(now: Date = Date()) {
        self.now = now
        var fingerprints: [String] = []
        for template in 0..<50 {
            let (errorType, message) = Self.message(template: template, number: 1)
            fingerprints.append(Fingerprint.compute(errorType: errorType, message: message))
        }
        self.fingerprints = fingerprints
    }

    /// Each phrase split at its `#`, so that a message is two concatenations (Foundation's
    /// `replacingOccurrences` cost the durable `add` figures a few microseconds per letter).
    static let phraseParts: [(head: String, tail: String)] = phrases.map { phrase in
        let mark = phrase.firstIndex(of: "#")!
        return (String(phrase[..<mark]), String(phrase[phrase.index(after: mark)...]))
    }

    static func message(template: Int, number: Int) -> (errorType: String, message: String) {
        let parts = self.phraseParts[template % 10]
        return (self.errorTypes[template / 10], parts.head + String(number) + parts.tail)
    }

    /// The error type and message of letter `index`.
    /// Adds letter number `index` through `queue.add`, as the durable `add` figures do: its source, reason and
    /// failure, tenant metadata.
    static func add(_ index: Int, to queue: DeadLetterQueue, payload: Data) async throws {
        let (type, message) = Self.failure(index)
        try await queue.add(
            payload: payload,
            source: Self.source(index),
            reason: Self.reason(index),
            errorType: type,
            errorMessage: message,
            metadata: ["tenant": "acme"]
        )
    }

    static func failure(_ index: Int) -> (errorType: String, message: String) {
        let template = Int(self.mix(index, 3) % 50)
        return self.message(template: template, number: Int(self.mix(index, 4) % 100_000))
    }

    static func source(_ index: Int) -> String { self.sources[Int(self.mix(index, 1) % 5)] }
    static func reason(_ index: Int) -> FailureReason { self.reasons[Int(self.mix(index, 2) % 6)] }

    /// An about 300-byte JSON payload.
    static func payload(_ index: Int) -> Data {
        let sku = self.mix(index, 5) % 10_000
        let customer = self.mix(index, 6) % 100_000
        let text = """
            {"orderId":"ord-\(index)","customerId":"cust-\(customer)","currency":"EUR",\
            "items":[{"sku":"SKU-\(sku)","quantity":3,"unitPrice":"19.99"},\
            {"sku":"SKU-\(sku + 7)","quantity":1,"unitPrice":"249.00"}],\
            "shipping":{"method":"express","country":"DE","postcode":"10115"},\
            "total":"308.97","createdAt":"2026-11-23T10:00:00.000Z","note":"leave at the door, ring twice"}
            """
        return Data(text.utf8)
    }

    /// Letter `index` of a set of `count`: ids and first failures ordered by index over the last 48 hours.
    func letter(_ index: Int, of count: Int, payload: Data? = nil) -> DeadLetter {
        let span = 48.0 * 3600
        let failedAt = self.now.addingTimeInterval(-span + span * Double(index) / Double(max(count, 1)))
        let template = Int(Self.mix(index, 3) % 50)
        let (errorType, message) = Self.message(template: template, number: Int(Self.mix(index, 4) % 100_000))
        let roll = Self.mix(index, 7) % 100
        let status: DeadLetterStatus = roll < 85 ? .dead : (roll < 95 ? .retrying : .parked)
        return DeadLetter(
            id: self.ids.next(at: failedAt),
            source: Self.source(index),
            reason: Self.reason(index),
            errorType: errorType,
            errorMessage: message,
            attempts: 1 + Int(Self.mix(index, 8) % 5),
            firstFailedAt: failedAt,
            lastFailedAt: failedAt.addingTimeInterval(7),
            nextAttemptAt: status == .retrying ? self.now.addingTimeInterval(3600) : nil,
            status: status,
            fingerprint: self.fingerprints[template],
            metadata: ["tenant": "acme", "region": "eu-west-1"],
            contentType: "application/json",
            payload: payload ?? Self.payload(index)
        )
    }

    /// Letters `range` of a set of `count`.
    func letters(_ range: Range<Int>, of count: Int) -> [DeadLetter] {
        range.map { self.letter($0, of: count) }
    }
}
