import DeadLetters
import Foundation
import Synchronization

/// The demo's world: an order pipeline consuming three queues, and the things that go wrong at night.
///
/// Messages are generated from a fixed seed, so every run meets the same data; timing (and so the circuit
/// breaker) varies a little from run to run.
struct DemoScenario: Sendable {
    /// One message on one of the three queues.
    struct Message: Sendable {
        var source: String
        var payload: Data
        var metadata: [String: String]
        var trouble: Trouble
    }

    /// What happens to a message in this run.
    enum Trouble: Sendable {
        case none
        /// Its payload does not decode: permanent.
        case malformed
        /// The inventory service fails this many times, then answers.
        case flakyInventory(failures: Int)
        /// The payment gateway does not answer in time (until it is scaled up).
        case gatewayTimeout
        /// The card is declined: permanent.
        case cardDeclined
    }

    static let sources = ["orders", "payments", "shipments"]

    var messages: [Message]
    /// The share of the run, by message index, during which the carrier API is down.
    var outage: Range<Int>

    init(count: Int, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var messages: [Message] = []
        messages.reserveCapacity(count)
        let tenants = ["acme", "globex", "initech", "umbrella"]
        for index in 0..<count {
            let roll = Double.random(in: 0..<1, using: &random)
            let trouble = Double.random(in: 0..<1, using: &random)
            let order = "ord-\(10_000 + index)"
            let amount = Double(Int.random(in: 500...25_000, using: &random)) / 100
            var metadata = [
                "tenant": tenants[Int.random(in: 0..<tenants.count, using: &random)],
                "message-id": "msg-\(String(UInt32.random(in: 0...UInt32.max, using: &random), radix: 16))",
                "authorization":
                    "Bearer sk_live_\(String(UInt64.random(in: 0...UInt64.max, using: &random), radix: 36))",
            ]
            let message: Message
            if roll < 0.5 {
                let sku = "SKU-\(Int.random(in: 1000...1099, using: &random))"
                var payload =
                    #"{"orderId":"\#(order)","customer":"cus-\#(4000 + index % 700)","#
                    + #""items":[{"sku":"\#(sku)","qty":\#(1 + index % 3)}],"total":\#(amount),"currency":"EUR"}"#
                var kind = Trouble.none
                if trouble < 0.025 {
                    kind = .malformed
                    switch index % 3 {
                    case 0:
                        payload =
                            #"{"orderId":"\#(order)","customer":"cus-\#(4000 + index % 700)","items":[],"currency":"EUR"}"#
                    case 1:
                        payload =
                            #"{"orderId":"\#(order)","customer":"cus-\#(4000 + index % 700)","items":[],"total":"\#(amount)","currency":"EUR"}"#
                    default:
                        payload = #"{"orderId":"\#(order)","customer":"cus-"#
                    }
                } else if trouble < 0.13 {
                    // Most recover at the second or third attempt; a few keep failing.
                    let failures = trouble < 0.035 ? 3 : (trouble < 0.09 ? 1 : 2)
                    kind = .flakyInventory(failures: failures)
                }
                metadata["sku"] = sku
                message = Message(source: "orders", payload: Data(payload.utf8), metadata: metadata, trouble: kind)
            } else if roll < 0.8 {
                let payload =
                    #"{"paymentId":"pay-\#(70_000 + index)","orderId":"\#(order)","amount":\#(amount),"#
                    + #""currency":"EUR","card":"visa-\#(1000 + index % 9000)"}"#
                var kind = Trouble.none
                if trouble < 0.045 { kind = .gatewayTimeout } else if trouble < 0.06 { kind = .cardDeclined }
                message = Message(source: "payments", payload: Data(payload.utf8), metadata: metadata, trouble: kind)
            } else {
                let payload =
                    #"{"shipmentId":"shp-\#(30_000 + index)","orderId":"\#(order)","carrier":"dhl","#
                    + #""address":{"country":"DE","postcode":"\#(10_000 + index % 89_999)"}}"#
                message = Message(source: "shipments", payload: Data(payload.utf8), metadata: metadata, trouble: .none)
            }
            messages.append(message)
        }
        self.messages = messages
        self.outage = (count * 2 / 5)..<(count * 13 / 20)
    }
}

