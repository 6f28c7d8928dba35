import DeadLetters
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq demo")
    struct DemoTests {
        @Test("the demo runs in seconds, recovers what can be recovered, and leaves the rest to explore")
        func demo() throws {
            let space = try Workspace()
            defer { space.remove() }
            let run = try space.ok(["demo"])
            // About 3 s on an idle machine; the margin is for a CI machine running other suites at the same time.
            #expect(run.elapsed < .seconds(15), "took \(run.elapsed)")
            let output = run.output
            for expected in ["processed", "recovered", "dead-lettered", "circuit", "by reason", "FINGERPRINT", "Next"] {
                #expect(output.contains(expected), "\(expected) in the demo's output")
            }
            for command in ["dlq list", "dlq show", "dlq stats"] { #expect(output.contains(command)) }
            #expect(!output.contains("\u{1B}["), "no colours off a terminal")
            #expect(run.stderr.isEmpty, "no progress off a terminal: \(run.stderr)")

            // What is left is permanent: bad data, declined cards. The retryable failures were replayed.
            let letters = try space.letters()
            #expect(!letters.isEmpty)
            let reasons = Set(letters.map(\.reason.rawValue))
            #expect(reasons.isSubset(of: ["decoding", "validation"]), "\(reasons)")
            #expect(letters.allSatisfy { $0.metadata["authorization"] == MetadataRedactor.placeholder })
            let sample = try #require(letters.first)
            #expect(output.contains("dlq show \(sample.id)"))
            #expect(try space.ok(["show", sample.id]).output.contains(sample.errorMessage))
            #expect(!output.contains("--since"), "on a new store, the commands shown are the plain ones")

            // Run again on the same store: the demo shows this run's letters, and the commands it shows say so.
            let again = try space.ok(["demo", "--messages", "200"]).output
            let shown = try #require(again.split(separator: "\n").first { $0.contains("$ dlq stats") })
            let since = try #require(shown.split(separator: " ").last.map(String.init))
            #expect(shown.contains("$ dlq stats --since "), "\(shown)")
            let listed = try #require(again.split(separator: "\n").first { $0.contains("$ dlq list") })
            #expect(listed.hasSuffix("$ dlq list --since \(since)"), "\(listed)")
            let thisRun = try space.ok(["stats", "--json", "--since", since]).output
            let all = try space.ok(["stats", "--json"]).output
            #expect(thisRun != all, "earlier runs' letters are left out")
            let leftLine = try #require(again.split(separator: "\n").first { $0.contains("left: bad data") })
            let leftCount = try #require(leftLine.split(separator: " ").first { Int($0) != nil }.flatMap { Int($0) })
            #expect(thisRun.contains(#""total":\#(leftCount)"#), "\(leftLine) / \(thisRun)")
        }
    }
}
