import Crypto
import DeadLetters
import DeadLettersTesting
import Foundation
import Logging
import Testing

@Suite("Payload encryption")
struct EncryptionTests {
    static let keyA = Data((0..<32).map { UInt8($0) })
    static let keyB = Data((0..<32).map { UInt8(255 - $0) })

    static func encryption(_ key: Data = keyA, previous: [Data] = []) throws -> PayloadEncryption {
        try PayloadEncryption(key: SymmetricKey(data: key), previousKeys: previous.map { SymmetricKey(data: $0) })
    }

    static func store(_ base: MemoryDeadLetterStore, _ encryption: PayloadEncryption) -> EncryptedDeadLetterStore {
        EncryptedDeadLetterStore(
            base: base,
            encryption: encryption,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
    }

    @Test(arguments: DeadLetterStoreConformance.checks)
    func conformance(_ check: String) async throws {
        let encryption = try Self.encryption()
        try await DeadLetterStoreConformance.run(check, payloadOverhead: PayloadEncryption.overhead) {
            Self.store(MemoryDeadLetterStore(), encryption)
        }
    }

    @Test("the base store holds only ciphertext; the wrapper gives the payload back")
    func sealsAtRest() async throws {
        let base = MemoryDeadLetterStore()
        let store = Self.store(base, try Self.encryption())
        let secret = Data(#"{"card":"4111-1111-1111-1111"}"#.utf8)
        let letter = DeadLetterFixtures.letter(payload: secret)
        try await store.append([letter])

        let raw = try #require(try await base.letter(id: letter.id))
        #expect(PayloadEncryption.isSealed(raw.payload))
        #expect(raw.payload.count == secret.count + PayloadEncryption.overhead)
        #expect(PayloadEncryption.overhead == 37)
        #expect(raw.payload.range(of: Data("4111".utf8)) == nil, "no part of the payload is stored in the clear")
        #expect(raw.errorMessage == letter.errorMessage, "everything but the payload stays readable")

        #expect(try await store.letter(id: letter.id) == letter)
        #expect(try await store.page(DeadLetterFilter(), after: nil, limit: 10).letters == [letter])

        // Sealing twice gives different bytes (a fresh nonce each time).
        let other = DeadLetterFixtures.letter(payload: secret)
        try await store.append([other])
        let rawOther = try #require(try await base.letter(id: other.id))
        #expect(rawOther.payload.dropFirst(9) != raw.payload.dropFirst(9))
    }

    @Test("a payload altered in the store, or moved to another letter, is refused")
    func tamperingIsDetected() async throws {
        let base = MemoryDeadLetterStore()
        let store = Self.store(base, try Self.encryption())
        let first = DeadLetterFixtures.letter(payload: Data("first".utf8))
        let second = DeadLetterFixtures.letter(payload: Data("second".utf8))
        try await store.append([first, second])

        var altered = try #require(try await base.letter(id: first.id))
        altered.payload[altered.payload.count - 20] ^= 0x01
        let swapped = try #require(try await base.letter(id: first.id)).payload
        var moved = try #require(try await base.letter(id: second.id))
        moved.payload = swapped
        _ = try await base.delete(ids: [first.id, second.id])
        try await base.append([altered, moved])

        for id in [first.id, second.id] {
            let error = try await #require(throws: DeadLetterError.self) { try await store.letter(id: id) }
            #expect(error.code == .encryption)
            #expect(error.id == id)
            #expect(error.message.contains("does not authenticate"))
        }
    }

    @Test("keys rotate: old payloads open with a previous key, rewritten letters move to the new key")
    func keyRotation() async throws {
        let base = MemoryDeadLetterStore()
        let old = Self.store(base, try Self.encryption(Self.keyA))
        let letter = DeadLetterFixtures.letter(status: .retrying, payload: Data("payload".utf8))
        try await old.append([letter])

        let withoutOldKey = Self.store(base, try Self.encryption(Self.keyB))
        let error = try await #require(throws: DeadLetterError.self) { try await withoutOldKey.letter(id: letter.id) }
        #expect(error.code == .encryption)
        let keyA = try PayloadEncryption.Key(SymmetricKey(data: Self.keyA))
        let keyB = try PayloadEncryption.Key(SymmetricKey(data: Self.keyB))
        #expect(error.message.contains("key \(keyA.idDescription), which is not among the configured keys"))
        #expect(error.message.contains(keyB.idDescription))

        let rotated = Self.store(base, try Self.encryption(Self.keyB, previous: [Self.keyA]))
        #expect(try await rotated.letter(id: letter.id)?.payload == Data("payload".utf8))

        let now = DeadLetterFixtures.epoch.addingTimeInterval(60)
        let claimed = try await rotated.claim(ids: [letter.id], now: now, owner: "w", leaseUntil: now + 60)
        #expect(claimed.map(\.payload) == [Data("payload".utf8)])
        #expect(try await rotated.release(claimed[0], owner: "w"))
        #expect(try await withoutOldKey.letter(id: letter.id)?.payload == Data("payload".utf8))
        let rawID = try #require(try await base.letter(id: letter.id)).payload.dropFirst(5).prefix(4)
        #expect(Array(rawID) == keyB.id)
    }

    @Test("a letter that cannot be decrypted is parked by a claim instead of blocking the others")
    func undecryptableLettersAreParked() async throws {
        let base = MemoryDeadLetterStore()
        let foreign = Self.store(base, try Self.encryption(Self.keyB))
        let store = Self.store(base, try Self.encryption(Self.keyA))
        let lost = DeadLetterFixtures.letter(status: .retrying, payload: Data("lost key".utf8))
        let fine = DeadLetterFixtures.letter(status: .retrying, payload: Data("fine".utf8))
        try await foreign.append([lost])
        try await store.append([fine])

        let now = DeadLetterFixtures.epoch.addingTimeInterval(60)
        let claimed = try await store.claimDue(
            now: now,
            limit: 10,
            owner: "w",
            leaseUntil: now + 60,
            sources: ["orders"]
        )
        #expect(claimed.map(\.id) == [fine.id])
        #expect(claimed.first?.payload == Data("fine".utf8))
        let parked = try #require(try await base.letter(id: lost.id))
        #expect(parked.status == .parked)
        #expect(parked.nextAttemptAt == nil)
        #expect(parked.history.last?.event == "parked")
        #expect(parked.history.last?.message?.contains("not among the configured keys") == true)
        #expect(PayloadEncryption.isSealed(parked.payload), "the sealed payload is kept as it was")
        let again = try await store.claimDue(
            now: now + 120,
            limit: 10,
            owner: "w2",
            leaseUntil: now + 180,
            sources: ["orders"]
        )
        #expect(again.map(\.id) == [fine.id], "the parked letter is no longer due; the other one's lease expired")
    }

    @Test("without a key: payloads are stored as given, sealed ones are refused rather than passed on")
    func withoutKey() async throws {
        let base = MemoryDeadLetterStore()
        try await Self.store(base, try Self.encryption()).append([DeadLetterFixtures.letter(id: "sealed")])
        let store = EncryptedDeadLetterStore.withoutKey(base: base)
        let plain = DeadLetterFixtures.letter(id: "plain", payload: Data("clear".utf8))
        try await store.append([plain])
        #expect(try await base.letter(id: "plain")?.payload == Data("clear".utf8))
        #expect(try await store.letter(id: "plain") == plain)
        let error = try await #require(throws: DeadLetterError.self) { try await store.letter(id: "sealed") }
        #expect(error.code == .encryption)
        #expect(error.message.contains("DLQ_ENCRYPTION_KEY"))
        await #expect(throws: DeadLetterError.self) { try await store.page(DeadLetterFilter(), after: nil, limit: 10) }
    }

    @Test("a page without payloads opens nothing: letters sealed with a missing key are listed with the others")
    func pageWithoutPayloads() async throws {
        let base = MemoryDeadLetterStore()
        try await Self.store(base, try Self.encryption(Self.keyA)).append([DeadLetterFixtures.letter(id: "a")])
        let plain = DeadLetterFixtures.letter(id: "b", payload: Data("clear".utf8))
        try await base.append([plain])
        for store in [
            EncryptedDeadLetterStore.withoutKey(base: base), Self.store(base, try Self.encryption(Self.keyB)),
        ] {
            let page = try await store.pageWithoutPayloads(DeadLetterFilter(), after: nil, limit: 10)
            #expect(page.letters.map(\.id) == ["a", "b"])
            #expect(page.letters.allSatisfy { $0.payload.isEmpty }, "no ciphertext, and no payload at all")
            #expect(page.letters[1].errorMessage == plain.errorMessage)
        }
        var configuration = DeadLetterQueue.Configuration()
        configuration.payloadEncryption = try Self.encryption(Self.keyB)
        let queue = try DeadLetterQueue(store: base, configuration: configuration)
        let listed = try await queue.letters(includingPayloads: false)
        #expect(listed.letters.map(\.id) == ["a", "b"])
        await #expect(throws: DeadLetterError.self) { try await queue.letters() }
    }

    @Test("payloads stored before encryption was turned on are read as they are")
    func plaintextFromBefore() async throws {
        let base = MemoryDeadLetterStore()
        let before = DeadLetterFixtures.letter(payload: Data("from before".utf8))
        try await base.append([before])
        let store = Self.store(base, try Self.encryption())
        #expect(try await store.letter(id: before.id) == before)
    }

    @Test("an import is sealed as it streams; evicted letters come back opened")
    func importAndEviction() async throws {
        let base = MemoryDeadLetterStore()
        let store = Self.store(base, try Self.encryption())
        let letters = DeadLetterFixtures.letters(count: 3) { index, letter in
            letter.payload = Data("payload \(index)".utf8)
        }
        let stream = AsyncStream<DeadLetter> { continuation in
            for letter in letters { continuation.yield(letter) }
            continuation.finish()
        }
        let result = try await store.importLetters(stream, onConflict: .fail)
        #expect(result.inserted == 3)
        for letter in letters {
            #expect(PayloadEncryption.isSealed(try #require(try await base.letter(id: letter.id)).payload))
            #expect(try await store.letter(id: letter.id) == letter)
        }
        let newer = DeadLetterFixtures.letter(firstFailedAt: DeadLetterFixtures.epoch + 3_600)
        let appended = try await store.append([newer], onConflict: .fail, limits: DeadLetterLimits(maxEntries: 3))
        #expect(appended.evicted == [letters[0]], "the evicted letter is handed to the archive in the clear")
    }

    @Test("keys must be 256 bits; base64 keys are checked without echoing them")
    func keyValidation() throws {
        let short = try #require(throws: DeadLetterError.self) {
            try PayloadEncryption.Key(SymmetricKey(size: .bits128))
        }
        #expect(short.code == .invalidConfiguration)
        let text = "c2VjcmV0LXNlY3JldA=="
        let wrong = try #require(throws: DeadLetterError.self) {
            try PayloadEncryption.Key(base64: text, name: "DLQ_ENCRYPTION_KEY")
        }
        #expect(wrong.field == "DLQ_ENCRYPTION_KEY")
        #expect(wrong.message.contains("not 13 bytes"))
        #expect(!wrong.description.contains(text))
        let garbage = try #require(throws: DeadLetterError.self) { try PayloadEncryption.Key(base64: "%%%") }
        #expect(garbage.message.contains("not base64"))
        let good = try PayloadEncryption.Key(base64: " \(Self.keyA.base64EncodedString())\n")
        #expect(good.id == (try PayloadEncryption.Key(SymmetricKey(data: Self.keyA))).id)
        #expect(good.idDescription.count == 8)
    }

    @Test("a queue with payloadEncryption stores sealed payloads and runs handlers with the payload")
    func queueEncrypts() async throws {
        let h = try QueueHarness(immediateAttempts: 1, delayedAttempts: 1) { configuration in
            configuration.payloadEncryption = try? Self.encryption()
        }
        let seen = Shared<[Data]>([])
        h.queue.register(source: "orders") { letter in
            seen.withLock { $0.append(letter.payload) }
        }
        let payload = Data("order 42".utf8)
        let result = try await h.queue.process(payload: payload, source: "orders") { _ -> Void in
            throw TestFailure("down")
        }
        let id = try #require(result.deadLetterID)
        #expect(PayloadEncryption.isSealed(try #require(try await h.store.letter(id: id)).payload))
        #expect(try await h.queue.store.letter(id: id)?.payload == payload)
        var events = h.queue.events().makeAsyncIterator()
        try await h.running {
            await h.clock.waitForSleepers(2)
            h.clock.advance(by: .seconds(10))
            _ = await events.next(.recovered)
        }
        #expect(seen.withLock { $0 } == [payload])
        #expect(try await h.store.letter(id: id) == nil)
    }
}
