import ArgumentParser
import DeadLetters
import DeadLettersPostgres
import DeadLettersSQLite
import Foundation

/// `dlq migrate`: creates the store, or brings its schema up to date.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the store, or migrate its schema to this version.",
        discussion: """
            A SQLite file is created (mode 0600) when missing and migrated when opened; PostgreSQL tables are \
            created or upgraded in one transaction. It says what it did: created, migrated from version N, or \
            already up to date. Running it again changes nothing.

            Examples:
              dlq migrate --store /var/lib/orders/dead-letters.sqlite
              DLQ_STORE=postgres://dlq:secret@db:5432/app dlq migrate
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let location = try self.storeOptions.location
        let (previous, current, count): (Int?, Int, Int)
        var note = ""
        switch location {
        case .sqlite(let path):
            let store = try StoreOptions.openSQLite(path: path, access: .migrate)
            defer { try? store.close() }
            previous = store.previousSchemaVersion
            current = SQLiteDeadLetterStore.schemaVersion
            count = try await store.count(DeadLetterFilter())
        case .postgres(let url):
            var configuration = PostgresDeadLetterStore.Configuration()
            configuration.migrate = false
            let indexed: Bool
            (previous, count, indexed) = try await PostgresDeadLetterStore.withStore(
                url: url,
                configuration: configuration
            ) { store in
                let before = try await store.migrate()
                return (
                    before == PostgresDeadLetterStore.schemaVersion ? nil : before,
                    try await store.count(DeadLetterFilter()),
                    try await store.searchIsIndexed()
                )
            }
            if !indexed {
                note =
                    "; searches read every letter: the pg_trgm extension is not available (install it, e.g. "
                    + "Debian's postgresql-contrib, or have a superuser run CREATE EXTENSION pg_trgm, then run "
                    + "dlq migrate again)"
            }
            current = PostgresDeadLetterStore.schemaVersion
        }
        Terminal.line("\(location): \(Self.describe(previous: previous, current: current, count: count))\(note)")
    }

    /// What the migration did, in words.
    static func describe(previous: Int?, current: Int, count: Int) -> String {
        let letters = Human.count(count, "letter")
        switch previous {
        case nil: return "schema version \(current), already up to date; nothing changed (\(letters))"
        case 0: return "created, schema version \(current) (\(letters))"
        case let version?:
            return "migrated schema version \(version) to \(current); \(letters) kept with their history "
                + "(letters of version 1 read their first failure from their own error fields)"
        }
    }
}
