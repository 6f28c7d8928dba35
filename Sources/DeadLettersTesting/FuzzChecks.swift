import DeadLetters

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the fuzz targets (`Fuzz/`, run by `scripts/fuzz`) check on every input, and the regression tests run on
/// the inputs kept in `Fuzz/corpus` and `Fuzz/regressions`: a crash, a hang or a thrown ``Failure`` is a bug.
public enum FuzzChecks {
    /// A property of the code under test that an input broke.
    public struct Failure: Error, CustomStringConvertible {
        /// What was expected and what happened.
        public var description: String
    }

    /// The JSON Lines decoder on arbitrary bytes, as one line (``DeadLetterJSON/decode(_:line:)-(UnsafeRawBufferPointer,_)``)
    /// and as a file (``JSONLinesReader``): malformed input is refused with ``DeadLetterError`` `invalidFormat`;
    /// a letter read is one ``DeadLetter/validate()`` accepts, and it reads back the same from its canonical
    /// JSON and from its `Codable` form.
    /// - Throws: ``Failure`` when a property does not hold.
    public static func decoder(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            try self.readBack(try DeadLetterJSON.decode(bytes, line: 1))
        } catch let error as DeadLetterError {
            guard error.code == .invalidFormat, error.line == 1 else {
                throw Failure(
                    description: "decode threw \(error.code) at line \(error.line.map(String.init) ?? "none")"
                )
            }
        }
        // As a file, through a pipe: whatever fits in the pipe's buffer without a reader.
        guard bytes.count <= 60_000 else { return }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw Failure(description: "pipe() failed") }
        var offset = 0
        while offset < bytes.count {
            let written = write(ends[1], bytes.baseAddress! + offset, bytes.count - offset)
            guard written > 0 else {
                close(ends[0])
                close(ends[1])
                throw Failure(description: "could not fill the pipe")
            }
            offset += written
        }
        close(ends[1])
        let reader = JSONLinesReader(fileDescriptor: ends[0], name: "fuzz", closeWhenDone: true)
        defer { reader.close() }
        var previous = 0
        do {
            while let (line, letter) = try reader.next() {
                guard line > previous else {
                    throw Failure(description: "line numbers went from \(previous) to \(line)")
                }
                previous = line
                try self.readBack(letter)
            }
        } catch let error as DeadLetterError {
            guard error.code == .invalidFormat, error.file == "fuzz", error.line != nil else {
                throw Failure(description: "the reader threw \(error.code) without its file and line: \(error)")
            }
        }
    }

    private static func readBack(_ letter: DeadLetter) throws {
        do {
            try letter.validate()
        } catch {
            throw Failure(description: "the decoder read a letter that add(_:) refuses: \(error)")
        }
        let canonical = DeadLetterJSON.encode(letter)
        let again: DeadLetter
        do {
            again = try DeadLetterJSON.decode(canonical)
        } catch {
            throw Failure(description: "the canonical JSON of a letter read does not read back: \(error)")
        }
        guard again == letter else {
            throw Failure(
                description:
                    "a letter changed through its canonical JSON: \(String(decoding: canonical, as: UTF8.self))"
            )
        }
        let viaCodable: DeadLetter
        do {
            viaCodable = try DeadLetterJSON.decode(try JSONEncoder().encode(letter))
        } catch {
            throw Failure(description: "the Codable form of a letter read does not read back: \(error)")
        }
        guard viaCodable == letter else {
            throw Failure(description: "a letter changed through its Codable form")
        }
    }

    /// The filters' and the stored format's text parsers on arbitrary bytes: ``Timestamp``,
    /// ``DeadLetterFilter/parseTime(_:now:)``, ``DeadLetterFilter/parseDate(_:)``,
    /// ``DeadLetterFilter/parseAge(_:)``, ``DeadLetterTimeline/span(since:bucket:)``, ``Fingerprint``, ``DeadLetter/idProblem(_:)`` and
    /// ``DeadLetterFilter/asciiCaseInsensitiveContains(_:_:)``.
    /// - Throws: ``Failure`` when a property does not hold: a timestamp that does not read back the same from
    ///   its formatted text, an age outside 0 to 3.2 billion seconds, a fingerprint that is not 16 hex digits.
    public static func parsers(_ bytes: UnsafeRawBufferPointer) throws {
        let raw = bytes.assumingMemoryBound(to: UInt8.self)
        if let date = Timestamp.parse(utf8: raw) {
            let text = Timestamp.format(date)
            guard Timestamp.parse(text) == date else {
                throw Failure(description: "the timestamp \(Timestamp.format(date)) does not read back as itself")
            }
        }
        let text = String(decoding: raw, as: UTF8.self)
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        _ = DeadLetterFilter.parseTime(text, now: now)
        if let date = DeadLetterFilter.parseDate(text), Timestamp.parse(Timestamp.format(date)) != date {
            throw Failure(description: "the date \(Timestamp.format(date)) does not read back as itself")
        }
        if let age = DeadLetterFilter.parseAge(text) {
            guard age >= .zero, age <= .seconds(3_200_000_000) else {
                throw Failure(description: "an age out of range: \(age)")
            }
        }
        // A timeline's window: what it accepts has 1 to 1000 buckets of 1 minute to 31 days.
        let parts = text.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if let span = try? DeadLetterTimeline.span(since: parts[0], bucket: parts.count > 1 ? parts[1] : nil) {
            guard (1...1000).contains(span.count), span.bucket >= .seconds(60), span.bucket <= .seconds(31 * 86_400)
            else {
                throw Failure(description: "a timeline of \(span.count) buckets of \(span.bucket) was accepted")
            }
        }
        let fingerprint = Fingerprint.compute(errorType: text, message: text)
        guard fingerprint.utf8.count == 16, fingerprint.utf8.allSatisfy({ Self.isLowerHex($0) }) else {
            throw Failure(description: "a fingerprint that is not 16 hex digits: \(fingerprint)")
        }
        if DeadLetter.idProblem(text) == nil,
            text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        {
            throw Failure(description: "an id with a control character is accepted")
        }
        let tail = Array(text.utf8.suffix(text.utf8.count / 2))
        let needle = String(decoding: tail, as: UTF8.self)
        if needle.utf8.elementsEqual(tail), !DeadLetterFilter.asciiCaseInsensitiveContains(text, needle.uppercased()),
            needle.uppercased().utf8.count == needle.utf8.count, needle.allSatisfy(\.isASCII)
        {
            throw Failure(description: "a search does not find a part of its own text in upper case")
        }
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
