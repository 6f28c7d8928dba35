public import DeadLetters

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Ready-made dead letters for tests, with sensible defaults for every field.
public enum DeadLetterFixtures {
    /// The time fixtures fail at by default: 2026-01-01T00:00:00Z, the start of a new ``ManualClock``.
    public static let epoch = ManualClock.defaultStart

    private static let ids = DeadLetterIDGenerator(random: SeededRandom(seed: 0x5EED))

    /// A new id, unique in the process and ordered after every id this function returned before.
    /// - Parameter date: the time encoded in the id; ``epoch`` by default.
    public static func nextID(at date: Date = DeadLetterFixtures.epoch) -> String {
        self.ids.next(at: date)
    }

    /// A dead letter; every parameter has a default.
    /// - Parameters:
    ///   - id: the id; `nil` (the default) takes a new unique one from ``nextID(at:)``.
    ///   - status: `.dead` by default; with `.retrying` and no `nextAttemptAt`, `nextAttemptAt` is
    ///     `lastFailedAt`, so the letter is due from then on.
    public static func letter(
        id: String? = nil,
        source: String = "orders",
        reason: FailureReason = .processing,
        errorType: String = "FixtureError",
        errorMessage: String = "processing failed",
        causes: [String] = [],
        attempts: Int = 1,
        firstFailedAt: Date = DeadLetterFixtures.epoch,
        lastFailedAt: Date? = nil,
        status: DeadLetterStatus = .dead,
        nextAttemptAt: Date? = nil,
        expiresAt: Date? = nil,
        fingerprint: String? = nil,
        replayCount: Int = 0,
        metadata: [String: String] = [:],
        contentType: String? = "application/json",
        payload: Data = Data(#"{"order":42}"#.utf8),
        history: [DeadLetter.HistoryEntry] = []
    ) -> DeadLetter {
        let last = lastFailedAt ?? firstFailedAt
        return DeadLetter(
            id: id ?? self.nextID(at: firstFailedAt),
            source: source,
            reason: reason,
            errorType: errorType,
            errorMessage: errorMessage,
            causes: causes,
            attempts: attempts,
            firstFailedAt: firstFailedAt,
            lastFailedAt: last,
            nextAttemptAt: nextAttemptAt ?? (status == .retrying ? last : nil),
            expiresAt: expiresAt,
            status: status,
            fingerprint: fingerprint,
            replayCount: replayCount,
            metadata: metadata,
            contentType: contentType,
            payload: payload,
            history: history
        )
    }

    /// `count` letters with increasing ids, failing `interval` apart from `start`.
    ///
    /// The ids come from a `DeadLetterIDGenerator` seeded with `seed`, so the same call gives the same ids.
    /// - Parameters:
    ///   - count: how many letters.
    ///   - start: when the first one failed; ``epoch`` by default.
    ///   - interval: the time between two letters; one second by default.
    ///   - seed: the seed of the ids' random bits.
    ///   - configure: changes each letter after it is made (its index is given); the id should stay. Dates
    ///     it sets are rounded to the millisecond afterwards, as stores keep them.
    public static func letters(
        count: Int,
        start: Date = DeadLetterFixtures.epoch,
        interval: Duration = .seconds(1),
        seed: UInt64 = 1,
        configure: (Int, inout DeadLetter) -> Void = { _, _ in }
    ) -> [DeadLetter] {
        let generator = DeadLetterIDGenerator(random: SeededRandom(seed: seed))
        var letters: [DeadLetter] = []
        letters.reserveCapacity(count)
        for index in 0..<max(0, count) {
            let date = start.adding(.milliseconds(Int64(index) * interval.milliseconds))
            var letter = self.letter(
                id: generator.next(at: date),
                errorMessage: "processing failed for item \(index)",
                firstFailedAt: date
            )
            configure(index, &letter)
            letters.append(self.normalized(letter))
        }
        return letters
    }
}

extension DeadLetterFixtures {
    /// `letter` with every date rounded to the millisecond, exactly as a store reads it back.
    ///
    /// `DeadLetter`'s initializer rounds its dates, but a date assigned afterwards (`letter.lastFailedAt =
    /// start.adding(.seconds(5))`) may differ from the read-back date in its last bit, and `==` compares dates
    /// exactly.
    public static func normalized(_ letter: DeadLetter) -> DeadLetter {
        var letter = letter
        letter.firstFailedAt = letter.firstFailedAt.roundedToMilliseconds
        letter.lastFailedAt = letter.lastFailedAt.roundedToMilliseconds
        letter.nextAttemptAt = letter.nextAttemptAt?.roundedToMilliseconds
        letter.expiresAt = letter.expiresAt?.roundedToMilliseconds
        for index in letter.history.indices {
            letter.history[index].at = letter.history[index].at.roundedToMilliseconds
        }
        return letter
    }
}

extension Duration {
    fileprivate var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
