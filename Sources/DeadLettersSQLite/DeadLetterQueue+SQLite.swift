public import DeadLetters

extension DeadLetterQueue {
    /// A queue on a SQLite file: the one-line start.
    ///
    /// The file is created (mode 0600) when missing; its folder must exist. Letters are durable: `add` returns
    /// once they are on disk.
    /// - Parameters:
    ///   - path: the store file. Default `dead-letters.sqlite` in the working directory.
    ///   - durability: `.durable` (the default) or `.fast`.
    ///   - configuration: how the queue behaves.
    /// - Throws: ``DeadLetterError`` when the file cannot be opened as a store, or the configuration is invalid.
    public static func sqlite(
        path: String = "dead-letters.sqlite",
        durability: SQLiteDeadLetterStore.Durability = .durable,
        configuration: DeadLetterQueue.Configuration = DeadLetterQueue.Configuration()
    ) throws -> DeadLetterQueue {
        let store = try SQLiteDeadLetterStore(path: path, durability: durability)
        return try DeadLetterQueue(store: store, configuration: configuration)
    }
}
