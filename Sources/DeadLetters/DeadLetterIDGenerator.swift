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
        var bytes = [UInt8](repeating: 0, count: 16)
        let ms = UInt64(max(0, milliseconds))
        for k in 0..<6 { bytes[k] = UInt8(truncatingIfNeeded: ms >> (40 - 8 * UInt64(k))) }
        bytes[6] = 0x70 | UInt8(truncatingIfNeeded: counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        for k in 0..<8 { bytes[8 + k] = UInt8(truncatingIfNeeded: tail >> (56 - 8 * UInt64(k))) }
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (k, byte) in bytes.enumerated() {
            if k == 4 || k == 6 || k == 8 || k == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
