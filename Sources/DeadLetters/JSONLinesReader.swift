#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a JSON Lines file of the stored format one letter at a time, with flat memory however large the
/// file is: the form of exports, imports and archives.
///
/// Each line holds one letter as ``DeadLetterJSON`` writes it; blank lines are skipped, `\r\n` line ends and
/// a UTF-8 byte-order mark at the start are accepted, and a last line without a line break is read. A JSON
/// array with one letter per line, as ``JSONLinesWriter/Format/jsonArray`` writes it (`dlq export --format
/// json`), is read too. A malformed line throws ``DeadLetterError`` with code `invalidFormat`, the file and
/// the line number.
///
/// To import "all or nothing", check the whole file first with ``validate(path:maximumLineLength:)``, then
/// stream it into the store with ``JSONLinesFile``:
/// ```swift
/// let count = try JSONLinesReader.validate(path: path)
/// let result = try await store.importLetters(JSONLinesFile(path: path), onConflict: .skip)
/// ```
/// The reader is not thread-safe; use it from one task at a time.
public final class JSONLinesReader {
    /// The longest line read by default: 64 MiB.
    public static let defaultMaximumLineLength = 64 << 20

    /// The file's name in errors.
    public let name: String
    /// The number of the last line read, counting from 1; 0 before the first.
    public private(set) var lineNumber = 0

    private var fd: Int32
    private let closeWhenDone: Bool
    private let maximumLineLength: Int
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var scanned = 0
    private var atEnd = false
    /// Whether the file is JSON Lines, or a JSON array with one letter per line as
    /// ``JSONLinesWriter/Format/jsonArray`` writes it; a cut-short array is an error at its end.
    private var arrayState = ArrayState.none
    private enum ArrayState { case none, lines, open, closed }

