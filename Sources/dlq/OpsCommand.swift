import ArgumentParser
import DeadLetters
import Foundation

/// `dlq ops`: the recorded operations (redrives, replays, purges, parks, edits, deletes): the audit log.
struct OpsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Follow, cancel and resume operations: who redrove, replayed, purged what, and how it went.",
        discussion: """
            Every redrive, replay, purge, park, edit and delete is recorded as an operation: its kind, state \
            (running, paused, interrupted, cancelled, finished), who started it, its filter and parameters, \
            the frozen set of letters it selected and what became of each (succeeded, failed, parked, \
            pending, skipped). A replay whose process stopped shows 'interrupted'. Operations are kept 30 \
            days.

            Examples:
              dlq ops list
              dlq ops list --state running --json
              dlq ops show 01JF3Z6K8Q2W4M7N9P0R
              dlq ops cancel 01JF3Z6K8Q2W4M7N9P0R
              dlq ops resume 01JF3Z6K8Q2W4M7N9P0R
            """,
        subcommands: [List.self, Show.self, Cancel.self, Resume.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List operations, newest first.",
            discussion: """
                --json writes an array of {"id", "kind", "state", "actor", "createdAt", "startedAt", \
                "finishedAt", "heartbeatAt", "filter", "parameters", "counts", "message"}; counts has \
                "selected", "succeeded", "failed", "parked", "pending", "skipped".
                """
        )

        @OptionGroup var storeOptions: StoreOptions

        @Option(
            name: .customLong("state"),
            help: ArgumentHelp(
                "Only operations in this state: running, paused, interrupted, cancelled, finished (repeatable).",
                valueName: "state"
            )
        )
        var states: [String] = []

        @Option(help: ArgumentHelp("At most this many (default 50).", valueName: "n"))
        var limit: Int = 50

        @Flag(help: "Write a JSON array of operations.")
        var json = false

        func validate() throws {
            let known = DeadLetterOperation.State.all.map(\.rawValue)
            for state in self.states where !known.contains(state) {
                throw ValidationError("--state: '\(state)' is not a state; use one of \(known.joined(separator: ", "))")
            }
            if self.limit < 1 { throw ValidationError("--limit must be a whole number, 1 or more") }
        }

        func run() async throws {
            let states = self.states.map(DeadLetterOperation.State.init(rawValue:))
            let limit = self.limit
            let operations = try await self.storeOptions.withQueue(.read) { queue in
                try await queue.operations(states: states, limit: limit)
            }
            let now = Date()
            if self.json {
                Terminal.line(DeadLetterJSON.operations(operations, now: now))
            } else {
                Terminal.out(OperationView.table(operations, now: now))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an operation, with the letters that failed again and their new errors.",
            discussion: """
                --json writes the operation (as dlq ops list --json does) with "letters": the letters that \
                failed again or were parked, each {"id", "outcome", "at", "errorType", "errorMessage"}.
                """
        )

        @OptionGroup var storeOptions: StoreOptions

        @Argument(help: ArgumentHelp("The operation's id.", valueName: "operation"))
        var id: String

        @Flag(help: "Write the operation as JSON.")
        var json = false

        func run() async throws {
            let id = self.id
            let (operation, failed) = try await self.storeOptions.withQueue(.read) { queue in
                guard let operation = try await queue.operation(id: id) else {
                    throw CLIError.notFound("no operation has id \(id); see dlq ops list")
                }
                let failed = try await queue.operationLetters(id: id, outcomes: [.failed, .parked], limit: 100)
                return (operation, failed)
            }
            let now = Date()
            if self.json {
                var object = DeadLetterJSON.operation(operation, now: now)
                object.removeLast()
                object += #","letters":"# + JSONOutput.array(failed.map { DeadLetterJSON.operationLetter($0) }) + "}"
                Terminal.line(object)
            } else {
                Terminal.out(OperationView.detail(operation, failed: failed, now: now))
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Cancel an operation: a replay stops at its next letter; a redrive's letters not yet run go back to dead.",
            discussion: """
                Recorded with who cancelled it (DLQ_ACTOR, else user@host); each letter returned to 'dead' \
                gets a 'cancelled' history entry. A replay running in another process stops within a second.
                """
        )

        @OptionGroup var storeOptions: StoreOptions

        @Argument(help: ArgumentHelp("The operation's id.", valueName: "operation"))
        var id: String

        func run() async throws {
            let id = self.id
            let operation = try await self.storeOptions.withQueue { queue in
                guard try await queue.operation(id: id) != nil else {
                    throw CLIError.notFound("no operation has id \(id); see dlq ops list")
                }
                return try await queue.cancelOperation(id: id, actor: CommandActor.current)
            }
            var line = "cancelled \(operation.kind) \(operation.id)"
            if operation.kind == .redrive {
                line += " · \(Human.count(operation.counts.skipped, "letter")) returned to dead"
            }
            Terminal.line(line)
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Go on with an interrupted or paused replay (same as dlq replay --resume).",
            discussion: """
                Runs the replay's recorded command over the letters of its frozen set that have no outcome \
                yet, under the same operation id, which ends 'finished'.
                """
        )

        @OptionGroup var storeOptions: StoreOptions

        @Argument(help: ArgumentHelp("The replay's operation id.", valueName: "operation"))
        var id: String

        @Option(
            help: ArgumentHelp("Kill a command that runs longer than this (default 30s).", valueName: "duration"),
            transform: DurationArgument.parse
        )
        var timeout = DurationArgument(.seconds(30))

        func run() async throws {
            try await ReplayCommand.resume(self.id, storeOptions: self.storeOptions, timeout: self.timeout.duration)
        }
    }
}

