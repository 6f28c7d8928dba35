#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// State guarded by a `pthread_mutex_t`: a lock ThreadSanitizer understands.
///
/// `Synchronization.Mutex` on Linux hands a contended lock over inside the kernel (a priority-inheriting
/// futex), where ThreadSanitizer cannot see it, so `swift test --sanitize=thread` reports races that are not
/// there and exits with status 66. ThreadSanitizer intercepts `pthread_mutex_lock`, so state behind this
/// lock is checked for real.
///
/// On glibc the mutex is adaptive (`PTHREAD_MUTEX_ADAPTIVE_NP`): a thread finding it held spins a little
/// before it sleeps in the kernel. The sections it guards are short (a store's insert, an id drawn), and a
/// plain mutex put the loser to sleep and woke it again at nearly every contended add. Measured
/// (`dlq-benchmarks --only memory --quick`, 8 concurrent `add` callers on the memory store, 2 cores):
/// 655,030-771,943/s plain, 1,007,267-1,586,551/s adaptive in four runs; one caller unchanged (≈ 1,040,000/s)
/// and replay at concurrency 8 unchanged (167,639-199,910/s against 169,914-186,908/s, alternating runs).
///
/// `@unchecked Sendable`: `value` is only read or written while `mutex` is held.
package final class PThreadLock<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Unchecked for overlapping access: the mutex keeps accesses apart, and the run-time check that a
    /// class's `var` otherwise gets (`swift_beginAccess`) was 1.8% of a memory `add` (perf, 100,000 letters).
    @exclusivity(unchecked) private var value: Value

    /// Creates a lock guarding `value`.
    package init(_ value: Value) {
        self.value = value
        self.mutex = .allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        #if canImport(Glibc)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        #endif
        pthread_mutex_init(self.mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    /// Runs `body` with the guarded value while holding the lock.
    package func withLock<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body(&self.value)
    }

    /// Runs `body` with the guarded value and `argument`, moved in, while holding the lock: what `body` keeps
    /// of `argument` is moved, not copied (a closure cannot give away what it captures).
    package func withLock<Argument, Result, Failure: Error>(
        passing argument: consuming Argument,
        _ body: (inout Value, consuming Argument) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body(&self.value, argument)
    }
}
