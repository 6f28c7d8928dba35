#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An archive that appends removed letters to a JSON Lines file, durably.
///
/// Each line is the letter in the stored format as ``DeadLetterJSON`` writes it, followed by two more fields:
/// `"archivedAt"` (when it was archived) and `"archiveReason"` (`"expired"`, `"pruned"`, `"purged"`). Importers
/// ignore unknown fields, so an archive is an export: `dlq import archive.jsonl` (or
/// ``DeadLetterStore/importLetters(_:onConflict:)`` with ``restore(from:)``) puts its letters back as they were.
///
/// The file is created with mode 0600 when missing and only ever appended to. ``archive(_:reason:)`` returns
/// only after the lines are on disk (`fsync`), so an archived letter is never lost once its store deletes it.
/// Calls are serialized; several archives may share a file only within one process.
public final class JSONLinesArchive: DeadLetterArchive {
    /// The archive file's path.
    public let path: String
    private let clock: any DeadLetterClock
    /// Serializes the appends; it counts them, because a lock around `()` (a value of no size) made
    /// ThreadSanitizer report a false access race between the lock's own fields (seen once in CI).
    private let lock = PThreadLock(0)

    /// An archive appending to the file at `path`.
    /// - Parameters:
    ///   - path: the file; created (mode 0600) on the first archive if missing. Its folder must exist.
    ///   - clock: where `archivedAt` comes from. Default the system clock.
    public init(path: String, clock: any DeadLetterClock = SystemDeadLetterClock()) {
        self.path = path
        self.clock = clock
    }

    /// Appends `letters` to the file and syncs it; does nothing for no letters.
    /// - Parameters:
    ///   - letters: the letters being removed from a store.
    ///   - reason: why: `"expired"`, `"pruned"`, `"purged"`.
    /// - Throws: ``DeadLetterError`` with code `io` when the file cannot be opened, written or synced; then the
    ///   letters must not be deleted.
    public func archive(_ letters: [DeadLetter], reason: String) async throws {
        guard !letters.isEmpty else { return }
        let bytes = Self.lines(letters, reason: reason, at: self.clock.now())
        try self.lock.withLock { appends in
            try self.append(bytes)
            appends &+= 1
        }
    }

    /// The letters of an archive, to import them back into a store:
    /// `try await store.importLetters(JSONLinesArchive.restore(from: path), onConflict: .skip)`.
    /// - Parameter path: the archive file.
    public static func restore(from path: String) -> JSONLinesFile {
        JSONLinesFile(path: path)
    }

    /// The archive's lines for `letters`.
    static func lines(_ letters: [DeadLetter], reason: String, at date: Date) -> [UInt8] {
        var suffix = DeadLetterJSON.Writer(buffer: [])
        suffix.raw(#","archivedAt":"#)
        suffix.timestamp(date)
        suffix.raw(#","archiveReason":"#)
        suffix.string(reason)
        suffix.raw("}\n")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(letters.count * (512 + suffix.buffer.count))
        for letter in letters {
            DeadLetterJSON.encode(letter, into: &bytes)
            bytes.removeLast()  // the closing brace
            bytes.append(contentsOf: suffix.buffer)
        }
        return bytes
    }

    /// Cuts a last line without its line break, left by a write that failed or a crash: its letters were
    /// never reported archived, so they are still in their store.
    /// - Returns: the file's size after that.
    private func dropTornLine(_ fd: Int32) throws -> off_t {
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0 else {
            throw DeadLetterError(
                code: .io,
                message: "cannot read the archive: \(POSIXFile.lastError())",
                file: self.path
            )
        }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var end = size
        while end > 0 {
            let start = max(0, end - off_t(chunk.count))
            let count = Int(end - start)
            let read = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, start) }
            guard read == count else {
                throw DeadLetterError(
                    code: .io,
                    message: "cannot read the archive: \(POSIXFile.lastError())",
                    file: self.path
                )
            }
            if let newline = chunk[..<count].lastIndex(of: UInt8(ascii: "\n")) {
                let keep = start + off_t(newline) + 1
                if keep < size, ftruncate(fd, keep) != 0 {
                    throw DeadLetterError(
                        code: .io,
                        message: "cannot repair the archive: \(POSIXFile.lastError())",
                        file: self.path
                    )
                }
                return keep
            }
            end = start
        }
        if size > 0, ftruncate(fd, 0) != 0 {
            throw DeadLetterError(
                code: .io,
                message: "cannot repair the archive: \(POSIXFile.lastError())",
                file: self.path
            )
        }
        return 0
    }

    private func append(_ bytes: [UInt8]) throws {
        var fd = POSIXFile.open(self.path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        let created = fd >= 0
        if !created, errno == EEXIST {
            fd = POSIXFile.open(self.path, O_RDWR | O_APPEND | O_CLOEXEC)
        }
        guard fd >= 0 else {
            throw DeadLetterError(
                code: .io,
                message: "cannot open the archive: \(POSIXFile.lastError())",
                file: self.path
            )
        }
        defer { _ = POSIXFile.close(fd) }
        let size = try self.dropTornLine(fd)
        if let failure = bytes.withUnsafeBytes({ POSIXFile.writeAll(fd, $0) }) {
            // Leave no half line behind: these letters stay in the store and come here again.
            _ = ftruncate(fd, size)
            throw DeadLetterError(code: .io, message: "cannot write the archive: \(failure)", file: self.path)
        }
        if let failure = POSIXFile.sync(fd) {
            throw DeadLetterError(code: .io, message: "cannot sync the archive: \(failure)", file: self.path)
        }
        if created, let failure = POSIXFile.syncFolder(of: self.path) {
            throw DeadLetterError(code: .io, message: "cannot sync the archive's folder: \(failure)", file: self.path)
        }
    }
}
