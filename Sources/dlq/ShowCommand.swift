import ArgumentParser
import DeadLetters
import Foundation

/// `dlq show ID`: one letter, whole.
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one dead letter: its error, history, metadata and payload.",
        discussion: """
            Examples:
              dlq show 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d
              dlq show 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d --json
              dlq show 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d --raw > payload.bin
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "The letter's id.")
    var id: String

    @Flag(help: "Write the letter as one JSON object in the stored format.")
    var json = false

    @Flag(help: "Write the payload's bytes alone, exactly as stored.")
    var raw = false

    func validate() throws {
        if self.json, self.raw { throw ValidationError("give --json or --raw, not both") }
        if let problem = DeadLetter.idProblem(self.id) { throw ValidationError("the id \(problem)") }
    }

    func run() async throws {
        let id = self.id
        let people = !self.json && !self.raw
        let found = try await self.storeOptions.withStore(.read) { store -> DeadLetter? in
            do {
                return try await store.letter(id: id)
            } catch let error as DeadLetterError where error.code == .encryption && people {
                // For people, everything but the payload is still worth showing; the exit code stays the error's.
                let page = try await store.pageWithoutPayloads(DeadLetterFilter(ids: [id]), after: nil, limit: 1)
                guard let letter = page.letters.first else { throw error }
                Terminal.out(LetterView.detail(letter, now: Date(), sealed: error.message))
                throw error
            }
        }
        guard let letter = found else {
            throw CLIError.notFound("no dead letter with id \(id)")
        }
        if self.raw {
            Terminal.out(bytes: Array(letter.payload))
        } else if self.json {
            Terminal.line(DeadLetterJSON.string(letter))
        } else {
            Terminal.out(LetterView.detail(letter, now: Date()))
        }
    }
}
