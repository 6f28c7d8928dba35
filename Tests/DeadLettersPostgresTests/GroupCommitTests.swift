import DeadLetters
import DeadLettersTesting
import Testing

@testable import DeadLettersPostgres

/// The group commit's queue alone (no server): who commits, and when a second commit may start.
@Suite("PostgreSQL store: the group commit's queue")
struct GroupCommitTests {
    private static let letters = DeadLetterFixtures.letters(count: 8)

    private static func enqueue(_ commits: GroupCommit, _ range: Range<Int>) -> (id: UInt64, lead: Bool) {
        commits.enqueue(
            Array(Self.letters[range]),
            onConflict: .fail,
            limits: DeadLetterLimits(),
            maxCommitters: 2
        )
    }

    /// A timeout that does not run out (it ends when the hold, released otherwise, cancels it).
    private static let never: @Sendable () async -> Void = { try? await Task.sleep(for: .seconds(3600)) }

    private static func letterCount(_ take: GroupCommit.Take) -> Int? {
        guard case .batch(let requests) = take else { return nil }
        return requests.reduce(0) { $0 + $1.letters.count }
    }

    @Test("beside a commit in progress, a second committer holds until enough letters wait, then takes them all")
    func secondCommitWaitsForEnoughLetters() async {
        let commits = GroupCommit(minLettersBesideCommit: 4)
        let first = Self.enqueue(commits, 0..<1)
        #expect(first.lead)
        #expect(Self.letterCount(commits.takeBatch(maxLetters: 100, leader: first.id)) == 1)

        let second = Self.enqueue(commits, 1..<2)
        #expect(second.lead, "up to two committers")
        guard case .hold = commits.takeBatch(maxLetters: 100, leader: second.id) else {
            Issue.record("one letter waiting beside a commit in progress should hold")
            return
        }
        let held = Task { await commits.hold(timeout: Self.never) }
        while commits.holdingCount == 0 { await Task.yield() }
        #expect(!Self.enqueue(commits, 2..<4).lead, "two committers already")
        #expect(commits.holdingCount == 1, "3 letters wait, fewer than 4")
        _ = Self.enqueue(commits, 4..<5)
        #expect(commits.holdingCount == 0, "the fourth letter releases the committer")
        await held.value
        #expect(Self.letterCount(commits.takeBatch(maxLetters: 100, leader: second.id)) == 4)
    }

    @Test("a held committer is released when the commit in progress ends, whatever waits")
    func heldCommitterReleasedByCommitEnd() async {
        let commits = GroupCommit(minLettersBesideCommit: 100)
        let first = Self.enqueue(commits, 0..<2)
        #expect(Self.letterCount(commits.takeBatch(maxLetters: 100, leader: first.id)) == 2)
        let second = Self.enqueue(commits, 2..<3)
        guard case .hold = commits.takeBatch(maxLetters: 100, leader: second.id) else {
            Issue.record("expected to hold")
            return
        }
        let held = Task { await commits.hold(timeout: Self.never) }
        while commits.holdingCount == 0 { await Task.yield() }
        commits.committed()
        await held.value
        #expect(commits.holdingCount == 0)
        #expect(
            Self.letterCount(commits.takeBatch(maxLetters: 100, leader: second.id)) == 1,
            "no commit in progress now"
        )
    }

    @Test("with no commit in progress a single letter is committed at once, and an empty queue ends the role")
    func loneLetterCommitsAtOnce() {
        let commits = GroupCommit(minLettersBesideCommit: 16)
        let only = Self.enqueue(commits, 0..<1)
        #expect(only.lead)
        #expect(Self.letterCount(commits.takeBatch(maxLetters: 100, leader: only.id)) == 1)
        commits.committed()
        guard case .none = commits.takeBatch(maxLetters: 100, leader: only.id) else {
            Issue.record("an empty queue ends the committer's role")
            return
        }
        // The role ended: the next append leads again.
        #expect(Self.enqueue(commits, 1..<2).lead)
    }

    @Test("an append handed the committer role before it waits, then committed by another, passes the role on")
    func roleHandedToAnAppendCommittedMeanwhileIsNotLost() async {
        let commits = GroupCommit(minLettersBesideCommit: 1)
        var next = 0
        func enqueue() -> (id: UInt64, lead: Bool) {
            defer { next += 1 }
            return Self.enqueue(commits, next..<(next + 1))
        }
        // Twice: each time, without the fix, one of the two committer roles was lost.
        for _ in 0..<2 {
            let first = enqueue()
            #expect(first.lead)
            #expect(Self.letterCount(commits.takeBatch(maxLetters: 1, leader: first.id)) == 1)
            let second = enqueue()
            #expect(second.lead)
            let late = enqueue()  // its task has not called wait() yet
            #expect(!late.lead)
            commits.committed()
            commits.handOver(from: first.id)  // the role goes to `late`, kept until it waits
            #expect(Self.letterCount(commits.takeBatch(maxLetters: 2, leader: second.id)) == 2)
            commits.committed()
            commits.handOver(from: second.id)
            commits.deliver(late.id, .done(.success(DeadLetterAppendResult(inserted: 1))))
            guard case .done = await commits.wait(late.id) else {
                Issue.record("the late append gets its result")
                return
            }
        }
        #expect(enqueue().lead, "with both roles lost, this append would wait forever")
    }

    @Test("a held committer is released by its timeout while the commit in progress still runs (it may wait on a lock)")
    func heldCommitterReleasedByTimeout() async {
        let commits = GroupCommit(minLettersBesideCommit: 100)
        let first = Self.enqueue(commits, 0..<1)
        #expect(Self.letterCount(commits.takeBatch(maxLetters: 100, leader: first.id)) == 1)
        let second = Self.enqueue(commits, 1..<2)
        guard case .hold = commits.takeBatch(maxLetters: 100, leader: second.id) else {
            Issue.record("expected to hold")
            return
        }
        let (fire, trigger) = AsyncStream.makeStream(of: Void.self)
        let held = Task {
            await commits.hold {
                for await _ in fire { return }
            }
        }
        while commits.holdingCount == 0 { await Task.yield() }
        trigger.yield()
        await held.value
        #expect(commits.holdingCount == 0)
        // A timeout that ran out before the hold started waiting releases it at once.
        guard case .hold = commits.takeBatch(maxLetters: 100, leader: second.id) else {
            Issue.record("the first commit is still in progress")
            return
        }
        await commits.hold {}
        #expect(commits.holdingCount == 0)
        // After a hold, the committer takes the letter although the first commit is still in progress.
        #expect(Self.letterCount(commits.takeBatch(maxLetters: 100, leader: second.id, mayHold: false)) == 1)
    }

    @Test("hold(timeout:) returns at once when the commit in progress ended before it was called")
    func holdAfterCommitEnded() async {
        let commits = GroupCommit(minLettersBesideCommit: 100)
        let first = Self.enqueue(commits, 0..<1)
        _ = commits.takeBatch(maxLetters: 100, leader: first.id)
        let second = Self.enqueue(commits, 1..<2)
        guard case .hold = commits.takeBatch(maxLetters: 100, leader: second.id) else {
            Issue.record("expected to hold")
            return
        }
        commits.committed()
        await commits.hold(timeout: Self.never)
        #expect(commits.holdingCount == 0)
    }
}
