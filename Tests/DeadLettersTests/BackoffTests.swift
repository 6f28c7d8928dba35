import DeadLetters
import DeadLettersTesting
import Testing

/// The shared seeded generator (SplitMix64), counting its draws.
private struct CountingRandom: RandomNumberGenerator {
    private var random: SeededRandom
    private(set) var draws = 0

    init(seed: UInt64) {
        self.random = SeededRandom(seed: seed)
    }

    mutating func next() -> UInt64 {
        self.draws += 1
        return self.random.next()
    }
}

private func ms(_ value: Int64) -> Duration { .milliseconds(value) }

/// Nanoseconds of a duration the tests build from whole nanoseconds.
private func ns(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}

@Suite("Backoff and jitter")
struct BackoffTests {
    // MARK: Backoff kinds

    @Test func fixedGivesTheSameDelayForEveryAttempt() {
        let backoff = Backoff.fixed(.seconds(3))
        for attempt in [1, 2, 3, 10, 1000, Int.max] {
            #expect(backoff.delay(forAttempt: attempt) == .seconds(3))
        }
        #expect(backoff.maximumDelay == .seconds(3))
    }

    @Test func linearGrowsByTheIncrementUpToTheMaximum() {
        let backoff = Backoff.linear(initial: .seconds(1), increment: ms(500), max: .seconds(3))
        let delays = (1...7).map { backoff.delay(forAttempt: $0) }
        #expect(delays == [ms(1000), ms(1500), ms(2000), ms(2500), ms(3000), ms(3000), ms(3000)])
        #expect(backoff.delay(forAttempt: Int.max) == .seconds(3))
        #expect(backoff.maximumDelay == .seconds(3))
    }

    @Test func linearWithoutMaximumKeepsGrowingAndNeverTraps() {
        let backoff = Backoff.linear(initial: .seconds(2), increment: .seconds(2))
        #expect(backoff.delay(forAttempt: 1) == .seconds(2))
        #expect(backoff.delay(forAttempt: 100) == .seconds(200))
        #expect(backoff.delay(forAttempt: 10_000) == .seconds(20_000))
        #expect(backoff.maximumDelay == nil)
        // Int.max × 2 s overflows any duration: clamped to Int64.max nanoseconds instead of trapping.
        #expect(backoff.delay(forAttempt: Int.max) == .nanoseconds(Int64.max))
    }

    @Test func exponentialDoublesUpToTheCap() {
        let backoff = Backoff.exponential(initial: ms(100), multiplier: 2, max: .seconds(2))
        let delays = (1...7).map { backoff.delay(forAttempt: $0) }
        #expect(delays == [ms(100), ms(200), ms(400), ms(800), ms(1600), ms(2000), ms(2000)])
        #expect(backoff.delay(forAttempt: 64) == .seconds(2))
        #expect(backoff.delay(forAttempt: Int.max) == .seconds(2))
        #expect(backoff.maximumDelay == .seconds(2))
    }

    @Test func exponentialWithAFractionalMultiplierIsExactToTheNanosecond() {
        let backoff = Backoff.exponential(initial: .seconds(1), multiplier: 1.5, max: .seconds(60))
        let delays = (1...5).map { backoff.delay(forAttempt: $0) }
        #expect(delays == [ms(1000), ms(1500), ms(2250), .microseconds(3_375_000), .microseconds(5_062_500)])
        // 1.5^9 = 38.443359375 s
        #expect(backoff.delay(forAttempt: 10) == .nanoseconds(38_443_359_375))
        #expect(backoff.delay(forAttempt: 11) == .seconds(57) + .nanoseconds(665_039_063))
        #expect(backoff.delay(forAttempt: 12) == .seconds(60))
    }

    @Test func exponentialMultiplierBelowOneShrinks() {
        let backoff = Backoff.exponential(initial: .seconds(8), multiplier: 0.5, max: .seconds(8))
        #expect((1...4).map { backoff.delay(forAttempt: $0) } == [.seconds(8), .seconds(4), .seconds(2), .seconds(1)])
        #expect(backoff.delay(forAttempt: Int.max) == .zero)
    }

    @Test func customUsesEachDelayThenRepeatsTheLast() {
        let backoff = Backoff.custom([.seconds(1), .seconds(5), .seconds(30)])
        let delays = (1...6).map { backoff.delay(forAttempt: $0) }
        #expect(delays == [.seconds(1), .seconds(5), .seconds(30), .seconds(30), .seconds(30), .seconds(30)])
        #expect(backoff.maximumDelay == .seconds(30))
        #expect(Backoff.custom([.seconds(9), .seconds(2)]).maximumDelay == .seconds(9))
    }