/// `dlq instances`: the services whose queues run, and the sources they handle.
struct InstancesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "instances",
        abstract: "List the running services (instances whose queue runs) and the sources they handle.",
        discussion: """
            A queue that runs (DeadLetterQueue.run) records itself in the store every few seconds; one not \
            seen for 3 heartbeats is gone. --json writes an array of {"id", "host", "pid", "version", \
            "sources", "startedAt", "lastSeenAt"}. Letters redriven for a source no instance handles wait \
            until one starts.
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Flag(help: "Write a JSON array of instances.")
    var json = false

    func run() async throws {
        let instances = try await self.storeOptions.withQueue(.read) { queue in try await queue.instances() }
        if self.json {
            Terminal.line(JSONOutput.array(instances.map { DeadLetterJSON.instance($0) }))
            return
        }
        let style = Style.stdout
        guard !instances.isEmpty else {
            Terminal.line(style.dim("No running service: letters redriven now wait until one starts."))
            return
        }
        let now = Date()
        var table = Table(
            [
                .init(title: "ID"), .init(title: "HOST"), .init(title: "PID", alignment: .right),
                .init(title: "VERSION"), .init(title: "SOURCES", maxWidth: 40), .init(title: "LAST SEEN"),
            ],
            style: style
        )
        for instance in instances {
            table.append([
                instance.id, instance.host, "\(instance.pid)", instance.version,
                instance.sources.joined(separator: ","), Human.age(instance.lastSeenAt, now: now),
            ])
        }
        Terminal.out(table.render())
    }
}

/// Operations for people.
enum OperationView {
    static func table(_ operations: [DeadLetterOperation], now: Date, style: Style = .stdout) -> String {
        guard !operations.isEmpty else { return style.dim("No operations.") + "\n" }
        var table = Table(
            [
                .init(title: "ID"), .init(title: "KIND"), .init(title: "STATE"), .init(title: "PROGRESS"),
                .init(title: "OK", alignment: .right), .init(title: "FAILED", alignment: .right),
                .init(title: "PENDING", alignment: .right), .init(title: "ACTOR", maxWidth: 24),
                .init(title: "STARTED"),
            ],
            style: style
        )
        for operation in operations {
            let c = operation.counts
            table.append([
                operation.id, operation.kind.rawValue, Self.state(operation.state, style: style),
                "\(c.selected - c.pending)/\(c.selected)", "\(c.succeeded)",
                c.failed + c.parked > 0 ? style.red("\(c.failed + c.parked)") : "0", "\(c.pending)", operation.actor,
                Human.age(operation.startedAt ?? operation.createdAt, now: now),
            ])
        }
        return table.render()
    }

    static func detail(
        _ o: DeadLetterOperation,
        failed: [DeadLetterOperationLetter],
        now: Date,
        style: Style = .stdout
    ) -> String {
        var text = style.bold("\(o.kind) \(o.id)") + "  " + Self.state(o.state, style: style) + "\n"
        text += "actor      \(o.actor)\n"
        text += "created    \(Timestamp.format(o.createdAt)) (\(Human.age(o.createdAt, now: now)))\n"
        if let finished = o.finishedAt {
            text += "finished   \(Timestamp.format(finished)) (\(Human.age(finished, now: now)))\n"
        }
        if let heartbeat = o.heartbeatAt { text += "heartbeat  \(Human.age(heartbeat, now: now))\n" }
        let filter = DeadLetterJSON.filter(o.filter)
        text += "filter     \(filter == "{}" ? "all letters" : filter)\n"
        let parameters = DeadLetterJSON.parameters(o.parameters)
        if parameters != "{}" { text += "parameters \(parameters)\n" }
        let c = o.counts
        text += "letters    \(c.selected) selected · \(c.succeeded) succeeded · \(c.failed) failed · "
        text += "\(c.parked) parked · \(c.pending) pending · \(c.skipped) skipped\n"
        if let message = o.message { text += "message    \(message)\n" }
        if !failed.isEmpty {
            text += "\n" + style.bold("Failed again") + "\n"
            for letter in failed {
                let error = [letter.errorType, letter.errorMessage].compactMap { $0 }.joined(separator: ": ")
                text += "  \(letter.letterID)  \(letter.outcome)  \(error)\n"
            }
        }
        if o.state == .interrupted || o.state == .paused, o.kind == .replay {
            text += "\nGo on with: dlq ops resume \(o.id)\n"
        }
        return text
    }

    static func state(_ state: DeadLetterOperation.State, style: Style) -> String {
        switch state {
        case .finished: style.green(state.rawValue)
        case .running: style.cyan(state.rawValue)
        case .cancelled, .interrupted: style.red(state.rawValue)
        default: style.yellow(state.rawValue)
        }
    }
}
