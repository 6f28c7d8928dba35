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
/// `@unchecked Sendable`: `value` is only read or written while `mutex` is held.
package final class PThreadLock<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    /// Creates a lock guarding `value`.
    package init(_ value: Value) {
        self.value = value
        self.mutex = .allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(self.mutex, nil)
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
}
