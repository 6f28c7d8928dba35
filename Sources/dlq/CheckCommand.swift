import ArgumentParser
import DeadLetters
import DeadLettersSQLite
import Foundation

/// `dlq check`: reads a whole SQLite store and says whether it is sound.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a SQLite store file: SQLite's integrity check, the schema, the running totals, every row.",
        discussion: """
            SQLite notices damage only in the pages a command reads, so a damaged file can go on answering \
            and taking letters. 'dlq check' reads all of it, read-only: SQLite's integrity check (every page, \
            every index against its table), the schema version, the running totals that counts and stats \
            read against the letters themselves, and every letter's row. It prints what it found on standard \
            output; a store with a problem exits 4 (one line on standard error says so). When any command \
            meets damage (SQLite: "database disk image is malformed"), it writes nothing more and names \
            'dlq check'.

            Examples:
              dlq check
              dlq check --store /var/lib/orders/dead-letters.sqlite
              dlq check --store old.sqlite && dlq export --store old.sqlite -o backup.jsonl
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        guard case .sqlite(let path) = try self.storeOptions.location else {
            throw CLIError.usage(
                "dlq check reads SQLite store files; a PostgreSQL server checks its own storage (see amcheck)"
            )
        }
        try StoreOptions.checkStorePath(path, access: .read)
        let check = try SQLiteStoreCheck.run(path: path)
        var summary: [String] = []
        if let version = check.schemaVersion { summary.append("schema version \(version)") }
        if let letters = check.letters { summary.append(Human.count(letters, "letter")) }
        let style = Style.stdout
        if check.isSound {
            Terminal.line(
                ([path + ": " + style.green("sound")] + summary).joined(separator: " · ")
                    + " · SQLite's integrity check, the running totals and every letter's row are fine"
            )
        } else {
            let problems = Human.count(check.problems.count, "problem")
            Terminal.line(([path + ": " + style.red(problems)] + summary).joined(separator: " · "))
            for problem in check.problems { Terminal.line("  ✗ \(problem)") }
        }
        for note in check.notes { Terminal.line("  note: \(note)") }
        guard check.isSound else {
            throw CLIError.store(
                "\(path): the store is damaged (\(Human.count(check.problems.count, "problem")), listed above); "
                    + "restore a backup, or export what can still be read (dlq export) and import it into a new store"
            )
        }
    }
}
