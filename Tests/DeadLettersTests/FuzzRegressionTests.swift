import DeadLettersTesting
import Foundation
import Testing

/// The fuzz targets' checks (``FuzzChecks``) on every input kept in the repository: the seed corpus and the
/// inputs that once crashed a fuzz run (`Fuzz/regressions/<target>/`, where `scripts/fuzz` puts them).
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    /// Every kept input of `target`: its name and bytes.
    static func inputs(_ target: String) throws -> [(name: String, bytes: Data)] {
        var result: [(String, Data)] = []
        for kind in ["corpus", "regressions"] {
            let folder = self.fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            for name in names.sorted() where !name.hasPrefix(".") {
                result.append(("\(kind)/\(target)/\(name)", try Data(contentsOf: folder.appendingPathComponent(name))))
            }
        }
        return result
    }

    @Test("The decoder's checks hold on every kept input")
    func decoder() throws {
        let inputs = try Self.inputs("FuzzDecoder")
        #expect(inputs.count >= 5, "the seed corpus is in Fuzz/corpus/FuzzDecoder")
        for input in inputs {
            #expect(throws: Never.self, "\(input.name)") {
                try input.bytes.withUnsafeBytes { try FuzzChecks.decoder($0) }
            }
        }
    }

    @Test("The parsers' checks hold on every kept input")
    func parsers() throws {
        let inputs = try Self.inputs("FuzzParsers")
        #expect(inputs.count >= 5, "the seed corpus is in Fuzz/corpus/FuzzParsers")
        for input in inputs {
            #expect(throws: Never.self, "\(input.name)") {
                try input.bytes.withUnsafeBytes { try FuzzChecks.parsers($0) }
            }
        }
    }
}
