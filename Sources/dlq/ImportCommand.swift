import ArgumentParser
import DeadLetters
import Foundation

/// `dlq import FILE`: stores the letters of a JSON Lines file, all or nothing.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import letters from a JSON Lines file (an export or an archive), all or nothing.",
        discussion: """
            The whole file is checked first: a malformed line is reported with the file, the line and the \
            field, and the store is left unchanged. Then every letter is stored in one transaction, as it is \
            in the file (ids, times, status, history). Letters whose id is already in the store are skipped \
            and counted, so an import can be repeated.

            Examples:
              dlq import orders.jsonl
              dlq import --store restored.sqlite archive.jsonl
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "The JSON Lines file.", completion: .file())
    var file: String

    func run() async throws {
        let path = self.file
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CLIError.store("\(path): no such file")
        }
        if isFolder.boolValue { throw CLIError.store("\(path): is a folder, not a JSON Lines file") }
        // First pass: the whole file must be valid before the store is opened for writing.
        let total = try JSONLinesReader.validate(path: path)
        let result = try await self.storeOptions.withStore(.create) { store in
            try await Interrupts.cancellingOnInterrupt {
                let bar = ProgressBar("importing", total: total)
                defer { bar.finish() }
                let letters = ProgressSequence(base: JSONLinesFile(path: path), bar: bar)
                return try await store.importLetters(letters, onConflict: .skip)
            }
        }
        Terminal.line(
            "imported \(result.inserted), skipped \(result.skipped) already present (\(Human.count(total, "letter")) in \(path))"
        )
    }
}

/// Letters read from a file, reporting progress as they go.
struct ProgressSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == DeadLetter {
    typealias Element = DeadLetter
    let base: Base
    let bar: ProgressBar

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let bar: ProgressBar
        var count = 0

        mutating func next() async throws -> DeadLetter? {
            guard let letter = try await self.base.next() else { return nil }
            self.count += 1
            self.bar.update(self.count)
            return letter
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), bar: self.bar)
    }
}
