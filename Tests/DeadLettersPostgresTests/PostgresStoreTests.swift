import DeadLetters
import DeadLettersTesting
import Foundation
import PostgresNIO
import Testing

@testable import DeadLettersPostgres

@Suite(
    "PostgreSQL store: bad input, migrations, many instances",
    .enabled(if: PostgresTestServer.isAvailable, PostgresTestServer.skipMessage)
)
struct PostgresStoreTests {
    /// The password of the test server, which no message may contain.
    private var password: String { (try? PostgresTestServer.endpoint().password) ?? "unset" }

    private func openError(_ url: String, schema: String = "dead_letters") async -> DeadLetterError? {
        await #expect(throws: DeadLetterError.self) {
            try await PostgresDeadLetterStore.withStore(
                url: url,
                configuration: .init(schema: schema, migrate: true, connectTimeout: .seconds(5))
            ) { store in
                _ = try await store.count(DeadLetterFilter())
            }
        }
    }

    @Test("an unreachable server: storeUnavailable naming host:port, database and user, never the password")
    func unreachableServer() async throws {
        // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
        let error = try #require(await self.openError(try PostgresTestServer.url(port: 1)))
        let endpoint = try PostgresTestServer.endpoint()
        #expect(error.code == .storeUnavailable)
        #expect(error.message.contains("\(endpoint.host):1"), "\(error.message)")
        #expect(error.message.contains("'\(endpoint.database)'"), "\(error.message)")
        #expect(error.message.contains("'\(endpoint.username)'"), "\(error.message)")
        #expect(!error.description.contains(self.password))
    }

    @Test("a wrong password: refused login naming the user and database, neither password in the message")
    func wrongPassword() async throws {
        let wrong = "not-the-password-\(UInt32.random(in: 0...UInt32.max))"
        let error = try #require(await self.openError(try PostgresTestServer.url(password: wrong)))
        let endpoint = try PostgresTestServer.endpoint()
        #expect(error.code == .storeUnavailable)
        #expect(error.message.contains("refused the login of user '\(endpoint.username)'"), "\(error.message)")
        #expect(error.message.contains("'\(endpoint.database)'"))
        #expect(!error.description.contains(wrong))
        #expect(!error.description.contains(self.password))
    }

    @Test("a missing database: its name in the message")
    func missingDatabase() async throws {
        let error = try #require(await self.openError(try PostgresTestServer.url(database: "dlq_no_such_database")))
        #expect(error.code == .storeUnavailable)
        #expect(error.message.contains("database 'dlq_no_such_database' does not exist"), "\(error.message)")
        #expect(!error.description.contains(self.password))
    }

    @Test("sslmode=require against a server without TLS is refused with the reason")
    func tlsRequiredButUnsupported() async throws {
        let error = try #require(await self.openError(try PostgresTestServer.url(query: "sslmode=require")))
        #expect(error.code == .storeUnavailable)
        #expect(error.message.contains("TLS"), "\(error.message)")
    }

    @Test("a schema written by a newer version: incompatibleStore, and migrate changes nothing")
    func newerSchema() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            try await store.migrate()
            let schema = store.configuration.schema
            try await harness.sql("UPDATE \"\(schema)\".schema_version SET version = 99")
            let reader = try harness.makeStore(schema: schema, migrate: false)
            let error = await #expect(throws: DeadLetterError.self) { _ = try await reader.count(DeadLetterFilter()) }
            #expect(error?.code == .incompatibleStore)
            #expect(error?.message.contains("version 99") == true, "\(String(describing: error))")
            let migrator = try harness.makeStore(schema: schema, migrate: true)
            let again = await #expect(throws: DeadLetterError.self) { try await migrator.migrate() }
            #expect(again?.code == .incompatibleStore)
            #expect(try await harness.int("SELECT version FROM \"\(schema)\".schema_version") == 99)
        }
    }

    @Test("a store without migrate on a bare schema says to run `dlq migrate`")
    func notMigrated() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore(migrate: false)
            let error = await #expect(throws: DeadLetterError.self) { _ = try await store.usage() }
            #expect(error?.code == .notAStore)
            #expect(error?.message.contains("dlq migrate") == true)
        }
    }

    @Test("a failing migration leaves nothing behind: no version row, no tables")
    func failedMigrationIsRolledBack() async throws {
        try await PostgresTestServer.withHarness { harness in
            let schema = PostgresTestServer.freshSchema()
            harness.adopt(schema)
            // A table of someone else's where the migration wants to create `letters`.
            try await harness.sql("CREATE SCHEMA \"\(schema)\"")
            try await harness.sql("CREATE TABLE \"\(schema)\".letters (x int)")
            let store = try harness.makeStore(schema: schema)
            await #expect(throws: DeadLetterError.self) { try await store.migrate() }
            let tables = try await harness.int(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = '\(schema)'"
            )
            #expect(tables == 1, "only the pre-existing table remains")
        }
    }

    @Test("eight instances migrating the same schema at once: all succeed, one schema at the latest version")
    func concurrentMigrations() async throws {
        try await PostgresTestServer.withHarness { harness in
            let schema = PostgresTestServer.freshSchema()
            let stores = try (0..<8).map { _ in try harness.makeStore(schema: schema) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            #expect(
                try await harness.int("SELECT version FROM \"\(schema)\".schema_version")
                    == Int64(PostgresDeadLetterStore.schemaVersion)
            )
            #expect(try await harness.int("SELECT count(*) FROM \"\(schema)\".usage") == 16)
            try await stores[3].append([DeadLetterFixtures.letter()])
            #expect(try await stores[5].count(DeadLetterFilter()) == 1)
        }
    }

    @Test("two stores on separate clients claiming at once never claim the same letter")
    func twoInstancesClaim() async throws {
        let schema = PostgresTestServer.freshSchema()
        try await PostgresTestServer.withHarness { first in
            try await PostgresTestServer.withHarness { second in
                let storeA = try first.makeStore(schema: schema)
                let storeB = try second.makeStore(schema: schema)
                let now = DeadLetterFixtures.epoch.adding(.seconds(3600))
                let letters = DeadLetterFixtures.letters(
                    count: 2000,
                    start: DeadLetterFixtures.epoch,
                    interval: .milliseconds(1),
                    seed: 9
                ) {
                    _,
                    letter in
                    letter.status = .retrying
                    letter.nextAttemptAt = letter.lastFailedAt
                }
                try await storeA.append(letters)
                let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                    for (index, store) in [storeA, storeB, storeA, storeB].enumerated() {
                        group.addTask {
                            var mine: [String] = []
                            while true {
                                let batch = try await store.claimDue(
                                    now: now,
                                    limit: 25,
                                    owner: "instance-\(index)",
                                    leaseUntil: now.adding(.seconds(60)),
                                    sources: ["orders"]
                                )
                                if batch.isEmpty { return mine }
                                mine += batch.map(\.id)
                            }
                        }
                    }
                    var all: [String] = []
                    for try await ids in group { all += ids }
                    return all
                }
                #expect(claimed.count == 2000, "no letter claimed twice")
                #expect(Set(claimed) == Set(letters.map(\.id)))
                // A crashed instance's lease expires: at its expiry the others claim the letters again.
                let later = now.adding(.seconds(60))
                let reclaimed = try await storeB.claimDue(
                    now: later,
                    limit: 5000,
                    owner: "survivor",
                    leaseUntil: later.adding(.seconds(60)),
                    sources: ["orders"]
                )
                #expect(reclaimed.count == 2000)
            }
        }
    }

    @Test("64 concurrent appenders: group commit keeps every caller's all-or-nothing")
    func groupCommitKeepsEachCallersAtomicity() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore(maxBatchSize: 500)
            let stored = DeadLetterFixtures.letter()
            try await store.append([stored])
            let batches = (0..<64).map { task in
                (0..<20).map { _ in
                    (0..<5).map { _ in DeadLetterFixtures.letter(errorMessage: "task \(task)") }
                }
            }
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<64 {
                    group.addTask {
                        var failures = 0
                        for (index, batch) in batches[task].enumerated() {
                            if index == 7 && task % 8 == 0 {
                                // One stored id among new ones: this call fails whole, the others are untouched.
                                do {
                                    try await store.append(batch + [stored])
                                } catch let error as DeadLetterError where error.code == .duplicateID {
                                    failures += 1
                                }
                            } else {
                                try await store.append(batch)
                            }
                        }
                        return failures
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 8)
            let expected = 1 + 64 * 20 * 5 - 8 * 5
            #expect(try await store.count(DeadLetterFilter()) == expected)
            #expect(try await store.usage().count == expected)
            for task in stride(from: 0, to: 64, by: 8) {
                #expect(try await store.letter(id: batches[task][7][0].id) == nil)
                #expect(try await store.letter(id: batches[task][6][0].id) != nil)
            }
        }
    }

    @Test("an append is not held behind a group commit that waits on another transaction's lock")
    func appendNotHeldBehindABlockedCommit() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore(maxConcurrentCommits: 2)
            try await store.migrate()
            let letters = DeadLetterFixtures.letters(count: 2, seed: 41)
            try await harness.client.withConnection { other in
                // Another writer inserts the first letter's id and keeps its transaction open.
                try await store.rows(other, "BEGIN")
                try await store.declareCountingWriter(other)
                var columns = LetterColumns()
                try columns.append(letters[0])
                try await store.rows(other, columns.insert(into: store.schema))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // This commit waits for that transaction (the id's uniqueness) …
                    group.addTask { _ = try await store.append([letters[0]], onConflict: .skip, limits: .init()) }
                    while try await harness.int(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%add_letters%'"
                    ) == 0 {
                        await Task.yield()
                    }
                    // … and an unrelated append is committed meanwhile, not when the other transaction ends. (If it
                    // were held, the 20-second bound ends the other transaction, so the test fails instead of hanging.)
                    let unrelated = try await withThrowingTaskGroup(of: DeadLetterAppendResult?.self) { race in
                        race.addTask { try await store.append([letters[1]]) }
                        race.addTask {
                            try await Task.sleep(for: .seconds(20))
                            try await store.rows(other, "ROLLBACK")
                            return nil
                        }
                        defer { race.cancelAll() }
                        return try await race.next() ?? nil
                    }
                    #expect(unrelated?.inserted == 1, "the unrelated append waited for the blocked commit")
                    try await store.rows(other, "ROLLBACK")
                    try await group.waitForAll()
                }
            }
            #expect(try await store.count(DeadLetterFilter()) == 2)
        }
    }

    @Test("appends are committed while a long import's transaction is open (its usage slot is locked only at the end)")
    func appendsProceedBesideAnOpenImport() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore(maxConcurrentCommits: 1)
            try await store.migrate()
            let imported = DeadLetterFixtures.letters(count: 1500, seed: 51)
            let (source, feed) = AsyncStream.makeStream(of: DeadLetter.self)
            for letter in imported.prefix(1000) { feed.yield(letter) }  // one chunk, written at once
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let result = try await store.importLetters(source, onConflict: .fail)
                    #expect(result.inserted == 1500)
                }
                while try await harness.int(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%add_totals%'"
                ) == 0 {
                    await Task.yield()
                }
                // 32 appends, one commit each: their transaction ids cover every usage slot, the import's too.
                // (If one waited for the import, the 20-second bound lets the import finish, and the test fails.)
                let appended = try await withThrowingTaskGroup(of: Bool.self) { race in
                    race.addTask {
                        for letter in DeadLetterFixtures.letters(count: 32, seed: 52) {
                            try await store.append([letter])
                        }
                        return true
                    }
                    race.addTask {
                        try await Task.sleep(for: .seconds(20))
                        feed.finish()
                        return false
                    }
                    defer { race.cancelAll() }
                    return try await race.next() ?? false
                }
                #expect(appended, "an append waited for the open import")
                for letter in imported.dropFirst(1000) { feed.yield(letter) }
                feed.finish()
                try await group.waitForAll()
            }
            #expect(try await store.count(DeadLetterFilter()) == 1532)
            #expect(try await store.usage().count == 1532)
        }
    }

    @Test("text holding NUL is refused with invalidFormat naming the field; nothing is stored")
    func nulInText() async throws {
        try await PostgresTestServer.withHarness { harness in
            let store = try harness.makeStore()
            let good = DeadLetterFixtures.letter()
            let bad = DeadLetterFixtures.letter(errorMessage: "bad\u{0}byte")
            let error = await #expect(throws: DeadLetterError.self) { try await store.append([good, bad]) }
            #expect(error?.code == .invalidFormat)
            #expect(error?.field == "errorMessage")
            #expect(try await store.count(DeadLetterFilter()) == 0)
        }
    }
}

