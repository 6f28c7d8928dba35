import ArgumentParser
import DeadLetters
import Foundation
import Synchronization

/// `dlq demo`: a night in the life of an order pipeline, through the engine, in a few seconds.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a realistic consumer through the dead-letter queue, then inspect and recover what failed.",
        discussion: """
            A service consumes order, payment and shipment messages. Some payloads are malformed (permanent), \
            the inventory service is flaky (recovered by immediate retries), the payment gateway times out, \
            and the carrier API goes down for a while (its circuit breaker opens). The demo shows what ended \
            in the store, grouped, then deploys "the fix" and replays what can be recovered. Its letters stay \
            in the store (dead-letters.sqlite by default) for you to explore.

            Examples:
              dlq demo
              dlq demo --store /tmp/demo.sqlite --messages 10000
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: ArgumentHelp("How many messages the consumer takes.", valueName: "n"))
    var messages = 3000

    @Option(help: ArgumentHelp("The seed of the generated messages.", valueName: "n"))
    var seed: UInt64 = 2026

    func validate() throws {
        if self.messages < 10 || self.messages > 1_000_000 {
            throw ValidationError("--messages must be between 10 and 1000000")
        }
    }

    func run() async throws {
        let scenario = DemoScenario(count: self.messages, seed: self.seed)
        let location = try self.storeOptions.location
        let configure: (inout DeadLetterQueue.Configuration) -> Void = { configuration in
            configuration.retryPolicy = RetryPolicy(
                immediateAttempts: 3,
                immediateBackoff: .exponential(initial: .milliseconds(2), multiplier: 2, max: .milliseconds(8)),
                delayedAttempts: 0,
                jitter: .equal
            )
            configuration.circuitBreaker = CircuitBreakerConfiguration(
                consecutiveFailures: 10,
                failureRateThreshold: nil,
                openDuration: .milliseconds(150),
                halfOpenProbes: 1,
                closeAfterSuccesses: 1
            )
        }
        try await self.storeOptions.withQueue(.migrate, configure: configure) { queue in
            try await Interrupts.cancellingOnInterrupt {
                try await DemoRun(queue: queue, scenario: scenario, location: "\(location)").run()
            }
        }
    }
}

/// The demo's steps and what it prints.
struct DemoRun: Sendable {
    let queue: DeadLetterQueue
    let scenario: DemoScenario
    let location: String
    let world = DemoWorld()
    let style = Style.stdout

    struct Tally {
        var done = 0
        var firstTry = 0
        var recovered = 0
        var deadLettered = 0
        var circuitOpenings = 0
        var skippedByCircuit = 0
    }

    func run() async throws {
        let start = Date()
        let earlier = try await self.queue.count()
        let s = self.style
        Terminal.line(s.bold("dlq demo") + " · an order pipeline has a bad night · store: \(self.location)")
        Terminal.line()
        let count = self.scenario.messages.count
        Terminal.line(
            self.step(1, "Consuming \(Self.number(count)) messages from orders, payments and shipments")
        )
        Terminal.line(
            s.dim("   each through queue.process(): 3 immediate attempts with backoff, a circuit breaker per source")
        )
        let clock = ContinuousClock()
        let began = clock.now
        let tally = try await self.consume()
        let elapsed = (clock.now - began).seconds
        self.printTally(tally, count: count, elapsed: elapsed)

        let filter = DeadLetterFilter(since: start.addingTimeInterval(-1))
        // On a store that held letters before this run, the commands shown select this run's, as the demo does.
        let since = earlier > 0 ? " --since \(Timestamp.format(start.addingTimeInterval(-1)))" : ""
        let summary = try await self.queue.summary(filter)
        Terminal.line()
        Terminal.line(self.step(2, "What failed, and why") + s.dim("   $ dlq stats\(since)"))
        Terminal.out(Self.indent(SummaryView.render(summary, now: Date(), style: s)))
        let groups = try await self.queue.groups(filter, limit: 8)
        Terminal.line()
        Terminal.line(self.step(3, "The same failures, grouped by fingerprint") + s.dim("   $ dlq groups\(since)"))
        let reasons = try await GroupView.reasons(of: groups, filter: filter, in: self.queue.store)
        Terminal.out(Self.indent(GroupView.table(groups, reasons: reasons, now: Date(), style: s)))

        Terminal.line()
        Terminal.line(self.step(4, "The fix: the payment gateway is scaled up, the carrier API is back"))
        var replayFilter = filter
        replayFilter.reasons = [FailureReason.timeout.rawValue, FailureReason.dependency.rawValue]
        let world = self.world
        world.fixed.store(true, ordering: .relaxed)
        Terminal.line(
            s.dim(
                "   replayed in process through the demo's own consumer: queue.replay(filter, options: "
                    + "ReplayOptions(concurrency: 8)) { letter in try await consume(letter) }"
            )
        )
        let matched = try await self.queue.count(replayFilter)
        let bar = ProgressBar("   replaying", total: matched)
        var options = ReplayOptions(concurrency: 8, maxConsecutiveFailures: 50)
        options.actor = "dlq demo"
        let report = try await self.queue.replay(
            replayFilter,
            options: options,
            progress: { bar.update($0.succeeded + $0.failed) },
            handler: { letter in try await world.handle(letter: letter) }
        )
        bar.finish()
        Terminal.line(
            "   matched \(report.matched)  " + s.green("succeeded \(report.succeeded)")
                + "  failed \(report.failed)  skipped \(report.skipped)"
        )

        let left = try await self.queue.summary(filter)
        Terminal.line()
        Terminal.line(
            self.step(5, "\(Human.count(left.total, "letter")) left: bad data that needs a person, not a retry")
                + s.dim("   $ dlq list\(since)")
        )
        let page = try await self.queue.letters(filter, limit: 5)
        Terminal.out(Self.indent(LetterView.table(page.letters, now: Date(), style: s)))
        if left.total > page.letters.count {
            Terminal.line(s.dim("   … and \(left.total - page.letters.count) more"))
        }
        let took = Date().timeIntervalSince(start)
        Terminal.line()
        Terminal.line(
            s.bold("Recovered \(Self.number(tally.recovered + report.succeeded)) of ")
                + s.bold("\(Self.number(tally.recovered + tally.deadLettered)) failing messages")
                + ", kept \(left.total) with their full context, lost none"
                + s.dim(String(format: " (%.1fs)", took))
        )
        self.printNextSteps(sample: page.letters.first?.id)
    }

    private func consume() async throws -> Tally {
        let tally = SharedBox(Tally())
        let next = SharedBox(0)
        let messages = self.scenario.messages
        let outage = self.scenario.outage
        let queue = self.queue
        let world = self.world
        let bar = ProgressBar("   consuming", total: messages.count)
        defer { bar.finish() }
        let style = Style.stderr
        let events = queue.events()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events where event.kind == .circuitOpened && event.source == "shipments" {
                    tally.withLock { $0.circuitOpenings += 1 }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { workers in
                for _ in 0..<8 {
                    workers.addTask {
                        while true {
                            try Task.checkCancellation()
                            let index = next.withLock { value in
                                defer { value += 1 }
                                return value
                            }
                            guard index < messages.count else { return }
                            world.carrierDown.store(outage.contains(index), ordering: .relaxed)
                            let message = messages[index]
                            let attempts = Atomic<Int>(0)
                            let result = try await queue.process(
                                payload: message.payload,
                                source: message.source,
                                metadata: message.metadata,
                                contentType: "application/json"
                            ) { _ in
                                let attempt = attempts.wrappingAdd(1, ordering: .relaxed).newValue
                                try await world.handle(message, attempt: attempt)
                            }
                            let tried = attempts.load(ordering: .relaxed)
                            let snapshot = tally.withLock { tally in
                                tally.done += 1
                                switch result {
                                case .succeeded: if tried > 1 { tally.recovered += 1 } else { tally.firstTry += 1 }
                                case .deadLettered:
                                    tally.deadLettered += 1
                                    if tried == 0 { tally.skippedByCircuit += 1 }
                                }
                                return tally
                            }
                            let circuit = queue.circuitState(of: "shipments")
                            var detail = style.green("✓ \(snapshot.firstTry + snapshot.recovered)") + " "
                            detail += style.yellow("↻ \(snapshot.recovered)") + " "
                            detail += style.red("✗ \(snapshot.deadLettered)")
                            if circuit == .open { detail += "  " + style.red(style.bold("shipments circuit OPEN")) }
                            bar.update(snapshot.done, detail: detail)
                        }
                    }
                }
                try await workers.waitForAll()
            }
            group.cancelAll()
        }
        return tally.withLock { $0 }
    }

    private func printTally(_ tally: Tally, count: Int, elapsed: Double) {
        let s = self.style
        let rate = Double(count) / max(elapsed, 0.001)
        let rows: [(String, String, String)] = [
            (
                "processed", Self.number(count),
                String(format: "in %.1fs", elapsed) + " (\(Self.number(Int(rate))) messages/s)"
            ),
            (s.green("✓ succeeded"), Self.number(tally.firstTry), "at the first attempt"),
            (
                s.yellow("↻ recovered"), Self.number(tally.recovered),
                "by an immediate retry (flaky inventory service): never became dead letters"
            ),
            (
                s.red("✗ dead-lettered"), Self.number(tally.deadLettered),
                "stored durably with payload, error, attempts and metadata (secrets redacted)"
            ),
            (
                s.magenta("⚡ circuit"), Self.number(tally.circuitOpenings),
                "openings on shipments: \(tally.skippedByCircuit) messages stored without calling the dead carrier API"
            ),
        ]
        var table = Table([.init(title: ""), .init(title: "", alignment: .right), .init(title: "")], style: s)
        for row in rows { table.append([row.0, row.1, row.2]) }
        let rendered = table.render().split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
        Terminal.out(Self.indent(rendered.joined(separator: "\n")))
    }

    private func printNextSteps(sample: String?) {
        let s = self.style
        Terminal.line()
        Terminal.line(s.bold("Next, try:"))
        let id = sample ?? "<id>"
        let steps: [(String, String)] = [
            ("dlq list", "the letters left, oldest first (--json for scripts)"),
            ("dlq show \(id)", "one letter: its error, attempts, metadata and payload"),
            ("dlq stats", "counts by reason, source, error type, status and age"),
            ("dlq groups", "the same failure, grouped"),
            ("dlq replay --reason decoding --exec 'cat' --dry-run", "what a replay would run, before it runs"),
            ("dlq export --output dead-letters.jsonl", "everything as JSON Lines; dlq import reads it back"),
        ]
        let width = steps.map(\.0.count).max() ?? 0
        for (command, what) in steps {
            Terminal.line(
                "  " + s.cyan(command.padding(toLength: width, withPad: " ", startingAt: 0)) + "  " + s.dim(what)
            )
        }
    }

    private func step(_ number: Int, _ title: String) -> String {
        self.style.bold(self.style.blue("▸ \(number).") + " " + title)
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "" : "   " + $0 }
            .joined(separator: "\n")
    }

    static func number(_ value: Int) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return out
    }
}

/// A value shared by tasks, behind a lock.
final class SharedBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        self.mutex = Mutex(value)
    }

    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R {
        self.mutex.withLock { value in body(&value) }
    }
}
