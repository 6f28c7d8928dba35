import DeadLetters
import DeadLettersSQLite
import Foundation

struct Order: Codable, Sendable {
    var id: Int
    var total: Double
}

struct InvalidOrder: Error, DeadLetterReasonProviding {
    var failureReason: FailureReason { .validation }  // permanent: stored at once, never retried
}

// A durable queue on dead-letters.sqlite in the working directory.
let queue = try DeadLetterQueue.sqlite()

// Wrap the work: retried in process with backoff; what still fails is kept with its whole error.
let result = try await queue.process(Order(id: 42, total: -1), source: "orders") { order in
    guard order.total >= 0 else { throw InvalidOrder() }
    return "charged order \(order.id)"
}
print(result.value ?? "dead-lettered as \(result.deadLetterID!)")

// How letters of "orders" are retried later (delayed retries, redrive, replay).
queue.register(source: "orders", as: Order.self) { order in
    print("retrying order \(order.id)")
}

// See what failed and why.
let summary = try await queue.summary()
print("\(summary.total) dead letters, by reason: \(summary.byReason)")
for group in try await queue.groups() {
    print("\(group.count) × \(group.errorType): \(group.sampleMessage)")
}

// Once the cause is fixed, hand them back, at most 50 a second.
let report = try await queue.replay(
    DeadLetterFilter(sources: ["orders"], reasons: ["validation"]),
    options: ReplayOptions(rate: 50, dryRun: true)
) { letter in
    _ = try JSONDecoder().decode(Order.self, from: letter.payload)
}
print("a replay would take \(report.matched) letters")

// In a service, run the queue beside your own services for delayed retries and expiry:
// try await ServiceGroup(services: [queue, consumer], gracefulShutdownSignals: [.sigterm], logger: logger).run()
