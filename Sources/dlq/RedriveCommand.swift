import ArgumentParser
import DeadLetters
import Foundation

/// `dlq redrive`: hands the selected letters back to the running service.
struct RedriveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redrive",
        abstract: "Hand letters back to the running service now; prints how many.",
        discussion: """
            The selected letters become 'retrying' and due now, so the service's queue (DeadLetterQueue.run) \
            takes them at its next poll, through the handler registered for their source. Parked letters are \
            left alone unless --status parked selects them (they are unparked). --dry-run only counts. Each \
            letter's history gets a 'redriven' (or 'unparked') entry naming who did it: DLQ_ACTOR, else \
            user@host.

            Examples:
              dlq redrive --source orders --reason timeout --dry-run
              dlq redrive --fingerprint 9f2c41d07a3b5e81
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Flag(help: "Only count the letters that would be redriven.")
    var dryRun = false

    func run() async throws {
        let filter = try await self.filters.resolvedFilter(self.storeOptions)
        let (limit, dryRun) = (self.filters.limit, self.dryRun)
        let count = try await self.storeOptions.withQueue { queue in
            try await queue.redrive(filter, limit: limit, dryRun: dryRun, actor: CommandActor.current)
        }
        Terminal.line("\(count)")
    }
}
