import DeadLetters
import Foundation
import Testing

/// The built `dlq` executable, run as a subprocess on real files in a temporary folder.
///
/// The executable is found next to the test bundle (the build products folder), or at `$DLQ_EXECUTABLE`.
/// Build it first: `swift build` builds every product (with `DLQ_DEV_TARGETS`, list `dlq` too).
enum DLQBinary {
    static let path: String? = {
        if let explicit = ProcessInfo.processInfo.environment["DLQ_EXECUTABLE"] { return explicit }
        var candidates: [URL] = []
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        candidates.append(Bundle.main.bundleURL)
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for folder in candidates {
            var url = folder
            // Walk up from inside a bundle (Contents/MacOS) to the products folder.
            for _ in 0..<4 {
                let path = url.appendingPathComponent("dlq").path
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue,
                    FileManager.default.isExecutableFile(atPath: path)
                {
                    return path
                }
                url.deleteLastPathComponent()
            }
        }
        return nil
    }()
}

/// What one run of `dlq` did.
struct DLQRun: CustomStringConvertible {
    var status: Int32
    var stdout: Data
    var stderr: String
    var elapsed: Duration

    var output: String { String(decoding: self.stdout, as: UTF8.self) }
    var lines: [String] { self.output.split(separator: "\n").map(String.init) }
    var stderrLines: [String] { self.stderr.split(separator: "\n").map(String.init) }

    var description: String {
        "status \(self.status)\n--- stdout\n\(self.output.prefix(4000))\n--- stderr\n\(self.stderr.prefix(4000))"
    }
}

/// A temporary folder, and a way to run `dlq` in it.
struct Workspace: Sendable {
    let folder: String

    init() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/dlq-cli-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        self.folder = folder
    }

    /// The path of a file in the folder.
    func path(_ name: String) -> String { self.folder + "/" + name }

    /// The default store of runs in this folder.
    var store: String { self.path("dead-letters.sqlite") }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.folder)
    }

    /// Runs `dlq ARGUMENTS` in the folder, with `NO_COLOR` set and `DLQ_STORE` unset unless given.
    func run(
        _ arguments: [String],
        stdin: Data? = nil,
        environment: [String: String] = [:]
    ) throws -> DLQRun {
        let executable = try #require(DLQBinary.path, "the dlq executable was not found; run swift build first")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: self.folder)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DLQ_STORE")
        env["NO_COLOR"] = "1"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let outputs = "\(self.folder)/.run-\(UUID().uuidString)"
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
        let input = Pipe()
        process.standardInput = input
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        if let stdin { try input.fileHandleForWriting.write(contentsOf: stdin) }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        let elapsed = clock.now - start
        try out.close()
        try err.close()
        return DLQRun(
            status: process.terminationStatus,
            stdout: FileManager.default.contents(atPath: outputs + ".out") ?? Data(),
            stderr: String(decoding: FileManager.default.contents(atPath: outputs + ".err") ?? Data(), as: UTF8.self),
            elapsed: elapsed
        )
    }

    /// Starts `dlq ARGUMENTS` in the folder without waiting for it (to kill or cancel it meanwhile); its output
    /// is discarded.
    func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(DLQBinary.path))
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: self.folder)
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DLQ_STORE")
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs `dlq ARGUMENTS` and expects exit status 0.
    @discardableResult
    func ok(_ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:]) throws -> DLQRun {
        let run = try self.run(arguments, stdin: stdin, environment: environment)
        #expect(run.status == 0, "dlq \(arguments.joined(separator: " ")): \(run)")
        return run
    }

    /// Adds a letter with `dlq add` and returns its id.
    @discardableResult
    func add(
        source: String = "orders",
        reason: String = "validation",
        errorType: String = "DecodingError",
        message: String = "keyNotFound: total",
        payload: String = #"{"id":1}"#,
        extra: [String] = []
    ) throws -> String {
        let run = try self.ok(
            [
                "add", "--source", source, "--reason", reason, "--error-type", errorType, "--error-message", message,
                "--payload", payload,
            ] + extra
        )
        return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The letters `dlq list --json ARGUMENTS` writes.
    func letters(_ arguments: [String] = []) throws -> [DeadLetter] {
        let run = try self.ok(["list", "--json"] + arguments)
        return try JSONDecoder().decode([DeadLetter].self, from: run.stdout)
    }

    /// The bytes of a file in the folder.
    func contents(_ name: String) -> Data? {
        FileManager.default.contents(atPath: self.path(name))
    }

    func write(_ name: String, _ text: String) {
        _ = FileManager.default.createFile(atPath: self.path(name), contents: Data(text.utf8))
    }

    func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: self.path(name))
    }
}

/// Expects an error the way `dlq` reports one: exit `status`, one line on stderr starting `dlq: error: `,
/// containing `text`, and nothing on stdout.
func expectOneLineError(
    _ run: DLQRun,
    status: Int32,
    containing text: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(run.status == status, "\(run)", sourceLocation: sourceLocation)
    #expect(run.stderrLines.count == 1, "\(run)", sourceLocation: sourceLocation)
    #expect(run.stderr.hasPrefix("dlq: error: "), "\(run)", sourceLocation: sourceLocation)
    #expect(run.stderr.contains(text), "\(run)", sourceLocation: sourceLocation)
    #expect(run.stdout.isEmpty, "\(run)", sourceLocation: sourceLocation)
}
