import ArgumentParser
import DeadLetters
import Foundation

/// `dlq edit ID --payload-file F`: replaces a letter's payload, keeping a trace of the old one.
struct EditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Replace a letter's payload (fix it, then retry it with --redrive).",
        discussion: """
            The new payload comes from --payload-file (- for standard input). The letter's history gets an \
            'edited' entry with the previous payload's size and SHA-256 and who did it (DLQ_ACTOR, else \
            user@host); its error and first failure are kept. With --redrive the letter is also made due now \
            for the running service. A payload sealed with a key that is not configured (DLQ_ENCRYPTION_KEY) \
            cannot be edited (exit 4); a letter being run (leased) is refused (exit 5); an unknown id exits 3.

            Examples:
              dlq show 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d --raw > f.json
              dlq edit 0193a1c2-7b4e-7a10-9c1d-2f3e4a5b6c7d --payload-file f.json --redrive
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "The letter's id.")
    var id: String

    @Option(
        help: ArgumentHelp("The new payload's file; - reads standard input.", valueName: "file"),
        completion: .file()
    )
    var payloadFile: String

    @Option(help: ArgumentHelp("The new payload's media type (default: keep the current one).", valueName: "type"))
    var contentType: String?

    @Flag(help: "Also hand the letter back to the running service now.")
    var redrive = false

    func run() async throws {
        let payload: Data
        if self.payloadFile == "-" {
            payload = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: self.payloadFile, isDirectory: &isFolder) else {
                throw CLIError.store("\(self.payloadFile): no such file")
            }
            guard !isFolder.boolValue else { throw CLIError.store("\(self.payloadFile): is a folder, not a file") }
            guard let data = FileManager.default.contents(atPath: self.payloadFile) else {
                throw CLIError.store("\(self.payloadFile): cannot read the payload file")
            }
            payload = data
        }
        let (id, contentType, redrive) = (self.id, self.contentType, self.redrive)
        let edited = try await self.storeOptions.withQueue { queue in
            try await queue.edit(
                id: id,
                payload: payload,
                contentType: contentType,
                redrive: redrive,
                actor: CommandActor.current
            )
        }
        let due = redrive ? "; due now for the running service" : ""
        Terminal.line("edited \(edited.id): payload of \(Human.bytes(payload.count))\(due)")
    }
}
