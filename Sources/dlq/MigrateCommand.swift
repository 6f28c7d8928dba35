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
            created or upgraded in one transaction. Running it again changes nothing.

            Examples:
              dlq migrate --store /var/lib/orders/dead-letters.sqlite
              DLQ_STORE=postgres://dlq:secret@db:5432/app dlq migrate
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let location = try self.storeOptions.location
        let count = try await self.storeOptions.withStore(.migrate) { store in
            if let postgres = store as? PostgresDeadLetterStore { try await postgres.migrate() }
            return try await store.count(DeadLetterFilter())
        }
        Terminal.line("\(location): schema up to date (\(Human.count(count, "letter")))")
    }
}
