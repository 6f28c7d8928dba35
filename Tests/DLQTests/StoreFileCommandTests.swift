import DeadLetters
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The files `dlq` reads and writes when they are not what they should be: pipes, FIFOs, damaged, read-only
/// and half-written files.
extension DLQCommandSuites {
    @Suite("dlq and the files around a store")
    struct StoreFileCommandTests {
        /// Three letters in the default store of `space`, and their export.
        private func populate(_ space: Workspace) throws -> Data {
            try space.add(source: "orders")
            try space.add(source: "payments", reason: "timeout")
            try space.add(source: "shipments", reason: "dependency")
            return try space.ok(["export"]).stdout
        }

        @Test("import reads standard input: '-' and /dev/stdin on a pipe import every letter, a bad pipe nothing")
        func importFromPipe() throws {
            let space = try Workspace()
            defer { space.remove() }
            let export = try self.populate(space)

            let dash = try space.ok(["import", "-", "--store", "dash.sqlite"], stdin: export)
            #expect(dash.output.contains("imported 3, skipped 0 already present (3 letters in stdin)"), "\(dash)")
            #expect(try space.letters(["--store", "dash.sqlite"]).count == 3)

            let devStdin = try space.ok(["import", "/dev/stdin", "--store", "dev.sqlite"], stdin: export)
            #expect(devStdin.output.contains("imported 3, skipped 0"), "\(devStdin)")
            #expect(try space.letters(["--store", "dev.sqlite"]).count == 3)

            // A malformed line in a pipe: nothing stored, no store created, no spooled copy left behind.
            let lines = String(decoding: export, as: UTF8.self).split(separator: "\n")
            let bad = Data((lines[0] + "\n" + lines[1] + "\n{\"id\":\n").utf8)
            let run = try space.run(["import", "-", "--store", "bad.sqlite"], stdin: bad)
            expectOneLineError(run, status: 4, containing: "stdin:3")
            #expect(!space.exists("bad.sqlite"))
            let left = try FileManager.default.contentsOfDirectory(atPath: space.folder).filter {
                $0.contains("import")
            }
            #expect(left.isEmpty, "\(left)")
        }

