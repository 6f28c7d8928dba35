import ArgumentParser
import DeadLetters
import Foundation

/// `dlq add`: stores one dead letter described on the command line.
struct AddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Store a dead letter; prints its new id alone.",
        discussion: """
            The payload comes from --payload, --payload-file, or standard input when neither is given. The \
            letter is stored as 'dead' (it waits for people) and expires after 7 days. Metadata keys that \
            look like secrets (password, token, authorization, …) are redacted.

            Example:
              dlq add --source orders --reason validation --error-type DecodingError \\
                --error-message "keyNotFound: total" --metadata tenant=acme --payload '{"id":42}'
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: ArgumentHelp("Where the item came from: a queue, a topic, a job name.", valueName: "source"))
    var source: String

    @Option(
        help: ArgumentHelp(
            "Why it failed: validation, decoding, processing, timeout, dependency, … or your own name.",
            valueName: "reason"
        )
    )
    var reason: String

    @Option(help: ArgumentHelp("The error's message.", valueName: "message"))
    var errorMessage: String

    @Option(help: ArgumentHelp("The error's type.", valueName: "type"))
    var errorType: String = DeadLetter.defaultErrorType

    @Option(help: ArgumentHelp("How many times it was tried: 1 to 1000000.", valueName: "n"))
    var attempts: Int = 1

    @Option(help: ArgumentHelp("Context to keep, as key=value (repeatable).", valueName: "key=value"))
    var metadata: [String] = []

    @Option(help: ArgumentHelp("The payload's media type, e.g. application/json.", valueName: "type"))
    var contentType: String?

    @Option(help: ArgumentHelp("The payload as text.", valueName: "text"))
    var payload: String?

    @Option(help: ArgumentHelp("Read the payload from this file.", valueName: "path"), completion: .file())
    var payloadFile: String?

    func validate() throws {
        if self.source.isEmpty { throw ValidationError("--source must not be empty") }
        if self.reason.isEmpty { throw ValidationError("--reason must not be empty") }
        if self.errorType.isEmpty { throw ValidationError("--error-type must not be empty") }
        if !(1...DeadLetter.maximumCount).contains(self.attempts) {
            throw ValidationError("--attempts must be from 1 to \(DeadLetter.maximumCount), not \(self.attempts)")
        }
        if self.payload != nil, self.payloadFile != nil {
            throw ValidationError("give --payload or --payload-file, not both")
        }
        _ = try self.parsedMetadata()
    }

    func parsedMetadata() throws -> [String: String] {
        var result: [String: String] = [:]
        for entry in self.metadata {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ValidationError("--metadata takes key=value, not '\(entry)'")
            }
            result[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        return result
    }

    func readPayload() throws -> Data {
        if let payload = self.payload { return Data(payload.utf8) }
        if let path = self.payloadFile {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIError.store("\(path): cannot read the payload file")
            }
            return data
        }
        if Terminal.stdinIsTerminal {
            Terminal.err("dlq add: reading the payload from standard input (end it with Ctrl-D)\n")
        }
        return FileHandle.standardInput.readDataToEndOfFile()
    }

    func run() async throws {
        let payload = try self.readPayload()
        let metadata = try self.parsedMetadata()
        let (source, reason, errorType, errorMessage) = (self.source, self.reason, self.errorType, self.errorMessage)
        let (attempts, contentType) = (self.attempts, self.contentType)
        let id = try await self.storeOptions.withQueue(.create) { queue in
            try await queue.add(
                payload: payload,
                source: source,
                reason: FailureReason(rawValue: reason),
                errorType: errorType,
                errorMessage: errorMessage,
                attempts: attempts,
                metadata: metadata,
                contentType: contentType
            )
        }
        Terminal.line(id)
    }
}
