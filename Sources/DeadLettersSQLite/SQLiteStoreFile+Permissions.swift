import DeadLetters

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether this process can write a store file, and how a store opened read-only is opened.
///
/// Writability is asked with `access(2)`, which answers for this process as the kernel will: it honours mode
/// bits for ordinary users, and for root (who ignores mode bits) it still reports a read-only file system
/// (`EROFS`) and an immutable file or folder (`chattr +i`, `EPERM`). So a file of mode 0444 is writable for
/// root, which is true: root can write it.
extension SQLiteStoreFile {
    /// How a store opened read-only is opened.
    enum ReadOnlyOpening: Equatable {
        /// Ordinary connections, the one that could write with `PRAGMA query_only`, when this process can
        /// write the file and its folder: no letter, total or schema is changed, and the last connection to
        /// close still removes the `-wal` and `-shm` files as a writer's would (a read-only connection leaves
        /// them behind).
        case queryOnly
        /// SQLite's read-only connection: it reads the write-ahead log through the existing `-shm` file.
        case shared
        /// SQLite's `immutable` URI parameter: no lock, no `-wal`, no `-shm`, nothing created or written. Used
        /// when this process cannot write the store file, so that reading never leaves files beside a store
        /// that others own; only when the store's log is empty, since an immutable reader ignores the log.
        case immutable
    }

    /// Whether this process may write `path` (see the type's notes on root).
    static func isWritable(_ path: String) -> Bool {
        access(path, W_OK) == 0
    }

    /// How to open the store at `path` read-only.
    /// - Throws: `storeUnavailable` when the store's log holds commits that this process cannot read: it can
    ///   write neither the store file nor its folder, and the `-shm` file SQLite reads the log through is
    ///   missing.
    static func readOnlyOpening(path: String) throws -> ReadOnlyOpening {
        var info = stat()
        let shmExists = stat(path + "-shm", &info) == 0
        let walHoldsCommits = stat(path + "-wal", &info) == 0 && info.st_size > 0
        if self.isWritable(path), self.isWritable(self.folder(of: path)) { return .queryOnly }
        if !walHoldsCommits { return .immutable }
        if shmExists { return .shared }
        throw DeadLetterError(
            code: .storeUnavailable,
            message: "the store's log ('-wal') holds commits not yet copied into the file, and this process can "
                + "write neither the file nor its folder, so SQLite cannot read them; open the store once "
                + "where it can be written (any dlq command that writes, or dlq migrate), or copy the file with "
                + "its '-wal' to a writable folder",
            file: path
        )
    }

    /// Throws `storeUnavailable` naming what cannot be written when this process cannot write the store
    /// file, or cannot create its `-wal` and `-shm` files beside it.
    static func requireWritable(path: String) throws {
        let folder = self.folder(of: path)
        if !self.isWritable(path) {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "the store file cannot be written (\(self.errnoText())): a read-only file, an immutable "
                    + "one or a read-only file system; commands that only read it (dlq list, show, stats, "
                    + "groups, export, check) still work",
                file: path
            )
        }
        var info = stat()
        let besides = stat(path + "-wal", &info) == 0 && stat(path + "-shm", &info) == 0
        if !besides, !self.isWritable(folder) {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "the folder '\(folder)' cannot be written (\(self.errnoText())), and SQLite needs to "
                    + "create the store's '-wal' and '-shm' files there to write; commands that only read it "
                    + "(dlq list, show, stats, groups, export, check) still work",
                file: path
            )
        }
    }

    /// The URI that opens `path` with SQLite's `immutable` parameter (`%`, `?` and `#` escaped).
    static func immutableURI(_ path: String) -> String {
        var escaped = ""
        for character in path {
            switch character {
            case "%": escaped += "%25"
            case "?": escaped += "%3F"
            case "#": escaped += "%23"
            default: escaped.append(character)
            }
        }
        // An absolute path gets an empty authority ("file:///…"), so that a path starting "//" is no host.
        return (path.hasPrefix("/") ? "file://" : "file:") + escaped + "?immutable=1"
    }
}