        @Test("import reads a FIFO once, and stores what it checked")
        func importFromFIFO() throws {
            let space = try Workspace()
            defer { space.remove() }
            let export = try self.populate(space)
            let fifo = space.path("letters.fifo")
            #expect(mkfifo(fifo, 0o600) == 0)
            let writer = Thread {
                // Blocks until dlq opens the FIFO for reading.
                let fd = open(fifo, O_WRONLY)
                guard fd >= 0 else { return }
                export.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            writer.start()
            let run = try space.ok(["import", "letters.fifo", "--store", "copy.sqlite"])
            #expect(run.output.contains("imported 3, skipped 0 already present (3 letters in letters.fifo)"), "\(run)")
            #expect(try space.ok(["export", "--store", "copy.sqlite"]).stdout == export)
        }

        @Test("a FIFO, a device or a socket at the store path is refused at once, without opening it")
        func storeThatIsNotARegularFile() throws {
            let space = try Workspace()
            defer { space.remove() }
            #expect(mkfifo(space.path("s.sqlite"), 0o600) == 0)
            for command in [["stats"], ["list"], ["add", "--source", "a", "--reason", "b", "--error-message", "c"]] {
                let run = try space.run(command + ["--store", "s.sqlite"], timeout: .seconds(20))
                #expect(run.elapsed < .seconds(10), "dlq \(command[0]) waited on the FIFO")
                expectOneLineError(run, status: 4, containing: "s.sqlite: is a FIFO (named pipe), not a store file")
            }
            let device = try space.run(["stats", "--store", "/dev/null"], timeout: .seconds(20))
            expectOneLineError(device, status: 4, containing: "/dev/null: is a character device, not a store file")
            let check = try space.run(["check", "--store", "s.sqlite"], timeout: .seconds(20))
            expectOneLineError(check, status: 4, containing: "is a FIFO")
        }

        @Test("a failed export leaves no file behind, so that the retry is not refused")
        func failedExportLeavesNothing() throws {
            let space = try Workspace()
            defer { space.remove() }
            let key = Data((0..<32).map { UInt8($0 * 5 % 256) }).base64EncodedString()
            try space.ok(
                ["add", "--source", "orders", "--reason", "validation", "--error-message", "m", "--payload", "secret"],
                environment: ["DLQ_ENCRYPTION_KEY": key]
            )
            let failed = try space.run(["export", "--output", "e.jsonl"])
            expectOneLineError(failed, status: 4, containing: "DLQ_ENCRYPTION_KEY")
            let names = try FileManager.default.contentsOfDirectory(atPath: space.folder)
            #expect(!names.contains { $0.contains("e.jsonl") }, "\(names)")

            let retry = try space.run(["export", "--output", "e.jsonl"], environment: ["DLQ_ENCRYPTION_KEY": key])
            #expect(retry.status == 0, "\(retry)")
            let exported = try DeadLetterJSON.decode(
                String(decoding: try #require(space.contents("e.jsonl")), as: UTF8.self)
            )
            #expect(exported.payload == Data("secret".utf8))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: space.folder).filter { $0.contains("partial") }
                    .isEmpty
            )
        }

        @Test("a purge that deletes nothing (the store stays locked) leaves the archive as it was")
        func failedPurgeLeavesNoArchive() async throws {
            let space = try Workspace()
            defer { space.remove() }
            _ = try self.populate(space)
            space.write("old.jsonl", "")
            // Another connection holds the write lock past dlq's busy timeout (5 s): the deletes fail.
            let holder = try await WriteLockHolder(path: space.store)
            let run = try space.run(["purge", "--all", "--archive", "a.jsonl", "--yes"])
            expectOneLineError(run, status: 4, containing: "locked")
            #expect(!space.exists("a.jsonl"), "the archive of a purge that removed nothing is removed")
            let existing = try space.run(["purge", "--all", "--archive", "old.jsonl", "--yes"])
            expectOneLineError(existing, status: 4, containing: "locked")
            #expect(space.contents("old.jsonl") == Data(), "an existing archive is cut back to what it was")
            await holder.release()
            #expect(try space.letters().count == 3)
            let names = try FileManager.default.contentsOfDirectory(atPath: space.folder)
            #expect(!names.contains { $0.contains("partial") }, "\(names)")

            let purged = try space.ok(["purge", "--all", "--archive", "a.jsonl", "--yes"])
            #expect(purged.output.contains("purged 3 letters (archived to a.jsonl)"), "\(purged)")
            let archived = String(decoding: try #require(space.contents("a.jsonl")), as: UTF8.self)
            #expect(archived.split(separator: "\n").count == 3)
        }

        @Test("a second store opened on a file in one process keeps the first one's locks, and its commit")
        func secondStoreKeepsLocks() async throws {
            let space = try Workspace()
            defer { space.remove() }
            _ = try self.populate(space)
            // A long import holds the write lock; another store of the same process opens and closes the file.
            let holder = try await WriteLockHolder(path: space.store)
            let second = try SQLiteDeadLetterStore(path: space.store)
            try second.close()
            // Another process closes the file: it must see that it is not the last connection (the import's log
            // stays), and it must still find the store locked.
            try space.ok(["list"])
            let locked = try space.run(["delete", try #require(try space.letters().first?.id)])
            expectOneLineError(locked, status: 4, containing: "locked")
            await holder.release(adding: DeadLetterFixtures.letter(source: "late"))
            #expect(try space.letters(["--source", "late"]).count == 1, "the import's commit is in the store")
        }

        @Test(
            "a store that cannot be written (immutable file and folder) is read: stats, list, show, export, check",
            .enabled(if: Immutable.available, "needs chattr +i (root with CAP_LINUX_IMMUTABLE on ext4 or similar)")
        )
        func readOnlyStore() throws {
            let space = try Workspace()
            defer { space.remove() }
            let export = try self.populate(space)
            let id = try #require(try space.letters().first?.id)
            let before = try FileManager.default.contentsOfDirectory(atPath: space.folder).sorted()
            try Immutable.set([space.store, space.folder])
            defer { try? Immutable.clear([space.store, space.folder]) }

            @discardableResult
            func ok(_ arguments: [String]) throws -> DLQRun {
                let run = try space.run(arguments, timeout: .seconds(60))
                #expect(run.status == 0, "dlq \(arguments.joined(separator: " ")): \(run)")
                return run
            }
            #expect(try ok(["stats", "--json"]).output.contains(#""total":3"#))
            #expect(try JSONDecoder().decode([DeadLetter].self, from: ok(["list", "--json"]).stdout).count == 3)
            try ok(["show", id])
            try ok(["groups"])
            #expect(try ok(["export"]).stdout == export)
            #expect(try ok(["check"]).output.contains("sound"))
            let add = try space.run(
                ["add", "--source", "a", "--reason", "b", "--error-message", "c"],
                timeout: .seconds(60)
            )
            expectOneLineError(add, status: 4, containing: "cannot be written")
            #expect(try FileManager.default.contentsOfDirectory(atPath: space.folder).sorted() == before)
        }

        @Test(
            "as another user, a store file of mode 0644 in a folder of mode 0755 is read, and nothing is created",
            .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"))
        )
        func storeOfAnotherUser() throws {
            let space = try Workspace()
            defer { space.remove() }
            let export = try self.populate(space)
            #expect(chmod(space.store, 0o644) == 0 && chmod(space.folder, 0o755) == 0)
            let before = try FileManager.default.contentsOfDirectory(atPath: space.folder).sorted()
            let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            let stats = try space.run(["stats", "--json"], timeout: .seconds(60), wrapper: nobody)
            #expect(stats.status == 0 && stats.output.contains(#""total":3"#), "\(stats)")
            let exported = try space.run(["export"], timeout: .seconds(60), wrapper: nobody)
            #expect(exported.status == 0 && exported.stdout == export, "\(exported)")
            let add = try space.run(
                ["add", "--source", "a", "--reason", "b", "--error-message", "c"],
                timeout: .seconds(60),
                wrapper: nobody
            )
            expectOneLineError(add, status: 4, containing: "cannot be written")
            #expect(try FileManager.default.contentsOfDirectory(atPath: space.folder).sorted() == before)
        }

        @Test("a damaged store: writes stop with an error naming dlq check; dlq check lists what is wrong (exit 4)")
        func damagedStore() throws {
            let space = try Workspace()
            defer { space.remove() }
            _ = try self.populate(space)
            #expect(
                try space.ok(["check"]).output.contains("dead-letters.sqlite: sound · schema version 5 · 3 letters")
            )
            #expect(
                !space.exists("dead-letters.sqlite-wal") || space.contents("dead-letters.sqlite-wal")?.isEmpty == true
            )
            // Every page but the first (the schema): its page type byte becomes invalid.
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: space.store))
            let size = try handle.seekToEnd()
            for page in stride(from: UInt64(4096), to: size, by: 4096) {
                try handle.seek(toOffset: page)
                try handle.write(contentsOf: Data([0x07]))
            }
            try handle.close()

            let add = try space.run(["add", "--source", "a", "--reason", "b", "--error-message", "c"])
            expectOneLineError(add, status: 4, containing: "damaged")
            #expect(add.stderr.contains("dlq check"), "\(add)")
            let check = try space.run(["check"])
            #expect(check.status == 4, "\(check)")
            #expect(check.output.hasPrefix("dead-letters.sqlite: "), "\(check)")
            #expect(check.output.contains("  ✗ "), "\(check)")
            #expect(check.stderrLines.count == 1 && check.stderr.contains("the store is damaged"), "\(check)")
        }

