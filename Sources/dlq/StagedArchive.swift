import DeadLetters
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The archive `dlq purge --archive FILE` writes: JSON Lines appended to FILE, durably, before the letters
/// are deleted; and a purge that fails before it deleted anything leaves FILE as it was.
///
/// A new FILE appears whole: its first letters are written to a ``StagedFile`` and moved into place. When the
/// purge then fails having removed nothing (the store cannot be written, it stayed locked), ``rollBack()``
/// removes the file it created, or cuts an existing one back to its former length, since those letters are
/// all still in the store. Once letters were deleted, everything archived stays.
final class StagedArchive: DeadLetterArchive, @unchecked Sendable {
    // @unchecked Sendable: the mutable state is behind `lock`; the queue archives one page at a time.

    let path: String
    private let lock = NSLock()
    /// The length of FILE before the purge, or `nil` when it did not exist.
    private let formerLength: off_t?
    /// The identity (device, inode) of the file this archive created, once it did.
    private var created: (device: UInt64, inode: UInt64)?

    init(path: String) {
        self.path = path
        var info = stat()
        self.formerLength = stat(path, &info) == 0 ? info.st_size : nil
    }

    func archive(_ letters: [DeadLetter], reason: String) async throws {
        guard !letters.isEmpty else { return }
        let appendToFile = self.lock.withLock { self.formerLength != nil || self.created != nil }
        if appendToFile {
            try await JSONLinesArchive(path: self.path).archive(letters, reason: reason)
            return
        }
        let (staged, descriptor) = try StagedFile.create(for: self.path)
        close(descriptor)
        do {
            try await JSONLinesArchive(path: staged.temporary).archive(letters, reason: reason)
            var info = stat()
            guard stat(staged.temporary, &info) == 0 else {
                throw CLIError.store("\(self.path): the archive being written disappeared")
            }
            try staged.publish()
            self.lock.withLock { self.created = (UInt64(info.st_dev), UInt64(info.st_ino)) }
        } catch {
            staged.discard()
            throw error
        }
    }

    /// Puts FILE back as it was before the purge: for a purge that failed before deleting any letter.
    func rollBack() {
        self.lock.withLock {
            var info = stat()
            guard stat(self.path, &info) == 0 else { return }
            if let created = self.created {
                if UInt64(info.st_dev) == created.device, UInt64(info.st_ino) == created.inode {
                    unlink(self.path)
                    StagedFile.syncFolder(of: self.path)
                }
            } else if let formerLength = self.formerLength, info.st_size > formerLength {
                _ = truncate(self.path, formerLength)
            }
        }
    }
}
