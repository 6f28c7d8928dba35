import Crypto
import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Admin server on an encrypted store")
struct AdminEncryptionTests {
    static func encryption() throws -> PayloadEncryption {
        try PayloadEncryption(key: SymmetricKey(data: Data(repeating: 42, count: 32)))
    }

    @Test("with the key, the API and the dashboard show the payload; the store holds ciphertext")
    func withKey() async throws {
        let base = MemoryDeadLetterStore()
        let harness = try await AdminHarness(
            store: EncryptedDeadLetterStore(base: base, encryption: try Self.encryption())
        )
        let letter = harness.letters[0]
        let raw = try #require(try await base.letter(id: letter.id))
        #expect(PayloadEncryption.isSealed(raw.payload))
        try await harness.run { client in
            let object = try await client.send(.get, "/api/v1/dead-letters/\(letter.id)").object()
            #expect(object["payload"] as? String == letter.payload.base64EncodedString())
            let page = try await client.send(.get, "/letters/\(letter.id)")
            #expect(page.status == .ok)
            #expect(page.text.contains("order"))
        }
    }

    @Test("without the key, a sealed payload is a clear 500 naming the letter, never ciphertext")
    func withoutKey() async throws {
        let base = MemoryDeadLetterStore()
        let harness = try await AdminHarness(store: EncryptedDeadLetterStore.withoutKey(base: base))
        let sealed = DeadLetterFixtures.letter(id: "sealed-letter", payload: Data("secret payload".utf8))
        _ = try await EncryptedDeadLetterStore(base: base, encryption: try Self.encryption()).append([sealed])
        try await harness.run { client in
            let response = try await client.send(.get, "/api/v1/dead-letters/sealed-letter")
            #expect(response.status == .internalServerError)
            #expect(try response.errorCode() == "encryption")
            #expect(response.text.contains("sealed-letter"))
            #expect(!response.text.contains("secret"))
            let stats = try await client.send(.get, "/api/v1/stats").object()
            #expect(stats["total"] as? Int == harness.letters.count + 1, "counts need no key")
            let plain = try await client.send(.get, "/api/v1/dead-letters/\(harness.letters[0].id)")
            #expect(plain.status == .ok, "letters stored in the clear still show")
        }
    }

    @Test("without the key, the dashboard lists a sealed letter and shows all of it but the payload")
    func dashboardWithoutKey() async throws {
        let base = MemoryDeadLetterStore()
        let harness = try await AdminHarness(store: EncryptedDeadLetterStore.withoutKey(base: base))
        var sealed = DeadLetterFixtures.letter(id: "0-sealed-letter", payload: Data("secret payload".utf8))
        sealed.errorMessage = "card declined by the issuer"
        _ = try await EncryptedDeadLetterStore(base: base, encryption: try Self.encryption()).append([sealed])
        try await harness.run { client in
            let list = try await client.send(.get, "/letters")
            #expect(list.status == .ok, "one sealed payload does not fail the list: \(list.text)")
            #expect(list.text.contains("sealed-letter"))
            #expect(list.text.contains(harness.letters[0].id), "the letters in the clear are listed beside it")
            let detail = try await client.send(.get, "/letters/0-sealed-letter")
            #expect(detail.status == .ok)
            #expect(detail.text.contains("card declined by the issuer"), "the error context is shown")
            #expect(detail.text.contains("encrypted, not shown"))
            #expect(detail.text.contains("no key is configured"))
            #expect(!detail.text.contains("secret"))
            let health = try await client.send(.get, "/healthz")
            #expect(health.status == .ok, "the first letter is sealed, and the server is still healthy")
        }
    }
}
