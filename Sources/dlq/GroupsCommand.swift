import ArgumentParser
import DeadLetters
import Foundation

/// `dlq groups`: the letters grouped by fingerprint (the same failure), largest group first.
struct GroupsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "Group the dead letters by failure (fingerprint), largest group first.",
        discussion: """
            Letters share a fingerprint when their error type and message are the same once numbers, ids and \
            quoted values are set aside. --json writes an array of {"fingerprint", "count", "errorType", \
            "sampleMessage", "sources", "firstFailedAt", "lastFailedAt"}. --limit caps the number of groups \
            (default 100).

            Examples:
              dlq groups
              dlq groups --source payments --since 1h
              dlq list --fingerprint 9f2c41d07a3b5e81
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Flag(help: "Write a JSON array of groups.")
    var json = false

    func run() async throws {
        let filter = self.filters.filter()
        let limit = self.filters.limit ?? 100
        let groups = try await self.storeOptions.withStore(.read) { store in
            try await store.groups(filter, limit: limit)
        }
        if self.json {
            Terminal.line(JSONOutput.array(groups.map { DeadLetterJSON.group($0) }))
        } else {
            Terminal.out(GroupView.table(groups, now: Date()))
        }
    }
}

/// Groups for people.
enum GroupView {
    static func table(_ groups: [DeadLetterGroup], now: Date, style: Style = .stdout) -> String {
        guard !groups.isEmpty else { return style.dim("No dead letters.") + "\n" }
        let messageWidth = max(30, Terminal.width - 8 - 18 - 26 - 30 - 13)
        var table = Table(
            [
                .init(title: "COUNT", alignment: .right), .init(title: "FINGERPRINT"),
                .init(title: "ERROR TYPE", maxWidth: 24), .init(title: "SOURCES", maxWidth: 28),
                .init(title: "LAST FAILED"), .init(title: "SAMPLE MESSAGE", maxWidth: messageWidth),
            ],
            style: style
        )
        for group in groups {
            table.append([
                style.bold("\(group.count)"), group.fingerprint, group.errorType,
                group.sources.joined(separator: ","), Human.age(group.lastFailedAt, now: now),
                group.sampleMessage.truncated(to: messageWidth),
            ])
        }
        return table.render()
    }
}