/// Configuration checks that need no server: they always run.
@Suite("PostgreSQL store configuration")
struct PostgresConfigurationTests {
    @Test(
        "invalid schema names are refused before anything is sent",
        arguments: [
            "", "Dead_Letters", "1abc", "a-b", "x; DROP TABLE letters", "\"q\"", String(repeating: "a", count: 64),
        ]
    )
    func invalidSchemaName(_ name: String) throws {
        let url = "postgres://dlq:secret@127.0.0.1:5432/dlq_test"
        let error = #expect(throws: DeadLetterError.self) {
            _ = try PostgresDeadLetterStore(url: url, configuration: .init(schema: name))
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.field == "schema")
    }

    @Test(
        "invalid URLs name what is wrong and never the password",
        arguments: [
            ("mysql://u:secret-pw@h/db", "postgres://"),
            ("postgres://u:secret-pw@h:99999/db", "port"),
            ("postgres://u:secret-pw@h/db?sslmode=sometimes", "sslmode"),
            ("postgres://u:secret-pw@h/db?color=blue", "color"),
            ("postgres://h/db", "user name"),
            ("postgres://u:secret-pw@h/db?schema=Bad", "schema"),
        ]
    )
    func invalidURL(_ url: String, _ mentions: String) throws {
        let error = #expect(throws: DeadLetterError.self) { _ = try PostgresDeadLetterStore(url: url) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description.contains(mentions) == true, "\(String(describing: error))")
        #expect(error?.description.contains("secret-pw") == false)
    }

    @Test("the URL's parts, percent-decoding and schema parameter are read; the description hides the password")
    func urlParts() throws {
        let store = try PostgresDeadLetterStore(
            url: "postgresql://svc%40eu:p%2Fss@db.example:6543/letters?sslmode=disable&schema=svc_dlq"
        )
        #expect(store.endpoint?.username == "svc@eu")
        #expect(store.endpoint?.password == "p/ss")
        #expect(store.endpoint?.port == 6543)
        #expect(store.endpoint?.database == "letters")
        #expect(store.configuration.schema == "svc_dlq")
        #expect(store.description == "PostgreSQL store svc@eu@db.example:6543/letters, schema svc_dlq")
        #expect(!store.description.contains("p/ss"))
    }
}
