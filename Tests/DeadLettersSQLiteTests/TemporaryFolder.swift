import DeadLettersSQLite
import Foundation

/// A fresh folder under the system's temporary folder, for store files; removed with `remove()`.
struct TemporaryFolder: Sendable {
    let path: String

    init() throws {
        let path = FileManager.default.temporaryDirectory.path + "/dlq-sqlite-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        self.path = path
    }

    /// A path for a file named `name` in the folder.
    func file(_ name: String = "dead-letters.sqlite") -> String { self.path + "/" + name }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}

/// A new store in a new temporary folder (left behind for the system to clean; tests run in parallel).
func makeFreshStore(durability: SQLiteDeadLetterStore.Durability = .durable) throws -> SQLiteDeadLetterStore {
    try SQLiteDeadLetterStore(path: TemporaryFolder().file(), durability: durability)
}
