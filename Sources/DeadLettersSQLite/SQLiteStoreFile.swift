import DeadLetters

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks a store file before anything opens it for writing, and creates new store files.
///
/// A file that is not a store (garbage, an empty file, another application's database, a truncated file) is
/// recognized from its first 100 bytes, so it is reported without being opened by SQLite, which could write
/// to it (switching the journal mode, say).
enum SQLiteStoreFile {
    /// The `PRAGMA application_id` of every store file: "DLQS".
    static let applicationID: Int32 = 0x444C_5153

    /// What is at the path.
    enum State: Equatable {
        case missing
        case store
    }

    /// Looks at the file at `path`, throwing when it exists and is not a store this code can open.
    static func inspect(path: String) throws -> State {
        let folder = self.folder(of: path)
        var folderInfo = stat()
        guard stat(folder, &folderInfo) == 0 else {
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "the folder '\(folder)' does not exist (\(self.errnoText())); it is never created",
                file: path
            )
        }
        guard folderInfo.st_mode & S_IFMT == S_IFDIR else {
            throw DeadLetterError(code: .storeUnavailable, message: "'\(folder)' is not a folder", file: path)
        }
        // Look before opening: opening a FIFO waits for a writer, a device may do anything.
        var pathInfo = stat()
        if stat(path, &pathInfo) == 0 {
            try self.requireRegularFile(pathInfo.st_mode, path: path, what: "the store")
            // Opening and closing it here would drop the locks SQLite holds on it (see SQLiteFileGuard); a
            // store of this process has it open, so it was checked when that store opened it.
            if SQLiteFileGuard.isOpenInProcess(pathInfo) { return .store }
        }
        for suffix in ["-wal", "-shm"] where stat(path + suffix, &pathInfo) == 0 {
            try self.requireRegularFile(pathInfo.st_mode, path: path, what: "its '\(suffix)' file")
        }
        // O_NONBLOCK: should a FIFO appear at the path after the look, opening it still returns at once.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            if errno == ENOENT { return .missing }
            throw DeadLetterError(
                code: .storeUnavailable,
                message: "cannot read the store file: \(self.errnoText())",
                file: path
            )
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DeadLetterError(code: .io, message: "cannot inspect the file: \(self.errnoText())", file: path)
        }
        try self.requireRegularFile(info.st_mode, path: path, what: "the store")
        let size = Int(info.st_size)
        if size == 0 {
            throw DeadLetterError(
                code: .notAStore,
                message: "the file is empty, not a dead-letter store; it was left untouched",
                file: path
            )
        }
        var header = [UInt8](repeating: 0, count: 100)
        let read = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 100, 0) }
        let magic = Array("SQLite format 3".utf8) + [0]
        guard read == 100, Array(header[0..<16]) == magic else {
            throw DeadLetterError(
                code: .notAStore,
                message: "the file is not a SQLite database, so not a dead-letter store; it was left untouched",
                file: path
            )
        }
        func int32(_ offset: Int) -> UInt32 {
            header[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        let applicationID = Int32(bitPattern: int32(68))
        guard applicationID == Self.applicationID else {
            throw DeadLetterError(
                code: .notAStore,
                message: "the file is a SQLite database of another application, not a dead-letter store; "
                    + "it was left untouched",
                file: path
            )
        }
        let userVersion = Int(Int32(bitPattern: int32(60)))
        if userVersion > SQLiteSchema.version {
            throw SQLiteSchema.newerError(userVersion, path: path)
        }
        // A file shorter than its header says was truncated, unless a write-ahead log still holds the end.
        let rawPageSize = Int(header[16]) << 8 | Int(header[17])
        let pageSize = rawPageSize == 1 ? 65536 : rawPageSize
        let pages = Int(int32(28))
        var walInfo = stat()
        let walHoldsPages = stat(path + "-wal", &walInfo) == 0 && walInfo.st_size > 32
        if int32(24) == int32(92), pages > 0, size < pages * pageSize, !walHoldsPages {
            throw DeadLetterError(
                code: .notAStore,
                message: "the store file is truncated (\(size) of \(pages * pageSize) bytes); it was left untouched",
                file: path
            )
        }
        return .store
    }

    /// Throws `notAStore` unless `mode` is a regular file's: a FIFO, a device, a socket or a folder is refused
    /// at once, before anything opens it.
    static func requireRegularFile(_ mode: mode_t, path: String, what: String) throws {
        guard mode & S_IFMT != S_IFREG else { return }
        throw DeadLetterError(
            code: .notAStore,
            message: "\(what) is \(self.kind(mode)), not a regular file; a store is one regular file "
                + "(it was left untouched)",
            file: path
        )
    }

    /// What a file of `mode` is, for people: "a FIFO (named pipe)", "a folder", …
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: "a regular file"
        case S_IFDIR: "a folder"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "of an unknown kind"
        }
    }

    /// Creates an empty file with mode 0600 at a fresh temporary path next to `path`, for a new store to be
    /// built in before ``publish(_:at:)`` moves it into place.
    static func createTemporary(near path: String) throws -> String {
        let folder = self.folder(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        for attempt in 0..<100 {
            let candidate = "\(folder)/.\(name).new-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 {
                if errno == EEXIST { continue }
                throw DeadLetterError(
                    code: .storeUnavailable,
                    message: "cannot create a store file in '\(folder)': \(self.errnoText())",
                    file: path
                )
            }
            // The umask can only take bits away; set the mode exactly anyway.
            let changed = fchmod(fd, 0o600)
            close(fd)
            guard changed == 0 else {
                unlink(candidate)
                throw DeadLetterError(
                    code: .storeUnavailable,
                    message: "cannot set mode 0600 on a new store file: \(self.errnoText())",
                    file: path
                )
            }
            return candidate
        }
        throw DeadLetterError(code: .storeUnavailable, message: "cannot find a temporary name", file: path)
    }

    /// Moves a complete new store file into place, unless another process created the store meanwhile.
    /// - Returns: whether `temporary` became the store.
    static func publish(_ temporary: String, at path: String) throws -> Bool {
        defer { unlink(temporary) }
        if link(temporary, path) == 0 {
            self.syncFolder(of: path)
            return true
        }
        if errno == EEXIST { return false }
        throw DeadLetterError(
            code: .storeUnavailable,
            message: "cannot create the store file: \(self.errnoText())",
            file: path
        )
    }

    static func remove(_ path: String) {
        unlink(path)
        unlink(path + "-wal")
        unlink(path + "-shm")
        unlink(path + "-journal")
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }

    private static func syncFolder(of path: String) {
        let fd = open(self.folder(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
