#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes letters in the stored format to a file or to standard output, buffered: one ``DeadLetterJSON``
/// object per line (JSON Lines), or one JSON array.
///
/// A file it creates gets mode 0600 (letters hold payloads). It never replaces an existing file: it creates a
/// new one, or appends when asked. Call ``close()`` when done: it writes what is buffered and, for
/// ``Format/jsonArray``, the closing bracket. ``sync()`` makes what was written durable.
///
/// The writer is not thread-safe; use it from one task at a time.
public final class JSONLinesWriter {
    /// What the writer produces.
    public struct Format: Sendable, Hashable {
        private enum Base: Sendable, Hashable { case jsonLines, jsonArray }
        private let base: Base

        /// One letter per line, each line a JSON object: the form of exports, imports and archives.
        public static let jsonLines = Format(base: .jsonLines)
        /// One JSON array of letters, one letter per line between `[` and `]`.
        public static let jsonArray = Format(base: .jsonArray)

        var isArray: Bool { self.base == .jsonArray }
    }

    /// The file's name in errors.
    public let name: String
    /// How many letters were written.
    public private(set) var count = 0

    private var fd: Int32
    private let closeWhenDone: Bool
    private let format: Format
    private let created: Bool
    private var buffer: [UInt8] = []
    private var folderSynced = false
    private static let flushThreshold = 256 << 10

    /// Creates a file and writes to it, or appends to it.
    /// - Parameters:
    ///   - path: the file's path; its folder must exist.
    ///   - append: `false` (the default) to create a new file, refusing one that exists; `true` to append,
    ///     creating the file when it does not exist.
    ///   - format: the output's form. Default ``Format/jsonLines``.
    /// - Throws: ``DeadLetterError`` with code `io` when the file exists (and `append` is `false`) or cannot
    ///   be opened.
    public convenience init(path: String, append: Bool = false, format: Format = .jsonLines) throws {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_EXCL)
        var created = !append
        var fd: Int32 = -1
        if append {
            // Create it exclusively first, to know whether the folder needs syncing.
            fd = POSIXFile.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
            created = fd >= 0
        }
        if fd < 0 { fd = POSIXFile.open(path, flags, 0o600) }
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "the file exists; not replacing it" : POSIXFile.lastError()
            throw DeadLetterError(code: .io, message: "cannot create: \(reason)", file: path)
        }
        self.init(fileDescriptor: fd, name: path, closeWhenDone: true, format: format, created: created)
    }

    /// Writes to an open file descriptor, standard output (1) for example.
    /// - Parameters:
    ///   - fileDescriptor: the descriptor to write to.
    ///   - name: the name errors give, `"stdout"` for example.
    ///   - closeWhenDone: whether ``close()`` closes the descriptor. Default `false`.
    ///   - format: the output's form. Default ``Format/jsonLines``.
    public convenience init(
        fileDescriptor: Int32,
        name: String,
        closeWhenDone: Bool = false,
        format: Format = .jsonLines
    ) {
        self.init(
            fileDescriptor: fileDescriptor,
            name: name,
            closeWhenDone: closeWhenDone,
            format: format,
            created: false
        )
    }

    private init(fileDescriptor: Int32, name: String, closeWhenDone: Bool, format: Format, created: Bool) {
        self.fd = fileDescriptor
        self.name = name
        self.closeWhenDone = closeWhenDone
        self.format = format
        self.created = created
        self.buffer.reserveCapacity(Self.flushThreshold + 64 << 10)
        if format.isArray { self.buffer.append(UInt8(ascii: "[")) }
    }

    /// A writer to standard output.
    /// - Parameter format: the output's form. Default ``Format/jsonLines``.
    public static func standardOutput(format: Format = .jsonLines) -> JSONLinesWriter {
        JSONLinesWriter(fileDescriptor: 1, name: "stdout", format: format)
    }

    deinit {
        // Best effort for a writer nobody closed; `close()` is the way to learn about errors.
        try? self.close()
    }

    /// Writes one letter (buffered).
    /// - Throws: ``DeadLetterError`` with code `io` when writing the buffer out fails or the writer is closed.
    public func write(_ letter: DeadLetter) throws {
        guard self.fd >= 0 else { throw DeadLetterError(code: .io, message: "the writer is closed", file: self.name) }
        if self.format.isArray {
            if self.count > 0 { self.buffer.append(UInt8(ascii: ",")) }
            self.buffer.append(UInt8(ascii: "\n"))
        }
        DeadLetterJSON.encode(letter, into: &self.buffer)
        if !self.format.isArray { self.buffer.append(UInt8(ascii: "\n")) }
        self.count += 1
        if self.buffer.count >= Self.flushThreshold { try self.flush() }
    }

    /// Writes letters (buffered).
    /// - Throws: ``DeadLetterError`` with code `io` when writing fails.
    public func write(contentsOf letters: some Sequence<DeadLetter>) throws {
        for letter in letters { try self.write(letter) }
    }

    /// Hands what is buffered to the operating system.
    /// - Throws: ``DeadLetterError`` with code `io` when writing fails.
    public func flush() throws {
        guard !self.buffer.isEmpty, self.fd >= 0 else { return }
        let failure = self.buffer.withUnsafeBytes { POSIXFile.writeAll(self.fd, $0) }
        self.buffer.removeAll(keepingCapacity: true)
        if let failure { throw DeadLetterError(code: .io, message: "cannot write: \(failure)", file: self.name) }
    }

    /// Flushes and makes everything written durable (`fsync`; for a file it created, the folder too).
    /// - Throws: ``DeadLetterError`` with code `io` when writing or syncing fails.
    public func sync() throws {
        try self.flush()
        guard self.fd >= 0 else { return }
        if let failure = POSIXFile.sync(self.fd) {
            throw DeadLetterError(code: .io, message: "cannot sync: \(failure)", file: self.name)
        }
        if self.created, !self.folderSynced {
            if let failure = POSIXFile.syncFolder(of: self.name) {
                throw DeadLetterError(code: .io, message: "cannot sync the folder: \(failure)", file: self.name)
            }
            self.folderSynced = true
        }
    }

    /// Writes what is buffered (and the closing bracket of a JSON array) and closes the file. Calling it again
    /// does nothing.
    /// - Throws: ``DeadLetterError`` with code `io` when writing or closing fails.
    public func close() throws {
        guard self.fd >= 0 else { return }
        if self.format.isArray { self.buffer.append(contentsOf: self.count > 0 ? [10, 93, 10] : [93, 10]) }
        defer {
            if self.closeWhenDone { _ = POSIXFile.close(self.fd) }
            self.fd = -1
        }
        try self.flush()
    }
}