// MARK: - The consumer and its dependencies

struct Order: Codable {
    struct Item: Codable {
        var sku: String
        var qty: Int
    }
    var orderId: String
    var customer: String
    var items: [Item]
    var total: Double
    var currency: String
}

struct Payment: Codable {
    var paymentId: String
    var orderId: String
    var amount: Double
    var currency: String
    var card: String
}

struct Shipment: Codable {
    struct Address: Codable {
        var country: String
        var postcode: String
    }
    var shipmentId: String
    var orderId: String
    var carrier: String
    var address: Address
}

/// The inventory service answered 503.
struct InventoryUnavailable: Error, CustomStringConvertible, DeadLetterReasonProviding {
    var sku: String
    var failureReason: FailureReason { .dependency }
    var description: String { "inventory service returned 503 Service Unavailable for sku \(self.sku)" }
}

/// The payment gateway did not answer in time.
struct GatewayTimeout: Error, CustomStringConvertible, DeadLetterReasonProviding {
    var orderID: String
    var failureReason: FailureReason { .timeout }
    var description: String { "payment gateway did not answer within 2000 ms (order \(self.orderID))" }
}

/// The card issuer declined the payment.
struct CardDeclined: Error, CustomStringConvertible, DeadLetterReasonProviding {
    var orderID: String
    var failureReason: FailureReason { .validation }
    var description: String { "card declined: insufficient_funds (order \(self.orderID))" }
}

/// The carrier's API is down.
struct CarrierUnavailable: Error, CustomStringConvertible, DeadLetterReasonProviding {
    var failureReason: FailureReason { .dependency }
    var description: String { "carrier API returned HTTP 503 Service Unavailable (dhl)" }
}

/// The consumer's world: which dependencies are healthy, and how often each message was tried.
final class DemoWorld: Sendable {
    /// Whether the fix is deployed: the gateway scaled up, the carrier and the inventory back.
    let fixed = Atomic<Bool>(false)
    /// Whether the carrier API is down now.
    let carrierDown = Atomic<Bool>(false)

    /// Handles one message as the service would; throws what the service meets.
    func handle(_ message: DemoScenario.Message, attempt: Int) async throws {
        // Real work takes a few milliseconds.
        try await Task.sleep(for: .microseconds(Int.random(in: 2500...6000)))
        let decoder = JSONDecoder()
        switch message.source {
        case "orders":
            let order = try decoder.decode(Order.self, from: message.payload)
            if case .flakyInventory(let failures) = message.trouble, attempt <= failures,
                !self.fixed.load(ordering: .relaxed)
            {
                throw InventoryUnavailable(sku: order.items.first?.sku ?? "?")
            }
        case "payments":
            let payment = try decoder.decode(Payment.self, from: message.payload)
            switch message.trouble {
            case .gatewayTimeout where !self.fixed.load(ordering: .relaxed):
                throw GatewayTimeout(orderID: payment.orderId)
            case .cardDeclined:
                throw CardDeclined(orderID: payment.orderId)
            default:
                break
            }
        default:
            _ = try decoder.decode(Shipment.self, from: message.payload)
            if self.carrierDown.load(ordering: .relaxed), !self.fixed.load(ordering: .relaxed) {
                throw CarrierUnavailable()
            }
        }
    }

    /// Handles a stored letter again (replay): the payload and source are all a letter needs.
    func handle(letter: DeadLetter) async throws {
        let message = DemoScenario.Message(
            source: letter.source,
            payload: letter.payload,
            metadata: letter.metadata,
            trouble: letter.reason == .validation ? .cardDeclined : .none
        )
        try await self.handle(message, attempt: Int.max)
    }
}

/// SplitMix64: the demo's seeded random source.
struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