    /// Opens a file for reading.
    /// - Parameters:
    ///   - path: the file's path.
    ///   - maximumLineLength: the longest line accepted, in bytes. Default 64 MiB.
    /// - Throws: ``DeadLetterError`` with code `io` when the file cannot be opened.
    public convenience init(path: String, maximumLineLength: Int = JSONLinesReader.defaultMaximumLineLength) throws {
        let fd = POSIXFile.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw DeadLetterError(code: .io, message: "cannot open for reading: \(POSIXFile.lastError())", file: path)
        }
        self.init(fileDescriptor: fd, name: path, closeWhenDone: true, maximumLineLength: maximumLineLength)
    }

    /// Reads from an open file descriptor, standard input (0) for example.
    /// - Parameters:
    ///   - fileDescriptor: the descriptor to read from.
    ///   - name: the name errors give, `"stdin"` for example.
    ///   - closeWhenDone: whether ``close()`` closes the descriptor. Default `false`.
    ///   - maximumLineLength: the longest line accepted, in bytes. Default 64 MiB.
    public init(
        fileDescriptor: Int32,
        name: String,
        closeWhenDone: Bool = false,
        maximumLineLength: Int = JSONLinesReader.defaultMaximumLineLength
    ) {
        self.fd = fileDescriptor
        self.name = name
        self.closeWhenDone = closeWhenDone
        self.maximumLineLength = max(1, maximumLineLength)
        self.buffer = [UInt8](repeating: 0, count: 256 << 10)
    }

    deinit {
        self.close()
    }

    /// Closes the file (when the reader opened it or was told to). Reading after this returns `nil`.
    public func close() {
        if self.fd >= 0, self.closeWhenDone { _ = POSIXFile.close(self.fd) }
        self.fd = -1
        self.atEnd = true
        self.start = 0
        self.end = 0
        self.scanned = 0
        self.arrayState = .none
    }

    /// The next letter and the number of its line, or `nil` at the end of the file.
    /// - Throws: ``DeadLetterError``: `invalidFormat` for a malformed line (with file, line and field), `io` when
    ///   reading fails.
    public func next() throws -> (line: Int, letter: DeadLetter)? {
        while let range = try self.nextLine() {
            self.lineNumber += 1
            let letter = try self.buffer.withUnsafeBytes { raw -> DeadLetter? in
                var line = UnsafeRawBufferPointer(rebasing: raw[range])
                if self.lineNumber == 1, line.starts(with: [0xEF, 0xBB, 0xBF]) {
                    line = UnsafeRawBufferPointer(rebasing: line[(line.startIndex + 3)...])
                }
                func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D }
                guard let first = line.firstIndex(where: { !isSpace($0) }),
                    let last = line.lastIndex(where: { !isSpace($0) })
                else { return nil }
                if try self.arrayPunctuation(line[first], line[last], length: last - first + 1) { return nil }
                if self.arrayState == .open, line[last] == UInt8(ascii: ",") {
                    line = UnsafeRawBufferPointer(rebasing: line[first..<last])
                }
                do {
                    return try DeadLetterJSON.decode(line, line: self.lineNumber)
                } catch var error as DeadLetterError {
                    error.file = self.name
                    throw error
                }
            }
            if let letter {
                if self.arrayState == .none { self.arrayState = .lines }
                return (self.lineNumber, letter)
            }
        }
        if self.arrayState == .open {
            throw self.error("the JSON array is not closed: the file is cut short", line: self.lineNumber)
        }
        return nil
    }

    /// Handles the brackets of a JSON array written one letter per line; `true` when the line held only that.
    private func arrayPunctuation(_ first: UInt8, _ last: UInt8, length: Int) throws -> Bool {
        let open = UInt8(ascii: "[")
        let close = UInt8(ascii: "]")
        switch self.arrayState {
        case .none where first == open && (length == 1 || (length == 2 && last == close)):
            self.arrayState = length == 1 ? .open : .closed
            return true
        case .open where first == close && length == 1:
            self.arrayState = .closed
            return true
        case .closed:
            throw self.error("not valid JSON: content after the end of the array", line: self.lineNumber)
        default:
            return false
        }
    }

    private func error(_ message: String, line: Int) -> DeadLetterError {
        DeadLetterError(code: .invalidFormat, message: message, file: self.name, line: line)
    }

    /// Reads every line to the end, checking each, and returns how many letters there are.
    /// - Throws: the first malformed line's ``DeadLetterError`` (with file, line and field), or an `io` error.
    public func validateAll() throws -> Int {
        var count = 0
        while try self.next() != nil { count += 1 }
        return count
    }

    /// Checks every line of a file without keeping any letter, and returns how many letters it holds: the
    /// first pass of an all-or-nothing import.
    /// - Parameters:
    ///   - path: the file's path.
    ///   - maximumLineLength: the longest line accepted, in bytes. Default 64 MiB.
    /// - Throws: the first malformed line's ``DeadLetterError`` (with file, line and field), or an `io` error.
    public static func validate(path: String, maximumLineLength: Int = defaultMaximumLineLength) throws -> Int {
        let reader = try JSONLinesReader(path: path, maximumLineLength: maximumLineLength)
        defer { reader.close() }
        return try reader.validateAll()
    }

    /// The byte range of the next line in `buffer`, without its line break, reading more as needed.
    private func nextLine() throws -> Range<Int>? {
        while true {
            if let newline = self.findNewline() {
                try self.checkLength(newline - self.start)
                let range = self.start..<newline
                self.start = newline + 1
                self.scanned = self.start
                return range
            }
            if self.atEnd {
                guard self.start < self.end else { return nil }
                try self.checkLength(self.end - self.start)
                let range = self.start..<self.end
                self.start = self.end
                self.scanned = self.end
                return range
            }
            try self.checkLength(self.end - self.start)
            try self.fill()
        }
    }

    private func checkLength(_ length: Int) throws {
        guard length > self.maximumLineLength else { return }
        throw DeadLetterError(
            code: .invalidFormat,
            message: "line is longer than \(self.maximumLineLength) bytes",
            file: self.name,
            line: self.lineNumber + 1
        )
    }

    private func findNewline() -> Int? {
        guard self.scanned < self.end else { return nil }
        let found = self.buffer.withUnsafeBytes { raw -> Int? in
            guard let base = raw.baseAddress,
                let hit = memchr(base + self.scanned, 0x0A, self.end - self.scanned)
            else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        if found == nil { self.scanned = self.end }
        return found
    }

    /// Moves the unread bytes to the front, grows the buffer when a line fills it, and reads more.
    private func fill() throws {
        if self.start > 0 {
            let count = self.end - self.start
            if count > 0 {
                self.buffer.withUnsafeMutableBytes { raw in
                    guard let base = raw.baseAddress else { return }
                    memmove(base, base + self.start, count)
                }
            }
            self.scanned -= self.start
            self.end = count
            self.start = 0
        }
        if self.end == self.buffer.count {
            self.buffer.append(contentsOf: repeatElement(0, count: self.buffer.count))
        }
        while true {
            let room = self.buffer.count - self.end
            let read = self.buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return POSIXFile.read(self.fd, base + self.end, room)
            }
            if read > 0 {
                self.end += read
                return
            }
            if read == 0 {
                self.atEnd = true
                return
            }
            if errno == EINTR { continue }
            throw DeadLetterError(code: .io, message: "cannot read: \(POSIXFile.lastError())", file: self.name)
        }
    }
}
