import DeadLetters
import DeadLettersAdmin
import DeadLettersSQLite
import DeadLettersTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite("Admin API on a real SQLite file")
struct AdminSQLiteTests {
    @Test("List, page, redrive, stats and delete through the API on a SQLite store")
    func sqliteStore() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dlq-admin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteDeadLetterStore(
            configuration: .init(path: folder.appendingPathComponent("store.sqlite").path)
        )
        defer { try? store.close() }
        let harness = try await AdminHarness(store: store)
        try await harness.run { client in
            let first = try await client.send(.get, "/api/v1/dead-letters?limit=10&source=orders").object()
            let items = try #require(first["items"] as? [[String: Any]])
            #expect(items.count == 7)
            #expect(first["nextCursor"] is NSNull)

            let page = try await client.send(.get, "/api/v1/dead-letters?limit=4").object()
            let cursor = try #require(page["nextCursor"] as? String)
            let next = try await client.send(.get, "/api/v1/dead-letters?limit=4&cursor=\(cursor)").object()
            let nextIDs = (next["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(nextIDs == harness.letters[4..<8].map(\.id))

            let redrive = try await client.postJSON("/api/v1/redrive", #"{"filter":{"reason":"validation"}}"#)
            #expect(try redrive.object()["matched"] as? Int == 6)
            let stats = try await client.send(.get, "/api/v1/stats").object()
            #expect((stats["byStatus"] as? [String: Int])?["retrying"] == 9)

            let hostile = try await client.send(.get, "/api/v1/dead-letters?source=x%27%20OR%201%3D1--").object()
            #expect((hostile["items"] as? [Any])?.isEmpty == true)

            let delete = try await client.send(.delete, "/api/v1/dead-letters/\(harness.letters[0].id)")
            #expect(delete.status == .ok)
            #expect(try await store.letter(id: harness.letters[0].id) == nil)
        }
    }

    @Test("A store file deleted under the server: /healthz and the API answer 503 with the reason; nothing is written")
    func deletedStoreFile() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dlq-admin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("store.sqlite").path
        let store = try SQLiteDeadLetterStore(configuration: .init(path: path))
        defer { try? store.close() }
        let harness = try await AdminHarness(store: store)
        try await harness.run { client in
            #expect(try await client.send(.get, "/healthz").status == .ok)
            for suffix in ["", "-wal", "-shm"] { try FileManager.default.removeItem(atPath: path + suffix) }

            let health = try await client.send(.get, "/healthz")
            #expect(health.status == .serviceUnavailable)
            let reason = try #require(try health.object()["reason"] as? String)
            #expect(reason.contains("deleted"), "\(reason)")
            #expect(!reason.contains(path), "no path in the answer")

            let redrive = try await client.postJSON("/api/v1/redrive", #"{"filter":{"reason":"validation"}}"#)
            #expect(redrive.status == .serviceUnavailable)
            #expect(try redrive.errorCode() == "storeUnavailable")
            #expect(redrive.text.contains("deleted"), "\(redrive.text)")
            #expect(!FileManager.default.fileExists(atPath: path), "nothing recreated the file")
        }
    }
}
