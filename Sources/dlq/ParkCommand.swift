import ArgumentParser
import DeadLetters
import Foundation

/// `dlq park`: sets letters aside now, so that retries, redrives and replays leave them alone.
struct ParkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "park",
        abstract: "Park letters now: stop retrying them and keep them; prints how many.",
        discussion: """
            Needs a selector, as purge does (a filter or --all; with none it refuses, exit 2), but no \
            confirmation: nothing is removed. Parked letters are left alone by the running service, redrive \
            and replay; 'dlq redrive --status parked' hands them back (unparks them). Each letter's history \
            gets a 'parked' entry naming who did it (DLQ_ACTOR, else user@host). A letter being run (leased) \
            is left as it is.

            Examples:
              dlq park --fingerprint 9f2c41d07a3b5e81
              dlq park --source orders --reason validation --dry-run
              dlq redrive --status parked --source orders
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Flag(help: "Select every letter.")
    var all = false

    @Flag(help: "Only count the letters that would be parked.")
    var dryRun = false

    @Option(help: ArgumentHelp("Why, in words, for the letters' history.", valueName: "text"))
    var message: String?

    func validate() throws {
        let filtered = self.filters.selectsSubset
        if !filtered, !self.all {
            throw ValidationError("park needs a selector: a filter (--source, --reason, …) or --all")
        }
        if self.all, filtered { throw ValidationError("--all selects every letter; do not combine it with filters") }
    }

    func run() async throws {
        let filter = try await self.filters.resolvedFilter(self.storeOptions)
        let (limit, dryRun, message) = (self.filters.limit, self.dryRun, self.message)
        let count = try await self.storeOptions.withQueue { queue in
            try await queue.park(filter, limit: limit, dryRun: dryRun, actor: CommandActor.current, message: message)
        }
        if dryRun {
            Terminal.line("dry run: \(Human.count(count, "letter")) would be parked; nothing changed")
        } else {
            Terminal.line("parked \(Human.count(count, "letter"))")
        }
    }
}
