import ArgumentParser
import DeadLetters
import Foundation

/// `dlq purge`: removes letters by filter, archiving them first when asked.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Remove the letters a filter selects (or --expired, or --all), optionally archiving them first.",
        discussion: """
            Needs a selector: a filter, --expired (letters past their expiry) or --all; with none it refuses \
            (exit 2). On a terminal it shows the count and asks; declining exits 1 with nothing changed. \
            Anywhere else --yes is required. --archive FILE appends the letters to FILE as JSON Lines (synced \
            to disk) before they are deleted; 'dlq import FILE' restores them. A new FILE appears only with \
            its first letters in it, and a purge that fails before deleting anything leaves FILE as it was.

            Examples:
              dlq purge --source orders --until 30d --archive orders-archive.jsonl
              dlq purge --expired --yes
              dlq purge --all --archive everything.jsonl --yes
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Flag(help: "Select the letters whose expiry has passed.")
    var expired = false

    @Flag(help: "Select every letter.")
    var all = false

    @Option(
        help: ArgumentHelp("Append the letters to this JSON Lines file first.", valueName: "file"),
        completion: .file()
    )
    var archive: String?

    @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation.")
    var yes = false

    @Flag(help: "Only count the letters that would be removed.")
    var dryRun = false

    func validate() throws {
        let filtered = self.filters.selectsSubset
        if !filtered, !self.expired, !self.all {
            throw ValidationError("purge needs a selector: a filter (--source, --reason, …), --expired or --all")
        }
        if self.all, filtered || self.expired {
            throw ValidationError("--all selects every letter; do not combine it with filters or --expired")
        }
    }

    func run() async throws {
        var selection = try await self.filters.resolvedFilter(self.storeOptions)
        if self.expired { selection.expiresBefore = Date() }
        let filter = selection
        let limit = self.filters.limit
        let (yes, dryRun, archivePath) = (self.yes, self.dryRun, self.archive)
        if let archivePath {
            let folder = StoreOptions.folder(of: archivePath)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                throw CLIError.store("\(archivePath): the folder '\(folder)' does not exist")
            }
        }
        let location = try self.storeOptions.location
        let removed: Int = try await self.storeOptions.withQueue { queue in
            let matched = try await queue.purge(filter, limit: limit, dryRun: true)
            if dryRun || matched == 0 { return matched }
            if !yes {
                guard Terminal.stdinIsTerminal else {
                    throw CLIError.usage("purge would remove \(Human.count(matched, "letter")); add --yes to confirm")
                }
                let style = Style.stderr
                Terminal.err(
                    "Remove \(style.bold(Human.count(matched, "letter"))) from \(location)"
                        + (archivePath.map { " (archiving them to \($0))" } ?? " (no archive)") + "? [y/N] "
                )
                let answer = (readLine() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
                guard answer == "y" || answer == "yes" else {
                    Terminal.err("dlq: purge declined; nothing changed\n")
                    throw SilentExit(status: ExitStatus.incomplete)
                }
            }
            let archive = archivePath.map { StagedArchive(path: $0) }
            let removedSoFar = SharedBox(0)
            do {
                return try await Interrupts.cancellingOnInterrupt {
                    let bar = ProgressBar("purging", total: matched)
                    defer { bar.finish() }
                    return try await queue.purge(
                        filter,
                        limit: limit,
                        archive: archive,
                        actor: CommandActor.current,
                        progress: { removed in
                            removedSoFar.withLock { $0 = removed }
                            bar.update(removed)
                        }
                    )
                }
            } catch {
                // Nothing deleted: every archived letter is still in the store, so the archive goes back to how
                // it was, and the purge can simply be run again.
                if removedSoFar.withLock({ $0 }) == 0 { archive?.rollBack() }
                throw error
            }
        }
        if dryRun {
            Terminal.line("dry run: \(Human.count(removed, "letter")) would be removed; nothing changed")
        } else {
            Terminal.line(
                "purged \(Human.count(removed, "letter"))"
                    + (archivePath.map { removed > 0 ? " (archived to \($0))" : "" } ?? "")
            )
        }
    }
}
