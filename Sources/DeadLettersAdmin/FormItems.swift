/// The name-value pairs of a URL query or an `application/x-www-form-urlencoded` body, decoded strictly.
struct FormItems: Sendable, Hashable {
    /// The pairs in order; a name may repeat.
    var items: [(name: String, value: String)]

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.items.elementsEqual(rhs.items) { $0.name == $1.name && $0.value == $1.value }
    }

    func hash(into hasher: inout Hasher) {
        for item in self.items {
            hasher.combine(item.name)
            hasher.combine(item.value)
        }
    }

    /// The most pairs a query or form may hold.
    static let maximumCount = 200

    /// Creates the pairs from the encoded text: `&`-separated, `+` for a space, `%XX` escapes.
    /// - Parameter maximumCount: the most pairs it may hold; ``maximumCount`` by default.
    /// - Throws: ``DeadLetterAdminError`` 400 when an escape is invalid, a value is not UTF-8, or there are more
    ///   than `maximumCount` pairs.
    init(encoded: String?, what: String = "query", maximumCount: Int = Self.maximumCount) throws {
        self.items = []
        guard let encoded, !encoded.isEmpty else { return }
        for part in encoded.split(separator: "&", omittingEmptySubsequences: true) {
            if self.items.count == maximumCount {
                throw DeadLetterAdminError.badRequest("\(what) has more than \(maximumCount) parameters")
            }
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(pair[0]) else {
                throw DeadLetterAdminError.badRequest("\(what) has a parameter name that is not valid URL encoding")
            }
            guard let value = Self.decode(pair.count > 1 ? pair[1] : "") else {
                throw DeadLetterAdminError.invalidParameter(name, "not valid URL encoding")
            }
            self.items.append((name, value))
        }
    }

    init(_ items: [(name: String, value: String)] = []) {
        self.items = items
    }

    /// Every value of `name`, in order.
    func all(_ name: String) -> [String] {
        self.items.filter { $0.name == name }.map(\.value)
    }

    /// The value of `name`; the last one when it repeats.
    func last(_ name: String) -> String? {
        self.items.last { $0.name == name }?.value
    }

    /// The names, each once, in order of first appearance.
    var names: [String] {
        var seen: Set<String> = []
        return self.items.compactMap { seen.insert($0.name).inserted ? $0.name : nil }
    }

    /// The encoded text of the pairs, for links.
    var encoded: String {
        self.items.map { Self.encode($0.name) + "=" + Self.encode($0.value) }.joined(separator: "&")
    }

    /// The pairs without those named `names`.
    func removing(_ names: Set<String>) -> FormItems {
        FormItems(self.items.filter { !names.contains($0.name) })
    }

    /// The text of `%XX`-escaped `text`, with `+` for a space when `plusIsSpace` (a query or a form; a path
    /// keeps its `+`); `nil` when an escape is invalid or the result is not UTF-8.
    static func decode(_ text: Substring, plusIsSpace: Bool = true) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hexValue),
                    let low = iterator.next().flatMap(Self.hexValue)
                else { return nil }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Percent-encodes everything but the unreserved characters of RFC 3986.
    static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
