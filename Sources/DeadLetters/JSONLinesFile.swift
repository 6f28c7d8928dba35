/// The letters of a JSON Lines file, as an `AsyncSequence` that streams the file with flat memory: what
/// ``DeadLetterStore/importLetters(_:onConflict:)`` takes to import an export or restore an archive.
///
/// The file is opened when iteration starts; each iteration reads it again from the start. A malformed line
/// ends the iteration with ``DeadLetterError`` (code `invalidFormat`, the file, the line and the field), so a
/// store's import, which is all or nothing, stores nothing. Check the file first with
/// ``JSONLinesReader/validate(path:maximumLineLength:)`` to report a bad line before opening a transaction.
public struct JSONLinesFile: AsyncSequence, Sendable {
    public typealias Element = DeadLetter

    /// The file's path.
    public let path: String
    /// The longest line accepted, in bytes.
    public let maximumLineLength: Int

    /// The letters of the file at `path`.
    /// - Parameters:
    ///   - path: the file's path.
    ///   - maximumLineLength: the longest line accepted, in bytes. Default 64 MiB.
    public init(path: String, maximumLineLength: Int = JSONLinesReader.defaultMaximumLineLength) {
        self.path = path
        self.maximumLineLength = maximumLineLength
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(path: self.path, maximumLineLength: self.maximumLineLength)
    }

    /// Reads the file a line at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let path: String
        let maximumLineLength: Int
        var reader: JSONLinesReader?
        var finished = false

        public mutating func next() async throws -> DeadLetter? {
            if self.finished { return nil }
            do {
                if self.reader == nil {
                    self.reader = try JSONLinesReader(path: self.path, maximumLineLength: self.maximumLineLength)
                }
                if let (_, letter) = try self.reader?.next() { return letter }
            } catch {
                self.finish()
                throw error
            }
            self.finish()
            return nil
        }

        private mutating func finish() {
            self.finished = true
            self.reader?.close()
            self.reader = nil
        }
    }
}
