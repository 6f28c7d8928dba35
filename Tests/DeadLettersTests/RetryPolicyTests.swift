import DeadLetters
import DeadLettersTesting
import Testing

/// Nanoseconds of a duration the tests build from whole nanoseconds.
private func ns(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test func defaultsAreTheDocumentedOnes() throws {
        let policy = RetryPolicy()
        #expect(policy == .default)
        #expect(policy.immediateAttempts == 3)
        #expect(policy.immediateBackoff == .exponential(initial: .milliseconds(100), multiplier: 2, max: .seconds(2)))
        #expect(policy.delayedAttempts == 5)
        #expect(policy.delayedBackoff == .exponential(initial: .seconds(10), multiplier: 6, max: .seconds(21_600)))
        #expect(policy.jitter == .equal)
        #expect(policy.overrides.isEmpty)
        try policy.validate()
    }

    @Test func defaultDelayedBackoffGoesFromSecondsToHours() {
        var rng = SeededRandom(seed: 0)
        var policy = RetryPolicy.default
        policy.jitter = .none
        let delays = (1...5).map {
            policy.delayedDelay(afterDelayedAttempt: $0, reason: .timeout, previous: nil, using: &rng)
        }
        // 10 s, 1 min, 6 min, 36 min, 3 h 36 min.
        #expect(delays == [.seconds(10), .seconds(60), .seconds(360), .seconds(2160), .seconds(12_960)])
        #expect(policy.delayedDelay(afterDelayedAttempt: 6, reason: .timeout, previous: nil, using: &rng) == nil)
        // With more attempts, the cap of 6 h holds.
        policy.delayedAttempts = 8
        #expect(
            policy.delayedDelay(afterDelayedAttempt: 6, reason: .timeout, previous: nil, using: &rng)
                == .seconds(21_600)
        )
        #expect(
            policy.delayedDelay(afterDelayedAttempt: 8, reason: .timeout, previous: nil, using: &rng)
                == .seconds(21_600)
        )
        #expect(policy.delayedDelay(afterDelayedAttempt: 9, reason: .timeout, previous: nil, using: &rng) == nil)
    }

    @Test func immediateDelaysFollowTheImmediateBackoff() {
        var rng = SeededRandom(seed: 0)
        var policy = RetryPolicy.default
        policy.jitter = .none
        let delays = (1...6).map { policy.immediateDelay(afterAttempt: $0, previous: nil, using: &rng) }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
                .seconds(2),
            ]
        )
        #expect(policy.immediateDelay(afterAttempt: 0, previous: nil, using: &rng) == .milliseconds(100))
    }

    @Test(arguments: [UInt64(1), 2024])
    func defaultEqualJitterKeepsHalfOfEachDelay(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var expected = SeededRandom(seed: seed)
        let policy = RetryPolicy.default
        for attempt in 1...4 {
            let d = ns(policy.immediateBackoff.delay(forAttempt: attempt))
            let delay = policy.immediateDelay(afterAttempt: attempt, previous: nil, using: &rng)
            #expect(delay == .nanoseconds(d / 2 + Int64.random(in: 0...(d - d / 2), using: &expected)))
        }
        for attempt in 1...5 {
            let d = ns(policy.delayedBackoff.delay(forAttempt: attempt))
            let delay = policy.delayedDelay(
                afterDelayedAttempt: attempt,
                reason: .dependency,
                previous: nil,
                using: &rng
            )
            #expect(delay == .nanoseconds(d / 2 + Int64.random(in: 0...(d - d / 2), using: &expected)))
        }
    }

    @Test func fullJitterThroughThePolicy() {
        var rng = SeededRandom(seed: 77)
        var expected = SeededRandom(seed: 77)
        let policy = RetryPolicy(delayedBackoff: .fixed(.seconds(30)), jitter: .full)
        let delay = policy.delayedDelay(afterDelayedAttempt: 2, reason: .timeout, previous: nil, using: &rng)
        #expect(delay == .nanoseconds(Int64.random(in: 0...30_000_000_000, using: &expected)))
    }

    @Test func decorrelatedJitterUsesTheBackoffsBaseCapAndPreviousDelay() {
        let backoff = Backoff.exponential(initial: .seconds(1), multiplier: 2, max: .seconds(30))
        let policy = RetryPolicy(immediateAttempts: 5, immediateBackoff: backoff, jitter: .decorrelated())
        var rng = SeededRandom(seed: 9)
        var expected = SeededRandom(seed: 9)
        // The given previous delay: a draw in base...previous × 3.
        let given = policy.immediateDelay(afterAttempt: 2, previous: .seconds(4), using: &rng)
        #expect(given == .nanoseconds(Int64.random(in: 1_000_000_000...12_000_000_000, using: &expected)))
        // No previous delay: the backoff's delay for the attempt before stands in (2 s before attempt 3).
        let standIn = policy.immediateDelay(afterAttempt: 3, previous: nil, using: &rng)
        #expect(standIn == .nanoseconds(Int64.random(in: 1_000_000_000...6_000_000_000, using: &expected)))
        // The cap is the backoff's maximum.
        let capped = policy.immediateDelay(afterAttempt: 9, previous: .seconds(29), using: &rng)
        let draw = Int64.random(in: 1_000_000_000...87_000_000_000, using: &expected)
        #expect(capped == .nanoseconds(min(30_000_000_000, draw)))
    }

    @Test func permanentReasonsAreNeverRetried() {
        var rng = SeededRandom(seed: 0)
        let policy = RetryPolicy.default
        for reason in FailureReason.allKnown where !reason.isRetryable {
            #expect(!policy.isRetryable(reason))
            #expect(policy.maxDelayedAttempts(for: reason) == 0)
            #expect(policy.maxImmediateAttempts(for: reason) == 1)
            #expect(policy.delayedDelay(afterDelayedAttempt: 1, reason: reason, previous: nil, using: &rng) == nil)
        }
        for reason in FailureReason.allKnown where reason.isRetryable {
            #expect(policy.isRetryable(reason))
            #expect(policy.maxDelayedAttempts(for: reason) == 5)
            #expect(policy.maxImmediateAttempts(for: reason) == 3)
            #expect(policy.delayedDelay(afterDelayedAttempt: 1, reason: reason, previous: nil, using: &rng) != nil)
        }
        #expect(
            Set(FailureReason.allKnown.filter { !$0.isRetryable }.map(\.rawValue))
                == ["validation", "decoding", "unauthorized", "notFound", "expired"]
        )
    }

    @Test func userReasonsKeepTheirRetryability() {
        var rng = SeededRandom(seed: 0)
        let policy = RetryPolicy.default
        let flaky = FailureReason("flakyPartner", retryable: true)
        let fraud = FailureReason("fraudSuspected", retryable: false)
        #expect(policy.isRetryable(flaky))
        #expect(!policy.isRetryable(fraud))
        #expect(policy.delayedDelay(afterDelayedAttempt: 1, reason: fraud, previous: nil, using: &rng) == nil)
        // An unknown stored name is not retryable.
        #expect(!policy.isRetryable(FailureReason(rawValue: "somethingNew")))
    }

    @Test func overridesChangeRetryabilityAttemptsAndBackoffPerReason() {
        var rng = SeededRandom(seed: 0)
        let policy = RetryPolicy(
            jitter: .none,
            overrides: [
                .rateLimited: .init(delayedAttempts: 2, backoff: .fixed(.seconds(300))),
                .timeout: .init(retryable: false),
                .notFound: .init(retryable: true, immediateAttempts: 1, delayedAttempts: 1),
                .conflict: .init(immediateAttempts: 10),
            ]
        )
        // rateLimited: two delayed attempts, five minutes apart.
        #expect(policy.maxDelayedAttempts(for: .rateLimited) == 2)
        #expect(policy.delayedBackoff(for: .rateLimited) == .fixed(.seconds(300)))
        #expect(
            policy.delayedDelay(afterDelayedAttempt: 1, reason: .rateLimited, previous: nil, using: &rng)
                == .seconds(300)
        )
        #expect(
            policy.delayedDelay(afterDelayedAttempt: 2, reason: .rateLimited, previous: nil, using: &rng)
                == .seconds(300)
        )
        #expect(policy.delayedDelay(afterDelayedAttempt: 3, reason: .rateLimited, previous: nil, using: &rng) == nil)
        // timeout: turned permanent.
        #expect(!policy.isRetryable(.timeout))
        #expect(policy.maxDelayedAttempts(for: .timeout) == 0)
        #expect(policy.maxImmediateAttempts(for: .timeout) == 1)
        #expect(policy.delayedDelay(afterDelayedAttempt: 1, reason: .timeout, previous: nil, using: &rng) == nil)
        // notFound: made retryable, once, with the policy's delayed backoff.
        #expect(policy.isRetryable(.notFound))
        #expect(policy.maxImmediateAttempts(for: .notFound) == 1)
        #expect(policy.maxDelayedAttempts(for: .notFound) == 1)
        #expect(
            policy.delayedDelay(afterDelayedAttempt: 1, reason: .notFound, previous: nil, using: &rng) == .seconds(10)
        )
        #expect(policy.delayedDelay(afterDelayedAttempt: 2, reason: .notFound, previous: nil, using: &rng) == nil)
        // conflict: more immediate attempts, the rest unchanged.
        #expect(policy.maxImmediateAttempts(for: .conflict) == 10)
        #expect(policy.maxDelayedAttempts(for: .conflict) == 5)
        // Reasons without an override keep the defaults.
        #expect(policy.maxDelayedAttempts(for: .dependency) == 5)
        #expect(policy.delayedBackoff(for: .dependency) == RetryPolicy.defaultDelayedBackoff)
    }

    @Test func anOverrideOfAttemptsDoesNotMakeAPermanentReasonRetryable() {
        var rng = SeededRandom(seed: 0)
        let policy = RetryPolicy(overrides: [.validation: .init(immediateAttempts: 4, delayedAttempts: 3)])
        #expect(!policy.isRetryable(.validation))
        #expect(policy.maxImmediateAttempts(for: .validation) == 1)
        #expect(policy.maxDelayedAttempts(for: .validation) == 0)
        #expect(policy.delayedDelay(afterDelayedAttempt: 1, reason: .validation, previous: nil, using: &rng) == nil)
    }

    @Test func noneRetriesNothing() throws {
        var rng = SeededRandom(seed: 0)
        let policy = RetryPolicy.none
        try policy.validate()
        #expect(policy.immediateAttempts == 1)
        #expect(policy.delayedAttempts == 0)
        for reason in FailureReason.allKnown {
            #expect(policy.maxImmediateAttempts(for: reason) == 1)
            #expect(policy.maxDelayedAttempts(for: reason) == 0)
            #expect(policy.delayedDelay(afterDelayedAttempt: 1, reason: reason, previous: nil, using: &rng) == nil)
        }
    }

    @Test func delayedAttemptNumbersBelowOneAreTakenAsOne() {
        var rng = SeededRandom(seed: 0)
        let policy = RetryPolicy(jitter: .none)
        #expect(
            policy.delayedDelay(afterDelayedAttempt: 0, reason: .timeout, previous: nil, using: &rng) == .seconds(10)
        )
        #expect(
            policy.delayedDelay(afterDelayedAttempt: -3, reason: .timeout, previous: nil, using: &rng) == .seconds(10)
        )
        let single = RetryPolicy(delayedAttempts: 0)
        #expect(single.delayedDelay(afterDelayedAttempt: 0, reason: .timeout, previous: nil, using: &rng) == nil)
    }

    // MARK: Validation

    @Test(arguments: [
        (RetryPolicy(immediateAttempts: 0), "immediateAttempts"),
        (RetryPolicy(immediateAttempts: -1), "immediateAttempts"),
        (RetryPolicy(delayedAttempts: -1), "delayedAttempts"),
        (
            RetryPolicy(immediateBackoff: .exponential(initial: .seconds(1), multiplier: 0, max: .seconds(2))),
            "immediateBackoff"
        ),
        (
            RetryPolicy(delayedBackoff: .exponential(initial: .seconds(1), multiplier: -1, max: .seconds(2))),
            "delayedBackoff"
        ),
        (RetryPolicy(delayedBackoff: .fixed(.seconds(-1))), "delayedBackoff"),
        (RetryPolicy(delayedBackoff: .custom([])), "delayedBackoff"),
        (RetryPolicy(jitter: .decorrelated(multiplier: 0.5)), "jitter"),
        (RetryPolicy(overrides: [.timeout: .init(delayedAttempts: -1)]), "overrides[timeout].delayedAttempts"),
        (RetryPolicy(overrides: [.timeout: .init(immediateAttempts: 0)]), "overrides[timeout].immediateAttempts"),
        (RetryPolicy(overrides: [.rateLimited: .init(backoff: .custom([]))]), "overrides[rateLimited].backoff"),
    ])
    func invalidPoliciesAreRejectedNamingTheField(policy: RetryPolicy, field: String) {
        let error = #expect(throws: DeadLetterError.self) { try policy.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("RetryPolicy.\(field)") == true, "\(error?.message ?? "")")
    }

    @Test func validPoliciesPass() throws {
        try RetryPolicy(immediateAttempts: 1, delayedAttempts: 0).validate()
        try RetryPolicy(
            immediateBackoff: .fixed(.zero),
            delayedBackoff: .linear(initial: .seconds(1), increment: .seconds(1)),
            jitter: .decorrelated(),
            overrides: [.validation: .init(retryable: true, delayedAttempts: 0)]
        ).validate()
    }
}
