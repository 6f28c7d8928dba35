import DeadLetters
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written under a hidden temporary name in its destination's folder and moved into place only once
/// it is complete, so that a command that fails (a missing key, a full disk, Ctrl-C) leaves nothing at the
/// destination and can simply be run again.
///
/// The move is a `link` followed by an `unlink`, not a `rename`: it never replaces a file that appeared at
/// the destination meanwhile. Only a process killed outright (`kill -9`, a power cut) leaves the temporary
/// file behind: `.NAME.dlq-partial-…` beside the destination.
struct StagedFile: Sendable {
    /// Where the file goes once complete.
    let destination: String
    /// Where it is written meanwhile.
    let temporary: String

    /// Creates the temporary file (mode 0600) and returns it with its open descriptor.
    /// - Throws: ``CLIError`` (store) when the folder cannot be written.
    static func create(for destination: String) throws -> (file: StagedFile, descriptor: Int32) {
        let folder = StoreOptions.folder(of: destination)
        let name = destination.split(separator: "/").last.map(String.init) ?? destination
        for attempt in 0..<100 {
            let temporary = "\(folder)/.\(name).dlq-partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 { return (StagedFile(destination: destination, temporary: temporary), fd) }
            if errno == EEXIST { continue }
            throw CLIError.store("\(destination): cannot create a file in '\(folder)': \(Self.errnoText())")
        }
        throw CLIError.store("\(destination): cannot find a free temporary name in '\(folder)'")
    }

    /// Moves the complete file into place (it must be synced and closed) and syncs the folder.
    /// - Throws: ``CLIError`` (store) when a file appeared at the destination meanwhile (it is kept, and the
    ///   temporary file removed), or the move fails.
    func publish() throws {
        defer { unlink(self.temporary) }
        guard link(self.temporary, self.destination) == 0 else {
            if errno == EEXIST {
                throw CLIError.store(
                    "\(self.destination): a file appeared there while dlq was writing; it was kept, and what dlq "
                        + "wrote was discarded"
                )
            }
            throw CLIError.store("\(self.destination): cannot move the finished file into place: \(Self.errnoText())")
        }
        Self.syncFolder(of: self.destination)
    }

    /// Removes the temporary file: nothing is left at the destination.
    func discard() {
        unlink(self.temporary)
    }

    static func syncFolder(of path: String) {
        let fd = open(StoreOptions.folder(of: path), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
