import ArgumentParser
import DeadLetters
import Foundation

/// `dlq replay --exec CMD`: runs a command per letter, at a rate and concurrency, and records the outcome.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a command per letter (payload on stdin); success removes the letter.",
        discussion: """
            For each selected letter, runs `sh -c CMD` with the payload on standard input and DLQ_ID, \
            DLQ_SOURCE, DLQ_REASON, DLQ_ATTEMPTS in its environment (its standard output is discarded). Exit \
            status 0 is success: the letter is removed (kept, with a history entry, with --keep). Anything \
            else is a failure: the last line of the command's standard error (or "exit status N") becomes \
            the letter's error message and its failed-replay count grows; after 3 failed replays a letter \
            is parked. A command still running at --timeout is killed (with everything it started) and \
            counts as a failure. The replay stops after --max-failures failures in a row. Parked letters are \
            left alone unless --status parked selects them. Ctrl-C stops starting new commands and waits for \
            those running.

            Before any letter is claimed (and with --dry-run too), the command's first word must be something \
            sh can run: a file that exists and is executable, a name on PATH, or a shell built-in; otherwise \
            dlq exits 2 naming it and no letter changes. A command that exits 126 or 127 while running \
            (something it calls is missing) is the operator's error, not the letter's: the replay stops, that \
            letter is handed back unchanged, and dlq exits 2.

            Each letter is leased while it runs (--lease, default 5m). A letter whose lease ran out without \
            an outcome (dlq was killed or hung while running it) 3 times is parked instead of run again, \
            with an 'abandoned' history entry. Every letter's history records the replay with its actor \
            (DLQ_ACTOR, else user@host) and the replay's operation id.

            A replay is an operation (see dlq ops): the letters selected when it starts are its frozen set, \
            and it records each letter's outcome with a heartbeat. One that was killed shows 'interrupted'; \
            --resume OP runs what it had not finished, with the recorded command and settings (no --exec). \
            --canary N runs N letters first and pauses (exit 1) if any failed; dlq ops resume OP goes on.

            Prints matched / succeeded / failed / skipped and the operation id; exits 1 when failures remain.

            Examples:
              dlq replay --source orders --reason timeout --dry-run --exec true
              dlq replay --source orders --exec 'curl -sf --data-binary @- localhost:8080'
              dlq replay --fingerprint 9f2c41d07a3b5e81 --rate 20/s --exec ./resend.sh
              dlq replay --reason timeout --concurrency 4 --timeout 10s --exec ./resend.sh
              dlq replay --source orders --canary 5 --exec ./resend.sh
              dlq replay --resume 01JF3Z6K8Q2W4M7N9P0R
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup(title: "Filters") var filters: FilterOptions

    @Option(help: ArgumentHelp("The command to run per letter, with sh -c.", valueName: "command"))
    var exec: String?

    @Option(
        help: ArgumentHelp(
            "Go on with an interrupted or paused replay: its recorded command, over what it had not run.",
            valueName: "operation"
        )
    )
    var resume: String?

    @Option(help: ArgumentHelp("Run this many letters first; pause if any of them failed.", valueName: "n"))
    var canary: Int?

    @Option(
        help: ArgumentHelp("At most this many commands started per second, e.g. 10/s, 600/m.", valueName: "N/s"),
        transform: RateArgument.parse
    )
    var rate: RateArgument?

    @Option(help: ArgumentHelp("At most this many commands at once.", valueName: "n"))
    var concurrency: Int = 1

    @Option(
        help: ArgumentHelp(
            "Kill a command that runs longer than this, e.g. 10s, 2m (default 30s).",
            valueName: "duration"
        ),
        transform: DurationArgument.parse
    )
    var timeout = DurationArgument(.seconds(30))

    @Flag(help: "Only count the letters and show a sample; run nothing.")
    var dryRun = false

    @Flag(help: "Keep letters whose command succeeded (with a history entry) instead of removing them.")
    var keep = false

    @Option(help: ArgumentHelp("Stop after this many failures in a row.", valueName: "n"))
    var maxFailures: Int = 10

    @Option(
        help: ArgumentHelp(
            "How long each letter stays leased while its command runs, e.g. 30s, 5m (default 5m).",
            valueName: "duration"
        ),
        transform: DurationArgument.parse
    )
    var lease: DurationArgument?

    func validate() throws {
        if self.resume == nil, self.exec == nil {
            throw ValidationError("--exec is required (or --resume OP to go on with a replay)")
        }
        if let exec = self.exec, exec.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--exec must not be empty")
        }
        if self.resume != nil, self.exec != nil {
            throw ValidationError("--resume runs the replay's recorded command; leave out --exec")
        }
        if let canary = self.canary, canary < 1 { throw ValidationError("--canary must be at least 1") }
        if self.concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if self.maxFailures < 1 { throw ValidationError("--max-failures must be at least 1") }
        if self.timeout.duration <= .zero { throw ValidationError("--timeout must be positive") }
        if let lease = self.lease, lease.duration <= .zero { throw ValidationError("--lease must be positive") }
    }

    func run() async throws {
        if let id = self.resume {
            try await Self.resume(id, storeOptions: self.storeOptions, timeout: self.timeout.duration)
            return
        }
        let exec = self.exec ?? ""
        if let problem = ExecCheck.problem(exec) {
            throw CLIError.usage("--exec: \(problem); no letter was changed")
        }
        let filter = try await self.filters.resolvedFilter(self.storeOptions)
        var options = ReplayOptions(
            rate: self.rate?.perSecond,
            concurrency: self.concurrency,
            dryRun: self.dryRun,
            keepOnSuccess: self.keep,
            maxConsecutiveFailures: self.maxFailures,
            limit: self.filters.limit,
            sampleSize: 5
        )
        options.actor = CommandActor.current
        options.leaseDuration = self.lease?.duration
        options.canary = self.canary
        options.command = exec
        let settings = options
        let timeout = self.timeout.duration
        try await Self.finish {
            try await self.storeOptions.withQueue { queue in
                try await Interrupts.cancellingOnInterrupt {
                    try await Self.replay(
                        queue: queue,
                        filter: filter,
                        options: settings,
                        command: exec,
                        timeout: timeout
                    )
                }
            }
        }
    }

    /// `dlq replay --resume OP`, `dlq ops resume OP`: goes on with a replay, running its recorded command.
    static func resume(_ id: String, storeOptions: StoreOptions, timeout: Duration) async throws {
        try await Self.finish {
            try await storeOptions.withQueue { queue in
                guard let operation = try await queue.operation(id: id) else {
                    throw CLIError.notFound("no operation has id \(id)")
                }
                guard let command = operation.parameters.command else {
                    throw CLIError.usage(
                        "operation \(id) is a \(operation.kind) without a recorded command; only a replay started by dlq resumes here"
                    )
                }
                if let problem = ExecCheck.problem(command) {
                    throw CLIError.usage("the recorded command: \(problem); no letter was changed")
                }
                let progressBar = ProgressBar("replaying", total: operation.counts.pending)
                defer { progressBar.finish() }
                return try await Interrupts.cancellingOnInterrupt {
                    try await queue.resumeReplay(
                        id: id,
                        actor: CommandActor.current,
                        progress: Self.progress(progressBar),
                        handler: Self.handler(command: command, timeout: timeout)
                    )
                }
            }
        }
    }

    /// Prints a replay's report and turns how it ended into the exit status.
    private static func finish(_ body: () async throws -> ReplayReport) async throws {
        let report: ReplayReport
        do {
            report = try await body()
        } catch let stopped as ReplayStoppedError {
            if let report = stopped.report { Self.print(report) }
            throw CLIError.usage(stopped.message)
        }
        Self.print(report)
        if Interrupts.wasInterrupted { throw SilentExit(status: ExitStatus.interrupted) }
        if report.failed > 0 || report.paused { throw SilentExit(status: ExitStatus.incomplete) }
    }

    private static func progress(_ bar: ProgressBar) -> @Sendable (ReplayReport) -> Void {
        let style = Style.stderr
        return { report in
            bar.update(
                report.succeeded + report.failed,
                detail: style.green("✓ \(report.succeeded)") + " " + style.red("✗ \(report.failed)")
            )
        }
    }

    static func replay(
        queue: DeadLetterQueue,
        filter: DeadLetterFilter,
        options: ReplayOptions,
        command: String,
        timeout: Duration
    ) async throws -> ReplayReport {
        if options.dryRun {
            return try await queue.replay(filter, options: options) { _ in }
        }
        var counted = options
        counted.dryRun = true
        let matched = try await queue.replay(filter, options: counted) { _ in }.matched
        let progressBar = ProgressBar("replaying", total: matched)
        defer { progressBar.finish() }
        return try await queue.replay(
            filter,
            options: options,
            progress: Self.progress(progressBar),
            handler: Self.handler(command: command, timeout: timeout)
        )
    }

    /// Runs `command` with a letter's payload on standard input: exit 0 is success; 126 and 127 stop the
    /// replay as the operator's error; anything else is the letter's failure.
    static func handler(command: String, timeout: Duration) -> DeadLetterQueue.Handler {
        { letter in
            let environment = [
                "DLQ_ID": letter.id, "DLQ_SOURCE": letter.source, "DLQ_REASON": letter.reason.rawValue,
                "DLQ_ATTEMPTS": "\(letter.attempts)",
            ]
            let result = try await CommandRunner.run(
                command,
                payload: letter.payload,
                environment: environment,
                timeout: timeout
            )
            if case .exited(let code) = result.outcome, code == 126 || code == 127 {
                let detail = result.lastErrorLine.map { ": \($0)" } ?? ""
                throw ReplayStoppedError(
                    "replay stopped: the command exited \(code)\(detail) (something it runs is missing or "
                        + "not executable); letter \(letter.id) was handed back unchanged"
                )
            }
            guard result.succeeded else {
                throw ReplayCommandError(
                    message: result.failureMessage(timeout: timeout),
                    failureReason: result.outcome == .timedOut ? .timeout : letter.reason
                )
            }
        }
    }

    static func print(_ report: ReplayReport) {
        let style = Style.stdout
        if report.dryRun {
            Terminal.line("dry run: \(Human.count(report.matched, "letter")) would be replayed; nothing was run")
            if !report.sample.isEmpty {
                Terminal.out(LetterView.table(report.sample, now: Date()))
            }
            return
        }
        var line = "matched \(report.matched)  "
        line += style.green("succeeded \(report.succeeded)") + "  "
        line += (report.failed > 0 ? style.red("failed \(report.failed)") : "failed 0") + "  "
        line += "skipped \(report.skipped)"
        if report.parked > 0 { line += "  " + style.magenta("parked \(report.parked)") }
        Terminal.line(line)
        if !report.operation.isEmpty { Terminal.line("operation \(report.operation)") }
        if report.paused {
            Terminal.err(
                "dlq: replay paused: a canary letter failed; go on with: dlq ops resume \(report.operation)\n"
            )
        }
        if report.cancelled {
            Terminal.err("dlq: replay cancelled (dlq ops cancel); the letters not run are unchanged\n")
        }
        if report.stoppedByCircuit {
            Terminal.err(
                "dlq: replay stopped after too many failures in a row (--max-failures); resume with: dlq ops resume \(report.operation)\n"
            )
        }
        if Interrupts.wasInterrupted {
            Terminal.err(
                "dlq: replay interrupted; the letters not run are unchanged; resume with: dlq replay --resume \(report.operation)\n"
            )
        }
    }
}