        @Test("a blank DLQ_ENCRYPTION_KEY is called blank, not a key of 0 bytes")
        func blankKey() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            let run = try space.run(["list"], environment: ["DLQ_ENCRYPTION_KEY": "   "])
            expectOneLineError(run, status: 2, containing: "DLQ_ENCRYPTION_KEY")
            #expect(run.stderr.contains("only blanks"), "\(run)")
            #expect(!run.stderr.contains("0 bytes"), "\(run)")
        }

        @Test("serve on a port in use names the port and --port, not the system call")
        func servePortInUse() throws {
            let space = try Workspace()
            defer { space.remove() }
            try space.add()
            let listener = try Listener()
            defer { listener.close() }
            let run = try space.run(["serve", "--port", "\(listener.port)"], timeout: .seconds(30))
            expectOneLineError(run, status: 2, containing: "127.0.0.1:\(listener.port)")
            #expect(run.stderr.contains("already in use") && run.stderr.contains("--port"), "\(run)")
            #expect(!run.stderr.contains("bind("), "\(run)")
        }
    }
}

extension Workspace {
    /// Runs `dlq ARGUMENTS` (through `wrapper`, a command and its arguments, if given) and kills it at
    /// `timeout` (a hang then fails the test instead of blocking it).
    func run(_ arguments: [String], timeout: Duration, wrapper: [String] = []) throws -> DLQRun {
        let executable = try #require(DLQBinary.path, "the dlq executable was not found; run swift build first")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wrapper.first ?? executable)
        process.arguments = wrapper.isEmpty ? arguments : Array(wrapper.dropFirst()) + [executable] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: self.folder)
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DLQ_STORE")
        environment["NO_COLOR"] = "1"
        process.environment = environment
        // Outside the folder, which a test may have made immutable.
        let outputs = FileManager.default.temporaryDirectory.path + "/dlq-run-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: outputs + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: outputs + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outputs + ".out")
            try? FileManager.default.removeItem(atPath: outputs + ".err")
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outputs + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: outputs + ".err"))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        while process.isRunning, clock.now - start < timeout { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return DLQRun(
            status: process.terminationStatus,
            stdout: FileManager.default.contents(atPath: outputs + ".out") ?? Data(),
            stderr: String(decoding: FileManager.default.contents(atPath: outputs + ".err") ?? Data(), as: UTF8.self),
            elapsed: clock.now - start
        )
    }
}