    @Test(arguments: [
        Backoff.fixed(.seconds(1)),
        .linear(initial: .seconds(1), increment: .seconds(1)),
        .exponential(initial: .seconds(1), max: .seconds(10)),
        .custom([.seconds(1), .seconds(2)]),
    ])
    func attemptsBelowOneAreTakenAsOne(backoff: Backoff) {
        #expect(backoff.delay(forAttempt: 0) == .seconds(1))
        #expect(backoff.delay(forAttempt: -5) == .seconds(1))
        #expect(backoff.delay(forAttempt: Int.min) == .seconds(1))
    }

    @Test func equalBackoffsAreEqualAndDescribed() {
        #expect(Backoff.fixed(.seconds(1)) == .fixed(.seconds(1)))
        #expect(Backoff.fixed(.seconds(1)) != .fixed(.seconds(2)))
        #expect(
            Backoff.exponential(initial: .seconds(1), max: .seconds(4))
                == .exponential(initial: .seconds(1), multiplier: 2, max: .seconds(4))
        )
        #expect(Set([Backoff.custom([.seconds(1)]), .custom([.seconds(1)]), .fixed(.seconds(1))]).count == 2)
        #expect(Backoff.fixed(.seconds(1)).description.hasPrefix("fixed("))
        #expect(Backoff.exponential(initial: .seconds(1), max: .seconds(4)).description.hasPrefix("exponential("))
    }

    // MARK: Backoff validation

    @Test(arguments: [
        Backoff.fixed(.seconds(-1)),
        .linear(initial: .seconds(-1), increment: .seconds(1)),
        .linear(initial: .seconds(1), increment: .seconds(-1)),
        .linear(initial: .seconds(5), increment: .seconds(1), max: .seconds(4)),
        .exponential(initial: .seconds(1), multiplier: 0, max: .seconds(4)),
        .exponential(initial: .seconds(1), multiplier: -2, max: .seconds(4)),
        .exponential(initial: .seconds(1), multiplier: .nan, max: .seconds(4)),
        .exponential(initial: .seconds(1), multiplier: .infinity, max: .seconds(4)),
        .exponential(initial: .seconds(-1), max: .seconds(4)),
        .exponential(initial: .seconds(5), max: .seconds(4)),
        .custom([]),
        .custom([.seconds(1), .seconds(-1)]),
    ])
    func invalidBackoffsAreRejected(backoff: Backoff) {
        let error = #expect(throws: DeadLetterError.self) { try backoff.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("backoff") == true)
    }

    @Test(arguments: [
        Backoff.fixed(.zero),
        .linear(initial: .zero, increment: .zero),
        .linear(initial: .seconds(1), increment: .seconds(1), max: .seconds(1)),
        .exponential(initial: .seconds(1), multiplier: 0.5, max: .seconds(1)),
        .custom([.zero]),
    ])
    func validBackoffsPass(backoff: Backoff) throws {
        try backoff.validate()
    }

    // MARK: Jitter

    @Test func seededRandomIsSplitMix64() {
        // The first outputs of SplitMix64 seeded with 0, from the reference implementation.
        var rng = CountingRandom(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(rng.next() == 0x06C4_5D18_8009_454F)
    }

    @Test func noJitterKeepsTheDelayAndDrawsNothing() {
        var rng = CountingRandom(seed: 1)
        let delay = Jitter.none.apply(to: ms(750), previous: ms(10), base: ms(1), cap: ms(5), using: &rng)
        #expect(delay == ms(750))
        #expect(rng.draws == 0)
    }

    @Test(arguments: [UInt64(1), 42, 0xDEAD_BEEF])
    func fullJitterIsAUniformDrawBetweenZeroAndTheDelay(seed: UInt64) {
        var rng = CountingRandom(seed: seed)
        var expected = CountingRandom(seed: seed)
        for attempt in 1...50 {
            let d = ms(Int64(attempt) * 137)
            let delay = Jitter.full.apply(to: d, previous: nil, base: ms(1), cap: ms(1), using: &rng)
            #expect(delay == .nanoseconds(Int64.random(in: 0...ns(d), using: &expected)))
            #expect(delay >= .zero && delay <= d)
        }
        #expect(rng.draws == expected.draws)
    }

    @Test(arguments: [UInt64(1), 42, 0xDEAD_BEEF])
    func equalJitterKeepsHalfAndDrawsTheOtherHalf(seed: UInt64) {
        var rng = CountingRandom(seed: seed)
        var expected = CountingRandom(seed: seed)
        for attempt in 1...50 {
            // Odd nanosecond counts too: the drawn part is the larger half, so the delay never exceeds d.
            let d = Duration.nanoseconds(Int64(attempt) * 1_000_003)
            let half = ns(d) / 2
            let delay = Jitter.equal.apply(to: d, previous: nil, base: ms(1), cap: ms(1), using: &rng)
            #expect(delay == .nanoseconds(half + Int64.random(in: 0...(ns(d) - half), using: &expected)))
            #expect(delay >= .nanoseconds(half) && delay <= d)
        }
    }

    @Test func jitterOfAKnownSeedGivesKnownDelays() {
        var rng = CountingRandom(seed: 42)
        let full = Jitter.full.apply(to: .seconds(1), previous: nil, base: .zero, cap: .zero, using: &rng)
        let equal = Jitter.equal.apply(to: .seconds(1), previous: nil, base: .zero, cap: .zero, using: &rng)
        let decorrelated = Jitter.decorrelated().apply(
            to: .zero,
            previous: .seconds(2),
            base: .seconds(1),
            cap: .seconds(10),
            using: &rng
        )
        // Computed outside Swift: SplitMix64(42) and the standard library's bounded draw (Lemire's method:
        // the high 64 bits of next() × range size). full: draw(0...1e9); equal: 5e8 + draw(0...5e8);
        // decorrelated: min(10 s, draw(1 s...6 s)).
        #expect(full == .nanoseconds(741_564_879))
        #expect(equal == .nanoseconds(579_955_196))
        #expect(decorrelated == .nanoseconds(2_393_005_651))
    }

    @Test(arguments: [UInt64(7), 99])
    func decorrelatedJitterGrowsFromThePreviousDelayUpToTheCap(seed: UInt64) {
        var rng = CountingRandom(seed: seed)
        var expected = CountingRandom(seed: seed)
        let base = ms(100)
        let cap = .seconds(5) as Duration
        var previous: Duration?
        var expectedPrevious = ns(base)
        for _ in 1...40 {
            let delay = Jitter.decorrelated().apply(
                to: .seconds(999),
                previous: previous,
                base: base,
                cap: cap,
                using: &rng
            )
            let draw = Int64.random(in: ns(base)...(expectedPrevious * 3), using: &expected)
            expectedPrevious = min(ns(cap), draw)
            #expect(delay == .nanoseconds(expectedPrevious))
            #expect(delay >= base && delay <= cap)
            previous = delay
        }
    }

    @Test func decorrelatedJitterWithAnotherMultiplier() {
        var rng = CountingRandom(seed: 5)
        var expected = CountingRandom(seed: 5)
        let delay = Jitter.decorrelated(multiplier: 1.5).apply(
            to: .zero,
            previous: .seconds(4),
            base: .seconds(1),
            cap: .seconds(60),
            using: &rng
        )
        #expect(delay == .nanoseconds(Int64.random(in: 1_000_000_000...6_000_000_000, using: &expected)))
    }

    @Test func emptyRangesNeitherTrapNorDraw() {
        var rng = CountingRandom(seed: 3)
        #expect(Jitter.full.apply(to: .zero, previous: nil, base: .zero, cap: .zero, using: &rng) == .zero)
        #expect(Jitter.equal.apply(to: .zero, previous: nil, base: .zero, cap: .zero, using: &rng) == .zero)
        #expect(
            Jitter.decorrelated().apply(to: .zero, previous: nil, base: .zero, cap: .zero, using: &rng) == .zero
        )
        // previous × 3 below base: the base itself.
        #expect(
            Jitter.decorrelated().apply(to: .zero, previous: ms(1), base: ms(10), cap: ms(50), using: &rng)
                == ms(10)
        )
        #expect(
            Jitter.equal.apply(to: .nanoseconds(1), previous: nil, base: .zero, cap: .zero, using: &rng)
                <= .nanoseconds(1)
        )
        #expect(rng.draws <= 1)
    }

    @Test func decorrelatedJitterNeverExceedsTheCapEvenWhenTheBaseDoes() {
        var rng = CountingRandom(seed: 11)
        let delay = Jitter.decorrelated().apply(
            to: .zero,
            previous: nil,
            base: .seconds(10),
            cap: .seconds(2),
            using: &rng
        )
        #expect(delay == .seconds(2))
    }

    @Test func invalidDecorrelatedMultipliersAreRejected() throws {
        for multiplier in [0.5, 0, -1, .nan, .infinity] {
            let error = #expect(throws: DeadLetterError.self) {
                try Jitter.decorrelated(multiplier: multiplier).validate()
            }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message.contains("multiplier") == true)
        }
        try Jitter.decorrelated(multiplier: 1).validate()
        try Jitter.none.validate()
        try Jitter.full.validate()
        try Jitter.equal.validate()
    }

    @Test func jittersAreEqualByKind() {
        #expect(Jitter.decorrelated() == .decorrelated(multiplier: 3))
        #expect(Jitter.decorrelated(multiplier: 2) != .decorrelated(multiplier: 3))
        #expect(Jitter.full != .equal)
        #expect([Jitter.none, .full, .equal].map(\.description) == ["none", "full", "equal"])
    }
}
