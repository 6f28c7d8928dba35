#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The few POSIX file calls the JSON Lines reader, writer and archive make, behind one name so that the
/// types' own `close()` methods do not hide them.
enum POSIXFile {
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        #if canImport(Glibc)
        Glibc.open(path, flags, mode)
        #elseif canImport(Musl)
        Musl.open(path, flags, mode)
        #else
        Darwin.open(path, flags, mode)
        #endif
    }

    static func close(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #elseif canImport(Musl)
        Musl.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }

    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #elseif canImport(Musl)
        Musl.read(fd, buffer, count)
        #else
        Darwin.read(fd, buffer, count)
        #endif
    }

    /// Writes all of `bytes`, retrying after interruptions and short writes.
    /// - Returns: `nil`, or the error's text.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> String? {
        guard var pointer = bytes.baseAddress else { return nil }
        var remaining = bytes.count
        while remaining > 0 {
            #if canImport(Glibc)
            let written = Glibc.write(fd, pointer, remaining)
            #elseif canImport(Musl)
            let written = Musl.write(fd, pointer, remaining)
            #else
            let written = Darwin.write(fd, pointer, remaining)
            #endif
            if written < 0 {
                if errno == EINTR { continue }
                return lastError()
            }
            pointer += written
            remaining -= written
        }
        return nil
    }

    /// `fsync`, retried after interruptions. - Returns: `nil`, or the error's text.
    static func sync(_ fd: Int32) -> String? {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            return lastError()
        }
        return nil
    }

    /// Syncs the folder holding `path`, so that a file just created there survives a crash.
    /// - Returns: `nil`, or the error's text.
    static func syncFolder(of path: String) -> String? {
        let folder: String
        if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) {
            folder = slash == path.utf8.startIndex ? "/" : String(path[..<slash])
        } else {
            folder = "."
        }
        let fd = open(folder, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return lastError() }
        defer { _ = close(fd) }
        return sync(fd)
    }

    /// The text of `errno`.
    static func lastError() -> String {
        let code = errno
        return String(cString: strerror(code)) + " (errno \(code))"
    }
}
