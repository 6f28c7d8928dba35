import ArgumentParser
import DeadLetters
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `dlq`: the operators' command for a dead-letter store.
@main
struct DLQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect, recover and clean up dead letters: the items your service could not process.",
        discussion: """
            Every command works on one store: --store PATH|URL (before or after the command), else the \
            DLQ_STORE environment variable, else dead-letters.sqlite in the working directory. A SQLite \
            file's folder must exist; postgres://user:pass@host:port/db selects PostgreSQL. Commands that only \
            read (list, show, stats, groups, export, check) open a SQLite store read-only, so a read-only copy \
            can be inspected; 'dlq check' reads a whole store file and says what is damaged.

            Filters, shared by the commands that select letters: --source, --reason, --error-type, \
            --fingerprint (or a unique prefix of 8 or more characters), --status, --since, --until (ISO \
            8601, a date, today, yesterday, or an age like 30m, 2h, 7d; a time or date without a zone is UTC: \
            2026-12-05T22:00 is 22:00 UTC), --min-attempts, --search TEXT (in the error message), --limit. A \
            --source, --reason, --error-type or --fingerprint that no letter has is named on standard error, \
            with the values that exist.

            Output: aligned tables for people (colours only on a terminal, never with NO_COLOR), progress on \
            standard error only when it is a terminal; --json writes one JSON document on standard output in \
            the stored format, and nothing else.

            Encrypted payloads: with DLQ_ENCRYPTION_KEY (32 bytes in base64: head -c 32 /dev/urandom | base64) \
            payloads are sealed with AES-GCM in the store and shown in the clear; earlier keys that should \
            still open payloads go in DLQ_ENCRYPTION_PREVIOUS_KEYS (base64, separated by commas). Without a \
            key, a sealed payload is refused (exit 4), never shown as ciphertext. Tables (list, \
            stats, groups) and delete need no key.

            Examples (each command's --help has more):
              dlq add --source orders --reason decoding --error-message 'bad JSON' < m.json
              dlq list --source orders --since 2h
              dlq show 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d
              dlq stats --json
              dlq groups --status dead
              dlq redrive --fingerprint 9f2c41d07a3b5e81
              dlq replay --source orders --exec './reprocess.sh' --dry-run
              dlq replay --source orders --rate 10/s --exec './reprocess.sh'
              dlq park --fingerprint 9f2c41d07a3b5e81
              dlq edit 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d --payload-file f.json --redrive
              dlq delete 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d
              dlq purge --status dead --until 30d --yes
              dlq export --source orders --output orders.jsonl
              dlq import orders.jsonl
              dlq export --store old.sqlite | dlq import --store new.sqlite -
              dlq check --store /var/lib/orders/dead-letters.sqlite
              dlq serve --port 8080
              dlq migrate --store postgres://dlq:secret@db:5432/dlq

            Exit status: 0 success; 1 a replay left failures, or a purge was declined; 2 usage error (bad \
            flag or value, a port in use); 3 a letter id was not found; 4 a store or file problem (missing \
            folder, not a store, not a regular file, a damaged store, a store that cannot be written, \
            malformed import file, store unreachable, a payload that cannot be decrypted); 5 another error; \
            130 interrupted. Errors are one line on standard error: "dlq: error: …".

            Start with: dlq demo
            Shell completion: dlq --generate-completion-script bash|zsh|fish
            """,
        version: "0.1.0",
        subcommands: [
            AddCommand.self, ListCommand.self, ShowCommand.self, StatsCommand.self, GroupsCommand.self,
            RedriveCommand.self, ReplayCommand.self, ParkCommand.self, EditCommand.self, DeleteCommand.self,
            PurgeCommand.self, ExportCommand.self, ImportCommand.self, CheckCommand.self, ServeCommand.self,
            DemoCommand.self, MigrateCommand.self, OpsCommand.self, InstancesCommand.self,
        ]
    )

    @OptionGroup var storeOptions: StoreOptions

    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        let status = await Self.execute(Array(CommandLine.arguments.dropFirst()))
        terminate(status)
    }

    /// Parses and runs `arguments`; returns the exit status, having written any error as one line on stderr.
    static func execute(_ arguments: [String]) async -> Int32 {
        do {
            var command = try Self.parse(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return ExitStatus.success
        } catch let exit as SilentExit {
            return exit.status
        } catch let error as CLIError {
            return Self.fail(error.exitCode, error.message)
        } catch let error as DeadLetterError {
            let (status, message) = ExitStatus.classify(error)
            return Self.fail(status, message)
        } catch is CancellationError {
            return Self.fail(ExitStatus.interrupted, "interrupted")
        } catch {
            let code = Self.atHelpWidth { Self.exitCode(for: error) }
            if code == .success {
                // --help, --version, --generate-completion-script: the text goes to standard output.
                Terminal.line(Self.atHelpWidth { Self.fullMessage(for: error, columns: Self.helpColumns) })
                return ExitStatus.success
            }
            let message = Self.atHelpWidth { Self.message(for: error) }
            if code == .validationFailure {
                if let unknown = Self.unknownCommand(arguments) { return Self.fail(ExitStatus.usage, unknown) }
                return Self.fail(ExitStatus.usage, message + Self.helpHint(arguments))
            }
            let (status, text) = ExitStatus.classify(error)
            return Self.fail(status, message.isEmpty ? text : message)
        }
    }

    /// Writes `dlq: error: MESSAGE` as one line on standard error and returns `status`.
    static func fail(_ status: Int32, _ message: String) -> Int32 {
        let oneLine = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        let style = Style.stderr
        Terminal.err(style.red(style.bold("dlq: error:")) + " " + oneLine + "\n")
        return status
    }

    /// `parseAsRoot`, except that an option given a negative number (`--limit -1`, which the parser reads as a
    /// flag `-1`, then says "Missing value") is parsed again with the number as its value (`--limit=-1`), so that
    /// the option says what it takes.
    private static func parse(_ arguments: [String]) throws -> any ParsableCommand {
        do {
            return try Self.parseAsRoot(arguments)
        } catch {
            let message = Self.atHelpWidth { Self.message(for: error) }
            guard message.hasPrefix("Missing value for '--") else { throw error }
            let name = message.dropFirst("Missing value for '".count).prefix { $0 != " " && $0 != "'" }
            guard
                let index = arguments.indices.dropLast().first(where: {
                    arguments[$0] == name && Self.isNegativeNumber(arguments[$0 + 1])
                })
            else { throw error }
            var joined = arguments
            joined[index] = "\(name)=\(arguments[index + 1])"
            joined.remove(at: index + 1)
            return try Self.parseAsRoot(joined)
        }
    }

    /// `-1`, `-0.5`, `-5/s`, `-2h`: a minus sign, then a digit or a point.
    private static func isNegativeNumber(_ argument: String) -> Bool {
        let characters = Array(argument.prefix(2))
        return characters.count == 2 && characters[0] == "-" && (characters[1].isNumber || characters[1] == ".")
    }

    /// The width help is written at: the terminal's, but never under 80 columns, so that no example (each at
    /// most 80 columns) is broken in the middle; a narrower terminal folds long lines without breaking them.
    /// `COLUMNS` when set, else the terminal's width; 80 when standard output is not a terminal.
    static var helpColumns: Int {
        if let text = getenv("COLUMNS"), let columns = Int(String(cString: text)), columns > 0 {
            return max(80, columns)
        }
        return Terminal.stdoutIsTerminal ? max(80, Terminal.width) : 80
    }

    /// Runs `body` with `COLUMNS` set to ``helpColumns``: argument-parser renders the help text (at `COLUMNS`)
    /// even to classify an error, and under about 27 columns it traps (debug builds) or renders nothing. Called
    /// only once the command has ended, when nothing else reads the environment.
    static func atHelpWidth<T>(_ body: () -> T) -> T {
        let saved = getenv("COLUMNS").map { String(cString: $0) }
        setenv("COLUMNS", "\(Self.helpColumns)", 1)
        defer {
            if let saved { setenv("COLUMNS", saved, 1) } else { unsetenv("COLUMNS") }
        }
        return body()
    }

    /// The message for a mistyped command (`dlq lsit`): the first word that is not an option, when it names no
    /// command, with the closest commands.
    static func unknownCommand(_ arguments: [String]) -> String? {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { return nil }
            if argument == "--store" {
                index += 2
                continue
            }
            if argument.hasPrefix("-") {
                index += 1
                continue
            }
            let names = Self.configuration.subcommands.map { $0._commandName }
            if names.contains(argument) || argument == "help" { return nil }
            if let suggestion = Suggestion.phrase(Suggestion.closest(to: argument, among: names)) {
                return "unknown command '\(argument)'; \(suggestion) (see 'dlq --help')"
            }
            return "unknown command '\(argument)'; the commands are \(names.joined(separator: ", ")) "
                + "(see 'dlq --help')"
        }
        return nil
    }

    private static func helpHint(_ arguments: [String]) -> String {
        let names = Set(Self.configuration.subcommands.map { $0._commandName })
        if let command = arguments.first(where: { names.contains($0) }) {
            return " (see 'dlq \(command) --help')"
        }
        return " (see 'dlq --help')"
    }
}

/// Ends the process with `status` (the global `exit`, which `ParsableCommand.exit(withError:)` hides inside
/// command types).
func terminate(_ status: Int32) -> Never {
    exit(status)
}
