extension DeadLetter {
    /// The largest ``attempts`` and ``replayCount`` a letter is accepted with: 1,000,000.
    ///
    /// No retry policy comes near it, and it keeps every sum of counters far from overflowing. `dlq add`,
    /// imports (``DeadLetterJSON`` and the `Codable` conformance) and ``DeadLetterQueue/add(_:)`` refuse more.
    public static let maximumCount = 1_000_000

    /// Checks a letter given to ``DeadLetterQueue/add(_:)``: what an import checks on each line (see
    /// ``DeadLetterJSON/decode(_:line:)-(UnsafeRawBufferPointer,_)``), beyond the types.
    /// - Throws: ``DeadLetterError`` with code `invalidFormat`, naming the letter and the field: an empty id,
    ///   source or reason, an id holding a control character, `attempts` or `replayCount` negative or above
    ///   ``maximumCount``.
    public func validate() throws {
        do {
            try Self.validate(
                id: self.id,
                source: self.source,
                reason: self.reason.rawValue,
                attempts: self.attempts,
                replayCount: self.replayCount
            )
        } catch var error as DeadLetterError {
            // A readable id only: one holding a control character is not repeated.
            if Self.idProblem(self.id) == nil { error.id = self.id }
            throw error
        }
    }

    /// Checks what the types alone do not: shared by the `Codable` conformance, ``DeadLetterJSON`` and
    /// ``validate()``.
    static func validate(id: String, source: String, reason: String, attempts: Int, replayCount: Int) throws {
        if let problem = idProblem(id) { throw formatError(problem, .id) }
        if source.isEmpty { throw formatError("must not be empty", .source) }
        if reason.isEmpty { throw formatError("must not be empty", .reason) }
        try checkCount(attempts, .attempts)
        try checkCount(replayCount, .replayCount)
    }

    /// Checks the number of attempts given to ``DeadLetterQueue/add(payload:source:reason:errorType:errorMessage:causes:attempts:metadata:contentType:)``.
    /// - Throws: ``DeadLetterError`` with code `invalidFormat` and field `attempts` when it is above
    ///   ``maximumCount`` (a count below 1 is stored as 1).
    static func checkAttempts(_ attempts: Int) throws {
        if attempts > maximumCount { try checkCount(attempts, .attempts) }
    }

    private static func checkCount(_ value: Int, _ key: CodingKeys) throws {
        if value < 0 { throw formatError("must not be negative", key) }
        if value > maximumCount {
            throw formatError("must be at most \(maximumCount), not \(value)", key)
        }
    }

    /// Why `id` cannot be a letter's id, or `nil` when it can: it must not be empty, and must not hold a
    /// control character (U+0000–U+001F, U+007F–U+009F), which a store could truncate (NUL) and which
    /// terminals, logs and URLs do not carry faithfully.
    public static func idProblem(_ id: String) -> String? {
        if id.isEmpty { return "must not be empty" }
        for scalar in id.unicodeScalars where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
            let code = String(scalar.value, radix: 16, uppercase: true)
            return "must not contain a control character (U+\(String(repeating: "0", count: 4 - code.count))\(code))"
        }
        return nil
    }

    /// Checks an id given to look a letter up, show or delete it: the rule of ``idProblem(_:)``.
    /// - Throws: ``DeadLetterError`` with code `invalidFilter` and field `id`.
    public static func validateID(_ id: String) throws {
        if let problem = idProblem(id) {
            throw DeadLetterError(code: .invalidFilter, message: problem, field: "id")
        }
    }
}
