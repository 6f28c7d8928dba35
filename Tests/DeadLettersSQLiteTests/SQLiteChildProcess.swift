import DeadLetters
import DeadLettersSQLite
import Foundation
import Testing

/// The crash and permission tests run part of their work in a child process: this test binary started again
/// (`/proc/self/exe`) with `DLQ_SQLITE_CHILD` set, which runs only ``SQLiteChildEntry/child()``.
///
/// The child writes one line per event on stdout (`ACK <id>` once an append returned, `READ <n>` while an
/// import reads, `IMPORTED <n>` once it committed, `ERROR <code> <message>` / `OPENED` for an open), each in
/// one `write(2)`, so the parent sees exactly what was acknowledged before it killed the child.
enum SQLiteChild {
    static let modeVariable = "DLQ_SQLITE_CHILD"
    static let pathVariable = "DLQ_SQLITE_CHILD_PATH"
    static let tagVariable = "DLQ_SQLITE_CHILD_TAG"

    static var isChild: Bool { ProcessInfo.processInfo.environment[modeVariable] != nil }
    static var canSpawn: Bool { FileManager.default.fileExists(atPath: "/proc/self/exe") }

    /// A running child process and its stdout, read line by line.
    final class Running {
        let process = Process()
        private let output = Pipe()
        private var buffer: [UInt8] = []
        private var ended = false

        init(mode: String, path: String, tag: String = "") throws {
            self.process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            self.process.arguments = ["--testing-library", "swift-testing", "--filter", "SQLiteChildEntry"]
            var environment = ProcessInfo.processInfo.environment
            environment[SQLiteChild.modeVariable] = mode
            environment[SQLiteChild.pathVariable] = path
            environment[SQLiteChild.tagVariable] = tag
            self.process.environment = environment
            self.process.standardOutput = self.output
            self.process.standardError = FileHandle.nullDevice
            try self.process.run()
        }

        /// The next line of the child's stdout, or `nil` once it closed (the child ended).
        func nextLine() -> String? {
            while true {
                if let newline = self.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: self.buffer[..<newline], as: UTF8.self)
                    self.buffer.removeSubrange(...newline)
                    return line
                }
                if self.ended { return nil }
                let chunk = self.output.fileHandleForReading.availableData
                if chunk.isEmpty { self.ended = true } else { self.buffer.append(contentsOf: chunk) }
            }
        }

        /// The next line that starts with one of `prefixes`, skipping the test runner's own output.
        func nextEvent(_ prefixes: [String]) -> String? {
            while let line = self.nextLine() {
                if prefixes.contains(where: { line.hasPrefix($0) }) { return line }
            }
            return nil
        }

        /// Kills the child with SIGKILL, then returns the events it had written.
        func kill(collecting prefixes: [String]) -> [String] {
            Foundation.kill(self.process.processIdentifier, SIGKILL)
            var rest: [String] = []
            while let line = self.nextEvent(prefixes) { rest.append(line) }
            self.process.waitUntilExit()
            return rest
        }
    }

    /// Writes one event line in a single `write(2)`.
    static func emit(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
    }
}

/// The child side: does what `DLQ_SQLITE_CHILD` says and never returns when it appends (it is killed).
@Suite("SQLite child process", .enabled(if: SQLiteChild.isChild, "runs only in the child of a crash test"))
struct SQLiteChildEntry {
    @Test func child() async throws {
        let environment = ProcessInfo.processInfo.environment
        let path = environment[SQLiteChild.pathVariable] ?? ""
        let tag = environment[SQLiteChild.tagVariable] ?? ""
        switch environment[SQLiteChild.modeVariable] {
        case "append":
            let store = try SQLiteDeadLetterStore(path: path)
            let ids = DeadLetterIDGenerator()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<8 {
                    group.addTask {
                        while true {
                            let count = task % 3 + 1
                            let letters = (0..<count).map { index in
                                SQLiteChildLetters.make(id: ids.next(at: Date()), source: "task-\(task)", index: index)
                            }
                            try await store.append(letters)
                            for letter in letters { SQLiteChild.emit("ACK \(letter.id)") }
                        }
                    }
                }
                try await group.waitForAll()
            }
        case "import":
            let store = try SQLiteDeadLetterStore(path: path)
            let result = try await store.importLetters(SQLiteChildLetters.Import(tag: tag), onConflict: .fail)
            SQLiteChild.emit("IMPORTED \(result.inserted)")
        case "open":
            if getuid() == 0 {
                // Root ignores permissions: become nobody so that a read-only folder is read-only.
                guard setgid(65534) == 0, setuid(65534) == 0 else {
                    SQLiteChild.emit("ERROR cannot drop privileges")
                    return
                }
            }
            do {
                let store = try SQLiteDeadLetterStore(path: path)
                _ = try await store.count(DeadLetterFilter())
                SQLiteChild.emit("OPENED")
            } catch let error as DeadLetterError {
                SQLiteChild.emit("ERROR \(error.code) \(error)")
            }
        default:
            Issue.record("unknown child mode")
        }
    }
}

/// Letters the child writes.
enum SQLiteChildLetters {
    static let importCount = 20_000

    static func make(id: String, source: String, index: Int) -> DeadLetter {
        DeadLetter(
            id: id,
            source: source,
            reason: .timeout,
            errorType: "ChildError",
            errorMessage: "child letter \(index)",
            causes: ["Underlying: cause \(index)"],
            attempts: index + 1,
            firstFailedAt: Date(),
            metadata: ["index": "\(index)"],
            payload: Data(repeating: UInt8(index % 256), count: 200 + index)
        )
    }

    /// ``importCount`` letters of source `tag`, announcing every 1,000th read with `READ <n>`.
    struct Import: AsyncSequence, Sendable {
        let tag: String

        struct AsyncIterator: AsyncIteratorProtocol {
            let tag: String
            var index = 0
            let ids = DeadLetterIDGenerator()

            mutating func next() async throws -> DeadLetter? {
                guard self.index < SQLiteChildLetters.importCount else { return nil }
                defer { self.index += 1 }
                if self.index % 1000 == 0 { SQLiteChild.emit("READ \(self.index)") }
                return SQLiteChildLetters.make(id: self.ids.next(at: Date()), source: self.tag, index: self.index)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(tag: self.tag) }
    }
}
