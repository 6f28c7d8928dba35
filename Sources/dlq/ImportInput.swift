import DeadLetters
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What `dlq import` reads: a file, or `-` for standard input, opened once and read twice from that one
/// descriptor: a first pass checks every line, the second stores the letters.
///
/// A pipe, a FIFO, a process substitution (`<(…)`, `/dev/stdin` on a pipe) or a device can be read only once,
/// so it is first copied into a temporary file (mode 0600, unlinked at once, so that nothing is ever left
/// behind) in the store's folder, or the system's temporary folder for PostgreSQL. A regular file is read
/// where it is, from the offset it was opened at.
final class ImportInput: @unchecked Sendable {
    // @unchecked Sendable: every property is a constant; the descriptor is read by one pass at a time.

    /// The input's name in messages: the path, or "stdin".
    let name: String
    private let descriptor: Int32
    private let start: off_t

    private init(name: String, descriptor: Int32, start: off_t) {
        self.name = name
        self.descriptor = descriptor
        self.start = start
    }

    deinit {
        close(self.descriptor)
    }

    /// Opens `argument` (a path, or `-`), copying input that cannot be read twice into `spoolFolder`.
    /// - Throws: ``CLIError`` (store) when the file is missing, a folder, or cannot be read or copied.
    static func make(_ argument: String, spoolFolder: String) throws -> ImportInput {
        let name = argument == "-" ? "stdin" : argument
        let fd: Int32
        if argument == "-" {
            fd = dup(STDIN_FILENO)
        } else {
            var info = stat()
            guard stat(argument, &info) == 0 else {
                throw CLIError.store("\(argument): \(errno == ENOENT ? "no such file" : Self.errnoText())")
            }
            if info.st_mode & S_IFMT == S_IFDIR {
                throw CLIError.store("\(argument): is a folder, not a JSON Lines file")
            }
            // A FIFO waits here for its writer, as reading a named pipe does.
            fd = open(argument, O_RDONLY | O_CLOEXEC)
        }
        guard fd >= 0 else { throw CLIError.store("\(name): cannot open for reading: \(Self.errnoText())") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let text = Self.errnoText()
            close(fd)
            throw CLIError.store("\(name): cannot inspect: \(text)")
        }
        if info.st_mode & S_IFMT == S_IFREG {
            let start = lseek(fd, 0, SEEK_CUR)
            if start >= 0 { return ImportInput(name: name, descriptor: fd, start: start) }
        }
        defer { close(fd) }
        let spool = try Self.spool(from: fd, name: name, into: spoolFolder)
        return ImportInput(name: name, descriptor: spool, start: 0)
    }

    /// Copies everything `fd` gives into an unlinked temporary file in `folder`; returns its descriptor.
    private static func spool(from fd: Int32, name: String, into folder: String) throws -> Int32 {
        var spool: Int32 = -1
        for attempt in 0..<100 {
            let path = "\(folder)/.dlq-import-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
            spool = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if spool >= 0 {
                unlink(path)
                break
            }
            if errno != EEXIST { break }
        }
        guard spool >= 0 else {
            throw CLIError.store(
                "\(name): cannot copy the input to a temporary file in '\(folder)' (\(Self.errnoText())); "
                    + "dlq import copies a pipe there first, to check every line before it stores any"
            )
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                let text = Self.errnoText()
                close(spool)
                throw CLIError.store("\(name): cannot read: \(text)")
            }
            let failure = buffer.withUnsafeBytes { bytes -> String? in
                var offset = 0
                while offset < count {
                    let written = write(spool, bytes.baseAddress! + offset, count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return Self.errnoText()
                    }
                    offset += written
                }
                return nil
            }
            if let failure {
                close(spool)
                throw CLIError.store("\(name): cannot copy the input to a temporary file in '\(folder)': \(failure)")
            }
        }
        return spool
    }

    /// Checks every line and returns how many letters there are.
    /// - Throws: the first malformed line's ``DeadLetterError`` (with the name, the line and the field).
    func validate() throws -> Int {
        guard lseek(self.descriptor, self.start, SEEK_SET) == self.start else {
            throw CLIError.store("\(self.name): cannot read it again from its start: \(Self.errnoText())")
        }
        return try JSONLinesReader(fileDescriptor: self.descriptor, name: self.name).validateAll()
    }

    /// The letters, read from the start again.
    var letters: Letters { Letters(input: self) }

    /// The letters of the input, as ``DeadLetterStore/importLetters(_:onConflict:)`` takes them.
    struct Letters: AsyncSequence, Sendable {
        typealias Element = DeadLetter
        let input: ImportInput

        func makeAsyncIterator() -> Iterator { Iterator(input: self.input) }

        struct Iterator: AsyncIteratorProtocol {
            let input: ImportInput
            var reader: JSONLinesReader?

            mutating func next() async throws -> DeadLetter? {
                if self.reader == nil {
                    guard lseek(self.input.descriptor, self.input.start, SEEK_SET) == self.input.start else {
                        throw CLIError.store("\(self.input.name): cannot read it again: \(ImportInput.errnoText())")
                    }
                    self.reader = JSONLinesReader(fileDescriptor: self.input.descriptor, name: self.input.name)
                }
                return try self.reader?.next()?.letter
            }
        }
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
