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
        var lastMilliseconds: Int64 = -1
        var counter: UInt16 = 0
    }
    private let state: PThreadLock<State>

    /// Creates a generator.
    /// - Parameter random: the random source; defaults to the system's.
    public init(random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        self.state = PThreadLock(State(random: random))
    }

    /// A new id for a letter that failed at `date`.
    public func next(at date: Date) -> String {
        var milliseconds = date.millisecondsSince1970
        let (counter, tail): (UInt16, UInt64) = self.state.withLock { state in
            if milliseconds <= state.lastMilliseconds {
                // The same millisecond, or the clock went back: stay ordered after the last id.
                milliseconds = state.lastMilliseconds
                if state.counter < 0xFFF {
                    state.counter += 1
                } else {
                    milliseconds += 1
                    state.counter = UInt16.random(in: 0..<0x800, using: &state.random)
                }
            } else {
                state.counter = UInt16.random(in: 0..<0x800, using: &state.random)
            }
            state.lastMilliseconds = milliseconds
            return (state.counter, UInt64.random(in: 0...UInt64.max, using: &state.random))
        }
        let ms = UInt64(max(0, milliseconds))
        // 48 bits of milliseconds, version 7 and 12 bits of counter, variant 2 and 62 random bits.
        let high = ms << 16 | 0x7000 | UInt64(counter & 0xFFF)
        let low = tail & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        return Self.uuidString(high: high, low: low)
    }

    /// The 36-character, lower-case UUID text of a 128-bit value given as two halves.
    static func uuidString(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                    buffer[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = nibble < 16 ? high : low
                let digit = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (nibble % 16))) & 0xF
                buffer[position] = digit < 10 ? 48 + digit : 87 + digit
                position += 1
            }
            return 36
        }
    }
}
