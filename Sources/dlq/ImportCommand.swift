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

            FILE may be - for standard input, a pipe or a FIFO: such input is first copied to a temporary \
            file in the store's folder (removed at once, never left behind), since it can be read only once.

            Examples:
              dlq import orders.jsonl
              dlq import --store restored.sqlite archive.jsonl
              dlq export --store old.sqlite | dlq import --store new.sqlite -
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "The JSON Lines file, or - for standard input.", completion: .file())
    var file: String

    func run() async throws {
        // A pipe is copied beside the store first (a folder that receives the letters has room for them).
        var spoolFolder = FileManager.default.temporaryDirectory.path
        if case .sqlite(let path) = try self.storeOptions.location {
            var isFolder: ObjCBool = false
            let folder = StoreOptions.folder(of: path)
            if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue {
                spoolFolder = folder
            }
        }
        let input = try ImportInput.make(self.file, spoolFolder: spoolFolder)
        // First pass: the whole input must be valid before the store is opened for writing.
        let total = try input.validate()
        let result = try await self.storeOptions.withStore(.create) { store in
            try await Interrupts.cancellingOnInterrupt {
                let bar = ProgressBar("importing", total: total)
                defer { bar.finish() }
                let letters = ProgressSequence(base: input.letters, bar: bar, expected: total, name: input.name)
                return try await store.importLetters(letters, onConflict: .skip)
            }
        }
        Terminal.line(
            "imported \(result.inserted), skipped \(result.skipped) already present "
                + "(\(Human.count(total, "letter")) in \(input.name))"
        )
    }
}

/// Letters read from a file, reporting progress as they go, and ending with an error (so that the import,
/// all or nothing, stores none) unless exactly the letters the first pass counted were read.
struct ProgressSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == DeadLetter {
    typealias Element = DeadLetter
    let base: Base
    let bar: ProgressBar
    /// How many letters the first pass checked.
    let expected: Int
    /// The input's name in errors.
    let name: String

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let bar: ProgressBar
        let expected: Int
        let name: String
        var count = 0

        mutating func next() async throws -> DeadLetter? {
            guard let letter = try await self.base.next() else {
                if self.count != self.expected { throw self.changed(self.count) }
                return nil
            }
            self.count += 1
            if self.count > self.expected { throw self.changed(nil) }
            self.bar.update(self.count)
            return letter
        }

        private func changed(_ read: Int?) -> DeadLetterError {
            let found = read.map { "\($0) letters" } ?? "more letters"
            return DeadLetterError(
                code: .invalidFormat,
                message: "the file changed while it was imported: \(self.expected) letters were checked, then "
                    + "\(found) were read to be stored; nothing was imported",
                file: self.name
            )
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), bar: self.bar, expected: self.expected, name: self.name)
    }
}