/// Holds a store's write lock, as another process writing for a long time would: an import whose letters do
/// not come keeps its `BEGIN IMMEDIATE` transaction open until ``release()``.
private final class WriteLockHolder: Sendable {
    private let store: SQLiteDeadLetterStore
    private let letters: AsyncStream<DeadLetter>.Continuation
    private let importing: Task<Void, any Error>

    init(path: String) async throws {
        self.store = try SQLiteDeadLetterStore(path: path)
        let (stream, continuation) = AsyncStream<DeadLetter>.makeStream()
        self.letters = continuation
        let store = self.store
        self.importing = Task { _ = try await store.importLetters(stream, onConflict: .skip) }
        // Wait until the lock is held: a write with a short busy timeout then fails.
        var probe = SQLiteDeadLetterStore.Configuration(path: path, busyTimeout: .milliseconds(20))
        probe.createIfMissing = false
        let other = try SQLiteDeadLetterStore(configuration: probe)
        defer { try? other.close() }
        for _ in 0..<500 {
            do {
                _ = try await other.delete(ids: ["00000000-0000-7000-8000-000000000000"])
                try await Task.sleep(for: .milliseconds(10))
            } catch {
                return
            }
        }
    }

    /// Ends the import, storing `letter` if given.
    func release(adding letter: DeadLetter? = nil) async {
        if let letter { self.letters.yield(letter) }
        self.letters.finish()
        _ = try? await self.importing.value
        try? self.store.close()
    }
}

/// A TCP socket listening on a free port of 127.0.0.1.
private struct Listener {
    let fd: Int32
    let port: Int

    init() throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound)
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        #if canImport(Glibc)
        _ = Glibc.close(self.fd)
        #elseif canImport(Musl)
        _ = Musl.close(self.fd)
        #else
        _ = Darwin.close(self.fd)
        #endif
    }
}

/// `chattr +i`: a file or folder that even root cannot change, to test read-only stores while tests run as
/// root (root ignores mode bits, but not the immutable flag).
enum Immutable {
    /// Whether `chattr +i` works here: root with CAP_LINUX_IMMUTABLE, on a file system that has the flag.
    static let available: Bool = {
        let path = FileManager.default.temporaryDirectory.path + "/dlq-chattr-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: path, contents: Data()) else { return false }
        defer {
            try? Self.clear([path])
            try? FileManager.default.removeItem(atPath: path)
        }
        guard (try? Self.set([path])) != nil else { return false }
        return access(path, W_OK) != 0
    }()

    static func set(_ paths: [String]) throws { try Self.chattr("+i", paths) }
    static func clear(_ paths: [String]) throws { try Self.chattr("-i", paths) }

    private static func chattr(_ flag: String, _ paths: [String]) throws {
        let tool = ["/usr/bin/chattr", "/bin/chattr", "/sbin/chattr"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let tool else { throw CocoaError(.featureUnsupported) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = [flag] + paths
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteNoPermission) }
    }
}
