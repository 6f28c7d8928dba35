import ArgumentParser
import DeadLetters
import Foundation

/// `dlq redrive`: hands the selected letters back to the running service, as a recorded operation.
struct RedriveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redrive",
        abstract: "Hand letters back to the running service, as an operation you can follow and cancel.",
        discussion: """
            The selected letters become 'retrying' and due now (with --rate, spread out: the i-th falls due i/N \
            seconds from now), so the service's queue (DeadLetterQueue.run) takes them at its pace, through \
            the handler registered for their source. The letters selected now are the operation's frozen set: \
            letters that fail later are not swept in. Follow it with dlq ops show OP; dlq ops cancel OP returns \
            the letters not yet run to 'dead'. Parked letters are left alone unless --status parked selects \
            them (they are unparked). --dry-run only counts and records nothing. Each letter's history gets a \
            'redriven' (or 'unparked') entry naming who did it: DLQ_ACTOR, else user@host.

            A source that no running service handles (see dlq instances) gets a warning on standard error: its \
            letters wait until such a service starts. --json writes {"matched", "operation", "warnings"}.

            Examples:
              dlq redrive --source orders --reason timeout --dry-run
              dlq redrive --fingerprint 9f2c41d07a3b5e81
              dlq redrive --source orders --rate 10/s
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Flag(help: "Only count the letters that would be redriven.")
    var dryRun = false

    @Option(
        help: ArgumentHelp("Spread the letters' next attempts: 10/s, 600/m, 3600/h.", valueName: "N/s"),
        transform: RateArgument.parse
    )
    var rate: RateArgument?

    @Flag(help: "Write {\"matched\", \"operation\", \"warnings\"} as JSON.")
    var json = false

    func run() async throws {
        let filter = try await self.filters.resolvedFilter(self.storeOptions)
        let (limit, dryRun, rate) = (self.filters.limit, self.dryRun, self.rate?.perSecond)
        let (matched, operation, lastDueAt, warnings) = try await self.storeOptions.withQueue { queue in
            if dryRun {
                let count = try await queue.redrive(filter, limit: limit, dryRun: true)
                return (count, DeadLetterOperation?.none, Date?.none, [String]())
            }
            let redrive = try await queue.startRedrive(filter, limit: limit, rate: rate, actor: CommandActor.current)
            let unhandled = (try? await queue.unhandledSources(redrive.sources)) ?? []
            let warnings = unhandled.map {
                "no running service handles source '\($0)'; its letters wait until one starts (see dlq instances)"
            }
            return (redrive.redriven, redrive.operation, redrive.lastDueAt, warnings)
        }
        let now = Date()
        if self.json {
            let operationJSON = operation.map { DeadLetterJSON.operation($0, now: now) } ?? "null"
            let warningsJSON = JSONOutput.array(warnings.map { DeadLetterJSON.quoted($0) })
            Terminal.line(#"{"matched":\#(matched),"operation":\#(operationJSON),"warnings":\#(warningsJSON)}"#)
        } else if dryRun {
            Terminal.line("dry run: \(Human.count(matched, "letter")) would be redriven; nothing was changed")
        } else {
            var line = "redriven \(Human.count(matched, "letter"))"
            if let operation { line += " · operation \(operation.id)" }
            if let lastDueAt, lastDueAt > now.addingTimeInterval(0.5) {
                line +=
                    " · the last falls due at \(Timestamp.format(lastDueAt)) (\(Human.relative(lastDueAt, now: now)))"
            } else if matched > 0 {
                line += " · due now"
            }
            Terminal.line(line)
        }
        for warning in warnings { Terminal.err("dlq: warning: \(warning)\n") }
    }
}
