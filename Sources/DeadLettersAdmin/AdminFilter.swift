import DeadLetters

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads a ``DeadLetterFilter`` from query parameters or a JSON body, strictly: a bad value is a 400 naming
/// the parameter; nothing is ever put into SQL (stores bind every value).
enum AdminFilter {
    /// The filter parameters, with the names the README documents.
    static let names = [
        "source", "reason", "errorType", "fingerprint", "status", "since", "until", "minAttempts", "search",
    ]
    /// The prefix of a metadata parameter: `meta.tenant=acme` selects letters whose metadata has `tenant` =
    /// `acme`. A form may send the pair as one value instead: `meta=tenant=acme`.
    static let metaPrefix = "meta."

    /// Whether `name` is a filter parameter: one of ``names``, `meta`, or `meta.KEY`.
    static func isFilterName(_ name: String) -> Bool {
        self.names.contains(name) || name == "meta" || (name.hasPrefix(self.metaPrefix) && name.count > 5)
    }

    /// The longest value a filter parameter may have, in bytes.
    static let maximumValueLength = 1024
    /// The most values a repeated parameter may have.
    static let maximumValueCount = 100

    /// Reads the filter parameters of `items`; empty values mean "any" (what an empty form field sends).
    /// - Parameter now: the time ages such as `2h` are measured back from.
    static func parse(_ items: FormItems, now: Date) throws -> DeadLetterFilter {
        var filter = DeadLetterFilter()
        func values(_ name: String) throws -> [String] {
            let values = items.all(name).filter { !$0.isEmpty }
            try self.check(values, name: name) { DeadLetterAdminError.invalidParameter($0, $1) }
            return values
        }
        filter.sources = try values("source")
        filter.reasons = try values("reason")
        filter.errorTypes = try values("errorType")
        filter.fingerprints = try values("fingerprint")
        filter.statuses = try values("status").map { try self.status($0, field: "status", parameter: true) }
        if let since = try values("since").last {
            filter.since = try self.date(since, now: now, field: "since", parameter: true)
        }
        if let until = try values("until").last {
            filter.until = try self.date(until, now: now, field: "until", parameter: true)
        }
        if let minAttempts = try values("minAttempts").last {
            filter.minAttempts = try self.minAttempts(minAttempts, field: "minAttempts", parameter: true)
        }
        filter.search = try values("search").last
        var pairs: [(String, String)] = []
        for item in items.items where item.name.hasPrefix(self.metaPrefix) && !item.value.isEmpty {
            pairs.append((String(item.name.dropFirst(self.metaPrefix.count)), item.value))
        }
        for text in try values("meta") {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw DeadLetterAdminError.invalidParameter("meta", "must be key=value, e.g. tenant=acme")
            }
            pairs.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
        }
        filter.metadata = try self.metadata(pairs) { DeadLetterAdminError.invalidParameter($0, $1) }
        return filter
    }

    /// The metadata pairs as a filter's dictionary: each key once, at most ``maximumValueCount`` pairs, keys and
    /// values checked as other values are.
    private static func metadata(
        _ pairs: [(String, String)],
        error: (String, String) -> DeadLetterAdminError
    ) throws -> [String: String] {
        if pairs.count > self.maximumValueCount { throw error("meta", "more than \(self.maximumValueCount) pairs") }
        var metadata: [String: String] = [:]
        for (key, value) in pairs {
            let name = "meta.\(key)"
            try self.check([key, value], name: name, error: error)
            if let existing = metadata[key], existing != value {
                throw error(name, "takes one value (a letter has one value per key)")
            }
            metadata[key] = value
        }
        return metadata
    }

    /// Reads the `filter` object of a JSON body: the same names as the query parameters plus `ids`; each
    /// value a string or an array of strings (`minAttempts` a number too). Unknown names are refused, so a
    /// misspelt filter never selects everything.
    static func parse(json object: [String: JSONValue], now: Date) throws -> DeadLetterFilter {
        var filter = DeadLetterFilter()
        for key in object.keys.sorted() where key != "ids" && key != "meta" && !self.names.contains(key) {
            throw DeadLetterAdminError.invalidField(
                "filter.\(key)",
                "unknown filter; use \((["ids"] + self.names + ["meta"]).joined(separator: ", "))"
            )
        }
        func values(_ name: String) throws -> [String] {
            let field = "filter.\(name)"
            let values: [String]
            switch object[name] {
            case nil, .null: values = []
            case .string(let string): values = [string]
            case .array(let array):
                values = try array.map {
                    guard case .string(let string) = $0 else {
                        throw DeadLetterAdminError.invalidField(field, "must be a string or an array of strings")
                    }
                    return string
                }
            default: throw DeadLetterAdminError.invalidField(field, "must be a string or an array of strings")
            }
            try self.check(values, name: field) { DeadLetterAdminError.invalidField($0, $1) }
            return values.filter { !$0.isEmpty }
        }
        filter.ids = try values("ids")
        for id in filter.ids {
            if let problem = DeadLetter.idProblem(id) { throw DeadLetterAdminError.invalidField("filter.ids", problem) }
        }
        filter.sources = try values("source")
        filter.reasons = try values("reason")
        filter.errorTypes = try values("errorType")
        filter.fingerprints = try values("fingerprint")
        filter.statuses = try values("status").map { try self.status($0, field: "filter.status", parameter: false) }
        if let since = try self.single(values("since"), "filter.since") {
            filter.since = try self.date(since, now: now, field: "filter.since", parameter: false)
        }
        if let until = try self.single(values("until"), "filter.until") {
            filter.until = try self.date(until, now: now, field: "filter.until", parameter: false)
        }
        switch object["minAttempts"] {
        case nil, .null: break
        case .number(let number):
            guard number >= 0, number <= 1e9, number.rounded() == number else {
                throw DeadLetterAdminError.invalidField("filter.minAttempts", "must be a whole number, 0 or more")
            }
            filter.minAttempts = Int(number)
        case .string(let string):
            filter.minAttempts = try self.minAttempts(string, field: "filter.minAttempts", parameter: false)
        default: throw DeadLetterAdminError.invalidField("filter.minAttempts", "must be a whole number, 0 or more")
        }
        filter.search = try self.single(values("search"), "filter.search")
        switch object["meta"] {
        case nil, .null: break
        case .object(let fields):
            var pairs: [(String, String)] = []
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                guard case .string(let text) = value else {
                    throw DeadLetterAdminError.invalidField("filter.meta.\(key)", "must be a string")
                }
                pairs.append((key, text))
            }
            filter.metadata = try self.metadata(pairs) { DeadLetterAdminError.invalidField("filter.\($0)", $1) }
        default:
            throw DeadLetterAdminError.invalidField(
                "filter.meta",
                #"must be an object of strings, e.g. {"tenant": "acme"}"#
            )
        }
        return filter
    }

    private static func single(_ values: [String], _ field: String) throws -> String? {
        guard values.count <= 1 else { throw DeadLetterAdminError.invalidField(field, "takes one value") }
        return values.first
    }

    static func check(
        _ values: [String],
        name: String,
        error: (String, String) -> DeadLetterAdminError
    ) throws {
        if values.count > self.maximumValueCount {
            throw error(name, "more than \(self.maximumValueCount) values")
        }
        for value in values {
            if value.utf8.count > self.maximumValueLength {
                throw error(name, "longer than \(self.maximumValueLength) bytes")
            }
            if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw error(name, "contains control characters")
            }
        }
    }

    private static func failure(_ field: String, _ problem: String, parameter: Bool) -> DeadLetterAdminError {
        parameter ? .invalidParameter(field, problem) : .invalidField(field, problem)
    }

    private static func status(_ value: String, field: String, parameter: Bool) throws -> DeadLetterStatus {
        guard let status = DeadLetterStatus(rawValue: value) else {
            let known = DeadLetterStatus.allCases.map(\.rawValue).joined(separator: ", ")
            throw self.failure(field, "unknown status; use \(known)", parameter: parameter)
        }
        return status
    }

    private static func minAttempts(_ value: String, field: String, parameter: Bool) throws -> Int {
        guard value.utf8.count <= 9, let number = Int(value), number >= 0 else {
            throw self.failure(field, "must be a whole number, 0 or more", parameter: parameter)
        }
        return number
    }

    /// A time as `dlq` takes it (``DeadLetters/DeadLetterFilter/parseTime(_:now:)``): ISO 8601, a date, or an
    /// age back from `now`.
    static func date(_ value: String, now: Date, field: String, parameter: Bool) throws -> Date {
        if let date = DeadLetterFilter.parseTime(value, now: now) { return date }
        throw self.failure(field, "must be \(DeadLetterFilter.timeForms)", parameter: parameter)
    }
}

/// The `sort` parameter of the letter lists: an order of ``DeadLetters/DeadLetterSort``.
enum AdminSort {
    /// The order `sort=` names (`id` when absent or empty).
    /// - Throws: ``DeadLetterAdminError`` 400 naming the orders (and the closest) for an unknown one.
    static func parse(_ items: FormItems) throws -> DeadLetterSort {
        guard let text = items.last("sort"), !text.isEmpty else { return .id }
        if let sort = DeadLetterSort(rawValue: text) { return sort }
        let names = DeadLetterSort.all.map(\.rawValue)
        throw DeadLetterAdminError.invalidParameter("sort", "unknown order; use \(names.joined(separator: ", "))")
    }
}
