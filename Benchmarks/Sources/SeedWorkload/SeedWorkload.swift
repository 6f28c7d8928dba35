public import DeadLetters

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The workload of the Python seed the in-memory figures are compared with (an error raised and caught, a small
/// JSON payload, attempts 3, one metadata pair), shared by `dlq-benchmarks` (its rates) and `dlq-alloc-check`
/// (its allocations). Inlinable: the benchmark's loop is compiled as if it were written in its own module.
public enum SeedWorkload {
    /// The error the workload throws for an order.
    public struct OrderProcessingError: Error, CustomStringConvertible {
        public var order: Int

        @inlinable
        public init(order: Int) {
            self.order = order
        }

        @inlinable
        public var description: String { "processing failed for order \(self.order)" }
    }

    /// Processing an order: it always fails.
    @inlinable
    public static func process(_ order: Int) throws {
        throw OrderProcessingError(order: order)
    }

    /// The order's payload, made anew (50 bytes, held by `Data` in a storage object of its own).
    @inlinable
    public static func payload(_ order: Int) -> Data {
        Data("{\"order_id\":\(order),\"amount\":19.99,\"currency\":\"EUR\"}".utf8)
    }

    /// Adds a letter for each order of `orders`, each from a thrown and caught error.
    /// - Parameter payload: the payload of every letter; `nil` makes each order's own (``payload(_:)``).
    @inlinable
    public static func fill(_ queue: DeadLetterQueue, orders: Range<Int>, payload shared: Data? = nil) async throws {
        for order in orders {
            let payload = shared ?? Self.payload(order)
            do {
                try Self.process(order)
            } catch {
                try await queue.add(
                    payload: payload,
                    source: "orders",
                    error: error,
                    attempts: 3,
                    metadata: ["tenant": "acme"]
                )
            }
        }
    }

    /// Adds a letter with the error as type and message strings, as `fill` would for `order`.
    @inlinable
    public static func add(_ queue: DeadLetterQueue, message: String, payload: Data) async throws {
        try await queue.add(
            payload: payload,
            source: "orders",
            reason: .processing,
            errorType: "OrderProcessingError",
            errorMessage: message,
            attempts: 3,
            metadata: ["tenant": "acme"]
        )
    }
}
