import DeadLetters
import Foundation
import Testing

extension CodecTests {
    static let validTimestamps: [(text: String, milliseconds: Int64)] = [
        ("1970-01-01T00:00:00.000Z", 0),
        ("2026-11-23T10:00:00.123Z", 1_795_428_000_123),
        ("2026-11-23T10:00:00Z", 1_795_428_000_000),  // no fraction
        ("2026-11-23T10:00:00.1Z", 1_795_428_000_100),
        ("2026-11-23T10:00:00.123456Z", 1_795_428_000_123),  // finer than milliseconds: cut
        ("2026-11-23T12:00:00.123+02:00", 1_795_428_000_123),  // offsets
        ("2026-11-23T05:30:00.123-04:30", 1_795_428_000_123),
        ("2026-11-23T10:00:00.123+00:00", 1_795_428_000_123),
        ("2026-11-23t10:00:00.123z", 1_795_428_000_123),
        ("2026-11-23 10:00:00.123Z", 1_795_428_000_123),
        ("2000-02-29T00:00:00.000Z", 951_782_400_000),  // leap day of a year divisible by 400
        ("2024-02-29T23:59:59.999Z", 1_709_251_199_999),
        ("2000-01-01T00:00:00.000Z", 946_684_800_000),
        ("1969-12-31T23:59:59.999Z", -1),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
    ]

    @Test(arguments: validTimestamps)
    func parsesTimestamps(text: String, milliseconds: Int64) throws {
        let date = try #require(Timestamp.parse(text))
        #expect(date.millisecondsSince1970 == milliseconds)
    }

    @Test(arguments: [
        "2026-13-01T00:00:00.000Z", "2026-00-10T00:00:00.000Z", "2026-11-31T00:00:00.000Z",
        "2023-02-29T00:00:00.000Z", "1900-02-29T00:00:00.000Z", "2026-11-23T24:00:00.000Z",
        "2026-11-23T10:60:00.000Z", "2026-11-23T10:00:00.000", "2026-11-23T10:00:00.Z", "2026-11-23",
        "2026-11-23T10:00Z", "26-11-23T10:00:00.000Z", "2026-11-23T10:00:00.000+0200", "2026-11-23T10:00:00.000+25:00",
        "2026-11-23T10:00:00.000Z ", " 2026-11-23T10:00:00.000Z", "2026-11-23T10:00:00.000ZZ", "",
        "2026-1a-23T10:00:00.000Z", "+2026-11-23T10:00:00.000Z",
    ])
    func refusesWhatIsNotATimestamp(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test func formatsTimestamps() {
        #expect(Timestamp.format(Date(millisecondsSince1970: 951_782_400_000)) == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp.format(Date(millisecondsSince1970: 1_709_251_199_999)) == "2024-02-29T23:59:59.999Z")
        #expect(Timestamp.format(Date(millisecondsSince1970: -1)) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.format(Date(millisecondsSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        // Rounded to the nearest millisecond.
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1.0006)) == "1970-01-01T00:00:01.001Z")
    }

    @Test func theCodecWritesTimestampsAsTimestampDoes() throws {
        var random = CodecRandom(seed: 11)
        var letter = Self.known
        for _ in 0..<2000 {
            // Years 0000 to 9999 and then some, to reach the clamped path too.
            let ms = Int64(bitPattern: random.next() % 330_000_000_000_000) - 62_167_219_200_000
            letter.firstFailedAt = Date(millisecondsSince1970: ms)
            let json = DeadLetterJSON.string(letter)
            #expect(json.contains(#""firstFailedAt":"\#(Timestamp.format(letter.firstFailedAt))""#), "\(ms)")
            if ms < 253_402_300_800_000 {
                #expect(try DeadLetterJSON.decode(json).firstFailedAt == letter.firstFailedAt, "\(ms)")
            }
        }
    }

    @Test("filter times: ISO 8601, a date alone, or an age; anything else, and absurd ages, are refused")
    func filterTimes() {
        let now = Date(timeIntervalSince1970: 1_795_428_000)
        #expect(DeadLetterFilter.parseTime("2026-11-23", now: now) == Date(timeIntervalSince1970: 1_795_392_000))
        #expect(DeadLetterFilter.parseTime("2026-11-23T10:00:00Z", now: now) == now)
        #expect(DeadLetterFilter.parseTime("1.5h", now: now) == now.addingTimeInterval(-5400))
        #expect(DeadLetterFilter.parseTime(" 2H ", now: now) == now.addingTimeInterval(-7200))
        #expect(DeadLetterFilter.parseTime("500ms", now: now) == now.addingTimeInterval(-0.5))
        #expect(DeadLetterFilter.parseTime("2w", now: now) == now.addingTimeInterval(-1_209_600))
        #expect(DeadLetterFilter.parseTime("5000w\t", now: now) == now.addingTimeInterval(-3_024_000_000))
        let bad = [
            "yesterday", "2h ago", "-2h", "1e30s", "1e10s", "20000w", "nans", "infd", "2026-13-01", "20261123", "h", "",
        ]
        for bad in bad {
            #expect(DeadLetterFilter.parseTime(bad, now: now) == nil, "\(bad)")
        }
    }
}
