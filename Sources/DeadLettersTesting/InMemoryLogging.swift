@_exported public import InMemoryLogging
public import Logging

extension Logger {
    /// A logger that keeps its entries in memory, and the handler to read them from, for tests.
    ///
    /// ```swift
    /// let (logger, logs) = Logger.inMemory(level: .debug)
    /// // … run the component with `logger` …
    /// #expect(logs.entries.contains { $0.message.description == "circuit opened" })
    /// ```
    /// - Parameters:
    ///   - label: the logger's label.
    ///   - level: the lowest level kept; `.trace` by default, so every entry is kept.
    public static func inMemory(
        label: String = "dlq.test",
        level: Logger.Level = .trace
    ) -> (logger: Logger, handler: InMemoryLogHandler) {
        var handler = InMemoryLogHandler()
        handler.logLevel = level
        let captured = handler
        var logger = Logger(label: label) { _ in captured }
        logger.logLevel = level
        return (logger, handler)
    }
}
