/// An error of the dead-letter queue or one of its stores.
///
/// Its ``description`` names what went wrong and where, and never prints payloads, metadata values or
/// secrets.
public struct DeadLetterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of error it is: an extensible set.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case notFound, duplicateID, capacityExceeded, invalidConfiguration, invalidFilter, invalidFormat,
                storeUnavailable, notAStore, incompatibleStore, shutdown, io, leaseLost, unsupported, encryption
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No letter has the given id.
        public static let notFound = Code(.notFound)
        /// A letter with the same id is already stored.
        public static let duplicateID = Code(.duplicateID)
        /// The store is full and its overflow policy is `rejectNew`.
        public static let capacityExceeded = Code(.capacityExceeded)
        /// A configuration value is out of range.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A filter value is not valid.
        public static let invalidFilter = Code(.invalidFilter)
        /// Input in the stored format is malformed (a line, a field).
        public static let invalidFormat = Code(.invalidFormat)
        /// The store cannot be reached or opened.
        public static let storeUnavailable = Code(.storeUnavailable)
        /// The file or database is not a dead-letter store.
        public static let notAStore = Code(.notAStore)
        /// The store was written by a newer version of this package.
        public static let incompatibleStore = Code(.incompatibleStore)
        /// The queue is shutting down and the work was not accepted.
        public static let shutdown = Code(.shutdown)
        /// Reading or writing a file failed.
        public static let io = Code(.io)
        /// The lease on a letter expired and another worker took it.
        public static let leaseLost = Code(.leaseLost)
        /// The store does not support the operation.
        public static let unsupported = Code(.unsupported)
        /// A sealed payload cannot be opened: its key is not configured, or it does not authenticate.
        public static let encryption = Code(.encryption)

        public var description: String { self.base.rawValue }
    }

    /// What kind of error it is.
    public var code: Code
    /// A sentence saying what went wrong, without payloads or secrets.
    public var message: String
    /// The letter concerned, if any.
    public var id: String?
    /// The file concerned, if any.
    public var file: String?
    /// The line of the file concerned, counting from 1, if any.
    public var line: Int?
    /// The field concerned, if any.
    public var field: String?

    /// Creates an error.
    public init(
        code: Code,
        message: String,
        id: String? = nil,
        file: String? = nil,
        line: Int? = nil,
        field: String? = nil
    ) {
        self.code = code
        self.message = message
        self.id = id
        self.file = file
        self.line = line
        self.field = field
    }

    public var description: String {
        var place = ""
        if let file = self.file { place += file }
        if let line = self.line { place += place.isEmpty ? "line \(line)" : ":\(line)" }
        if let field = self.field { place += place.isEmpty ? "field '\(field)'" : ": field '\(field)'" }
        if let id = self.id { place += place.isEmpty ? "letter \(id)" : " (letter \(id))" }
        return place.isEmpty ? self.message : "\(place): \(self.message)"
    }
}
