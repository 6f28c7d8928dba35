import ArgumentParser
import DeadLetters
import Foundation

/// `dlq export`: writes the selected letters in the stored format.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export letters in the stored format: JSON Lines (default) or a JSON array.",
        discussion: """
            Writes to standard output, or to --output FILE (created with mode 0600; an existing file is never \
            overwritten). FILE is written under a hidden temporary name in its folder and appears only once the \
            export is complete, so a failed or interrupted export leaves nothing behind. Letters are read page \
            by page, so memory stays flat; the store is opened read-only. 'dlq import' reads the JSON Lines back.

            Examples:
              dlq export --output orders.jsonl --source orders
              dlq export --since 7d --format json > last-week.json
              dlq export --store old.sqlite | gzip > dead-letters.jsonl.gz
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, json
    }

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Option(
        name: [.customShort("o"), .long],
        help: ArgumentHelp("Write to this file.", valueName: "file"),
        completion: .file()
    )
    var output: String?

    @Option(help: "jsonl: one letter per line; json: one JSON array.")
    var format: Format = .jsonl

    func run() async throws {
        let filters = self.filters
        let limit = self.filters.limit
        let format: JSONLinesWriter.Format = self.format == .json ? .jsonArray : .jsonLines
        let output = self.output
        if let output { try Self.checkFolder(of: output) }
        let count = try await self.storeOptions.withStore(.read) { store in
            try await Interrupts.cancellingOnInterrupt {
                let filter = try await filters.resolvedFilter(in: store)
                let total = try await store.count(filter)
                guard let output else {
                    let writer = JSONLinesWriter.standardOutput(format: format)
                    return try await Self.export(store, filter, limit, writer, total: total, sync: false)
                }
                let (staged, descriptor) = try StagedFile.create(for: output)
                do {
                    let writer = JSONLinesWriter(
                        fileDescriptor: descriptor,
                        name: output,
                        closeWhenDone: true,
                        format: format
                    )
                    let count = try await Self.export(store, filter, limit, writer, total: total, sync: true)
                    try staged.publish()
                    return count
                } catch {
                    staged.discard()
                    throw error
                }
            }
        }
        if let output {
            Terminal.err("exported \(Human.count(count, "letter")) to \(output)\n")
        }
    }

    /// Writes the letters `filter` selects, page by page, syncs them to disk when asked, and closes the writer.
    /// Each page is read while the one before it is written (``DeadLetterStore/letters(matching:batchSize:)``).
    private static func export<Store: DeadLetterStore>(
        _ store: Store,
        _ filter: DeadLetterFilter,
        _ limit: Int?,
        _ writer: JSONLinesWriter,
        total: Int,
        sync: Bool
    ) async throws -> Int {
        defer { try? writer.close() }
        let bar = ProgressBar("exporting", total: limit.map { min($0, total) } ?? total)
        defer { bar.finish() }
        let limit = limit ?? Int.max
        if limit > 0 {
            for try await letter in store.letters(matching: filter, batchSize: min(1000, limit)) {
                try writer.write(letter)
                if writer.count >= limit { break }
                if writer.count % 1000 == 0 {
                    bar.update(writer.count)
                    try Task.checkCancellation()
                }
            }
        }
        bar.update(writer.count)
        if sync { try writer.sync() }
        try writer.close()
        return writer.count
    }

    static func checkFolder(of path: String) throws {
        var isFolder: ObjCBool = false
        let folder = StoreOptions.folder(of: path)
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw CLIError.store("\(path): the folder '\(folder)' does not exist")
        }
        if FileManager.default.fileExists(atPath: path) {
            throw CLIError.store("\(path): the file exists (dlq never overwrites an export; remove it first)")
        }
    }
}
