#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension MemoryDeadLetterStore {
    /// The store's records, in order, in one block of memory that grows with `realloc`.
    ///
    /// An array grows by allocating a block twice the size, moving every record into it and freeing the old
    /// one: at each doubling the whole store is copied and a new block's pages are faulted in. `realloc` grows a
    /// large block (`mmap`ed by the allocator) by remapping its pages, so records are never copied to grow, and
    /// a smaller one often in place. Records move bitwise (no record points into itself), as an array moves
    /// them. Measured (`dlq-benchmarks --child-seed add-error 100000`, ten alternating runs): an array with
    /// room reserved for every record beforehand, which this approaches, added 9-10% faster than one growing.
    ///
    /// A class, so that ``State`` holds it by reference: the state lives in its lock and is never copied.
    /// Read and written only while that lock is held.
    final class Records {
        // Unchecked: a class's `var`s are otherwise checked for overlapping access at run time, at every
        // read of a record (the lock already keeps accesses apart).
        @exclusivity(unchecked) private var base: UnsafeMutablePointer<Record>?
        @exclusivity(unchecked) private(set) var count = 0
        @exclusivity(unchecked) private var capacity = 0
        /// How many bytes from the block's start are known to have their pages present (see ``populateAhead()``).
        @exclusivity(unchecked) private var populated = 0

        init() {}

        deinit {
            guard let base else { return }
            base.deinitialize(count: self.count)
            free(base)
        }

        var isEmpty: Bool { self.count == 0 }

        /// The record at `index`, read and written where it lies (no copy of the whole record).
        subscript(index: Int) -> Record {
            unsafeAddress {
                precondition(index >= 0 && index < self.count, "record index out of range")
                return UnsafePointer(self.base! + index)
            }
            unsafeMutableAddress {
                precondition(index >= 0 && index < self.count, "record index out of range")
                return self.base! + index
            }
        }

        func withUnsafeBufferPointer<Result>(
            _ body: (UnsafeBufferPointer<Record>) throws -> Result
        ) rethrows -> Result {
            try body(UnsafeBufferPointer(start: self.base, count: self.count))
        }

        func withUnsafeMutableBufferPointer<Result>(
            _ body: (UnsafeMutableBufferPointer<Record>) throws -> Result
        ) rethrows -> Result {
            try body(UnsafeMutableBufferPointer(start: self.base, count: self.count))
        }

        /// Makes room for `count` records in all, growing by doubling, before anything is written: a store that
        /// cannot grow (out of memory) says so and stays as it was.
        /// - Throws: ``DeadLetterError`` `capacityExceeded` when the memory cannot be had.
        func reserve(_ count: Int) throws(DeadLetterError) {
            guard count > self.capacity else { return }
            var capacity = Swift.max(16, self.capacity)
            while capacity < count {
                let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
                capacity = overflow ? count : doubled
            }
            guard self.resize(to: capacity) else {
                throw DeadLetterError(
                    code: .capacityExceeded,
                    message: "the memory store could not grow to \(count) letters: out of memory"
                )
            }
        }

        /// Appends a record; room for it is ``reserve(_:)``d.
        func append(_ record: consuming Record) {
            precondition(self.count < self.capacity, "no room reserved for the record")
            if (self.count + 1) * MemoryLayout<Record>.stride > self.populated { self.populateAhead() }
            (self.base! + self.count).initialize(to: record)
            self.count += 1
        }

        /// How far ahead of the records ``populateAhead()`` makes pages present: 64 pages.
        static let populateChunk = 256 * 1024

        /// Makes the pages of the next ``populateChunk`` bytes of room present, in one call, before records are
        /// written there. Each page first written otherwise faulted in on its own: the records' fresh pages were
        /// 8% of a memory `add`'s samples (perf, 200,000 adds). The room stays as it was (the call writes
        /// nothing); where the kernel cannot (before Linux 5.14), the pages fault in as before. At most a chunk
        /// is present ahead of the records, so the resident memory stays the records'.
        private func populateAhead() {
            let stride = MemoryLayout<Record>.stride
            let room = self.capacity * stride
            let end = Swift.min(room, (self.count + 1) * stride + Self.populateChunk)
            #if canImport(Glibc)
            if let base = self.base {
                let page = Int(getpagesize())
                let start = UnsafeMutableRawPointer(base) + self.populated
                let from = Int(bitPattern: start) & ~(page - 1)
                let to = Int(bitPattern: UnsafeMutableRawPointer(base) + end) & ~(page - 1)
                if to > from {
                    _ = madvise(UnsafeMutableRawPointer(bitPattern: from), to - from, MADV_POPULATE_WRITE)
                }
            }
            #endif
            self.populated = end
        }

        /// Inserts a record at `index`; room for it is ``reserve(_:)``d.
        func insert(_ record: consuming Record, at index: Int) {
            precondition(index >= 0 && index <= self.count, "record index out of range")
            precondition(self.count < self.capacity, "no room reserved for the record")
            let at = self.base! + index
            (at + 1).moveInitialize(from: at, count: self.count - index)
            at.initialize(to: record)
            self.count += 1
        }

        /// Removes the last `count` records.
        func removeLast(_ count: Int) {
            precondition(count >= 0 && count <= self.count, "more records removed than held")
            guard count > 0 else { return }
            (self.base! + (self.count - count)).deinitialize(count: count)
            self.count -= count
            self.shrinkIfSparse()
        }

        /// Removes the records `shouldBeRemoved` selects, keeping the others in order.
        func removeAll(where shouldBeRemoved: (borrowing Record) -> Bool) {
            guard let base = self.base else { return }
            var kept = 0
            for index in 0..<self.count {
                if shouldBeRemoved(base[index]) {
                    (base + index).deinitialize(count: 1)
                } else {
                    if kept != index { (base + kept).moveInitialize(from: base + index, count: 1) }
                    kept += 1
                }
            }
            self.count = kept
            self.shrinkIfSparse()
        }

        /// Gives memory back once at most a quarter of the room is used (a store emptied by a replay).
        private func shrinkIfSparse() {
            guard self.capacity > 1024, self.count < self.capacity / 4 else { return }
            // A block that cannot shrink stays as it is.
            _ = self.resize(to: Swift.max(16, self.count * 2))
        }

        /// Moves the records into a block of `capacity`.
        /// - Returns: `false`, with nothing changed, when the block cannot be had.
        private func resize(to capacity: Int) -> Bool {
            let (bytes, overflow) = capacity.multipliedReportingOverflow(by: MemoryLayout<Record>.stride)
            guard !overflow, let block = realloc(UnsafeMutableRawPointer(self.base), bytes) else { return false }
            self.base = block.bindMemory(to: Record.self, capacity: capacity)
            self.capacity = capacity
            // The records' pages moved with them; the new room's are not yet present.
            self.populated = Swift.min(self.populated, self.count * MemoryLayout<Record>.stride)
            return true
        }
    }
}
