#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Makes dead-letter ids: UUIDv7 (RFC 9562) in lower case, unique and ordered by time.
///
/// Ids made in the same millisecond by one generator are ordered too: the 12 bits after the version hold a
/// counter seeded at random each millisecond (RFC 9562, method 1). The random source is injected, so tests
/// get exact ids.
public final class DeadLetterIDGenerator: Sendable {
    private struct State {
        var random: any RandomNumberGenerator & Sendable
        /// The queue's own source, drawn from without the existential (`random(in:using:)` on `any
        /// RandomNumberGenerator` runs unspecialized: 2% of a memory `add`); `random` is unused when set.
        var splitMix: SplitMix?
        var lastMilliseconds: Int64 = -1
        var counter: UInt16 = 0

        mutating func counterSeed() -> UInt16 {
            if self.splitMix != nil { return UInt16.random(in: 0..<0x800, using: &self.splitMix!) }
            return UInt16.random(in: 0..<0x800, using: &self.random)
        }

        mutating func tail() -> UInt64 {
            if self.splitMix != nil { return self.splitMix!.next() }
            return UInt64.random(in: 0...UInt64.max, using: &self.random)
        }
    }
    private let state: PThreadLock<State>

    /// Creates a generator.
    /// - Parameter random: the random source; defaults to the system's.
    public init(random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        self.state = PThreadLock(State(random: random))
    }

    /// A generator drawing from SplitMix64 seeded with `seed` (a queue's, seeded from its random source).
    init(seed: UInt64) {
        self.state = PThreadLock(State(random: SystemRandomNumberGenerator(), splitMix: SplitMix(seed: seed)))
    }

    /// A new id for a letter that failed at `date`.
    public func next(at date: Date) -> String {
        let (high, low) = self.nextValue(atMilliseconds: date.millisecondsSince1970)
        return Self.uuidString(high: high, low: low)
    }

    /// A new id as its two 64-bit halves (``next(at:)`` before it is written as text), for a letter that
    /// failed `milliseconds` after 1970: the memory store keeps ids packed so, and an `add` to it makes the
    /// text only for its caller.
    func nextValue(atMilliseconds milliseconds: Int64) -> (high: UInt64, low: UInt64) {
        var milliseconds = milliseconds
        let (counter, tail): (UInt16, UInt64) = self.state.withLock { state in
            if milliseconds <= state.lastMilliseconds {
                // The same millisecond, or the clock went back: stay ordered after the last id.
                milliseconds = state.lastMilliseconds
                if state.counter < 0xFFF {
                    state.counter += 1
                } else {
                    milliseconds += 1
                    state.counter = state.counterSeed()
                }
            } else {
                state.counter = state.counterSeed()
            }
            state.lastMilliseconds = milliseconds
            return (state.counter, state.tail())
        }
        let ms = UInt64(max(0, milliseconds))
        // 48 bits of milliseconds, version 7 and 12 bits of counter, variant 2 and 62 random bits.
        let high = ms << 16 | 0x7000 | UInt64(counter & 0xFFF)
        let low = tail & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        return (high, low)
    }

    /// The 36-character, lower-case UUID text of a 128-bit value given as two halves.
    ///
    /// Two digits at a time from a table: every `add` returns its id as this text, and a nibble at a time
    /// with a test for the dashes was 2% of a memory `add` (perf, 300,000 letters).
    static func uuidString(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            let out = UnsafeMutableRawPointer(buffer.baseAddress!)
            hexPairs.withUnsafeBufferPointer { pairs in
                // Where each of the 16 bytes goes: the dashes sit at 8, 13, 18 and 23.
                let offsets = (0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34)
                withUnsafeBytes(of: offsets) { raw in
                    let offsets = raw.bindMemory(to: Int.self)
                    for index in 0..<16 {
                        let word = index < 8 ? high : low
                        let byte = Int(truncatingIfNeeded: word >> UInt64(56 - 8 * (index % 8))) & 0xFF
                        out.storeBytes(of: pairs[byte], toByteOffset: offsets[index], as: UInt16.self)
                    }
                }
            }
            buffer[8] = UInt8(ascii: "-")
            buffer[13] = UInt8(ascii: "-")
            buffer[18] = UInt8(ascii: "-")
            buffer[23] = UInt8(ascii: "-")
            return 36
        }
    }

    /// The two lower-case hex digits of each byte, in memory order.
    private static let hexPairs: [UInt16] = (0..<256).map { byte in
        let digits = Array("0123456789abcdef".utf8)
        return (UInt16(digits[byte >> 4]) | UInt16(digits[byte & 0xF]) << 8).littleEndian
    }
}
