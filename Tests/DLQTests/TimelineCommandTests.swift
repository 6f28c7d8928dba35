import DeadLetters
import DeadLettersTesting
import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq stats --timeline")
    struct TimelineCommandTests {
        /// Letters that last failed 30 minutes, 2 hours (twice) and 3 days ago; the second reason's failure is new.
        static func seed(_ space: Workspace) throws {
            let now = Date()
            let specs: [(Double, FailureReason, String, Double)] = [
                (0.5, .timeout, "aaaaaaaaaaaaaaaa", 50),
                (2, .timeout, "aaaaaaaaaaaaaaaa", 48),
                (2, .validation, "bbbbbbbbbbbbbbbb", 2),
                (72, .timeout, "cccccccccccccccc", 72),
            ]
            var lines = ""
            for (hoursAgo, reason, fingerprint, firstHoursAgo) in specs {
                var letter = DeadLetterFixtures.letter(source: "orders", reason: reason)
                letter.fingerprint = fingerprint
                letter.lastFailedAt = now.addingTimeInterval(-hoursAgo * 3600)
                letter.firstFailedAt = now.addingTimeInterval(-firstHoursAgo * 3600)
                lines += String(decoding: DeadLetterJSON.encode(letter), as: UTF8.self) + "\n"
            }
            space.write("seed.jsonl", lines)
            _ = try space.ok(["import", space.path("seed.jsonl")])
        }

        @Test("counts letters per hour by when they last failed, by reason, and names the failures first seen")
        func timeline() throws {
            let space = try Workspace()
            defer { space.remove() }
            try Self.seed(space)
            let json = try space.ok(["stats", "--timeline", "24h", "--json"]).output
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            #expect(object["bucket"] as? String == "1h")
            #expect(object["total"] as? Int == 3, "the letter of 3 days ago is outside: \(json)")
            let buckets = try #require(object["buckets"] as? [[String: Any]])
            #expect(buckets.count == 24)
            let totals = buckets.map { $0["total"] as? Int ?? -1 }
            #expect(totals.reduce(0, +) == 3)
            #expect(totals.filter { $0 > 0 }.count <= 3)
            let reasons = buckets.compactMap { $0["reasons"] as? [String: Int] }.reduce(into: [String: Int]()) {
                $0.merge($1, uniquingKeysWith: +)
            }
            #expect(reasons == ["timeout": 2, "validation": 1])
            let firstSeen = try #require(object["firstSeen"] as? [[String: Any]])
            #expect(firstSeen.map { $0["fingerprint"] as? String } == ["bbbbbbbbbbbbbbbb"])

            let week = try space.ok(["stats", "--timeline", "7d", "--json"]).output
            #expect(week.contains(#""bucket":"1d""#) && week.contains(#""total":4"#), "\(week)")
            let orders = try space.ok(["stats", "--timeline", "24h", "--json", "--reason", "validation"]).output
            #expect(orders.contains(#""total":1"#), "filters apply: \(orders)")

            let text = try space.ok(["stats", "--timeline", "24h"]).output
            #expect(text.hasPrefix("3 letters last failed in the last 24h, per hour (UTC)"), "\(text)")
            #expect(text.contains("first seen in this window\n") && text.contains("bbbbbbbbbbbbbbbb"), "\(text)")
            #expect(
                text.split(separator: "\n").count == 1 + 24 + 2,
                "a header, 24 hours, a heading and one failure: \(text)"
            )
        }

        @Test("a wrong length or bucket says what it takes, and --bucket alone is refused")
        func wrongValues() throws {
            let space = try Workspace()
            defer { space.remove() }
            try Self.seed(space)
            for (arguments, expected) in [
                (["--timeline", "fast"], "a timeline's length must be a length of time like 24h or 30d, not 'fast'"),
                (
                    ["--timeline", "24h", "--bucket", "1s"],
                    "a timeline's bucket must be a length of time from 1m to 31d"
                ),
                (["--timeline", "365d", "--bucket", "1m"], "a timeline has at most 1000 buckets"),
                (["--bucket", "1h"], "--bucket goes with --timeline"),
            ] {
                let run = try space.run(["stats"] + arguments)
                #expect(run.status != 0)
                #expect(run.stderr.contains(expected), "\(arguments): \(run.stderr)")
                #expect(run.stderr.split(separator: "\n").count == 1, "one line: \(run.stderr)")
            }
        }
    }
}
