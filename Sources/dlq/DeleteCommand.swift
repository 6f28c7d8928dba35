import ArgumentParser
import DeadLetters
import Foundation

/// `dlq delete ID…`: removes letters by id.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete dead letters by id; prints how many were deleted.",
        discussion: """
            Every id must exist: when one does not, nothing is deleted and the command fails (exit 3). To \
            remove letters by filter, with an archive, see 'dlq purge'.

            Examples:
              dlq delete 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d
              dlq list --json --source test | jq -r '.[].id' | xargs dlq delete
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "The ids of the letters to delete.")
    var ids: [String]

    func validate() throws {
        if self.ids.isEmpty { throw ValidationError("give at least one id") }
        for id in self.ids {
            if let problem = DeadLetter.idProblem(id) { throw ValidationError("the id \(problem)") }
        }
    }

    func run() async throws {
        let ids = Array(Set(self.ids)).sorted()
        let deleted = try await self.storeOptions.withQueue { queue in
            var missing: [String] = []
            // Counted, not read: deleting needs no key, even for a letter whose payload is sealed.
            for id in ids where try await queue.count(DeadLetterFilter(ids: [id])) == 0 { missing.append(id) }
            if !missing.isEmpty {
                throw CLIError.notFound(
                    "no dead letter with id \(missing.joined(separator: ", ")) (nothing was deleted)"
                )
            }
            return try await queue.delete(ids: ids, actor: CommandActor.current)
        }
        Terminal.line("\(deleted)")
    }
}
