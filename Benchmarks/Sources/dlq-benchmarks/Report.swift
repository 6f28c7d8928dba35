/// One row of the results table.
struct Figure: Sendable {
    /// What was measured.
    var name: String
    /// DESIGN.md's target, or "—".
    var target: String
    /// The measured value, formatted.
    var measured: String
    /// Whether the target was reached; `nil` when there is no target.
    var pass: Bool?
    /// What limits the figure, for a missed target (printed below the table).
    var note: String?

    init(_ name: String, target: String = "—", measured: String, pass: Bool? = nil, note: String? = nil) {
        self.name = name
        self.target = target
        self.measured = measured
        self.pass = pass
        self.note = note
    }
}

/// Collects figures and prints them as a Markdown table.
final class Report {
    private(set) var figures: [Figure] = []

    func add(_ figure: Figure) {
        self.figures.append(figure)
        let mark = figure.pass.map { $0 ? "pass" : "MISS" } ?? "info"
        log("  [\(mark)] \(figure.name): \(figure.measured) (target \(figure.target))")
    }

    func markdown() -> String {
        var out = "| figure | target | measured | pass |\n|---|---|---|---|\n"
        for figure in self.figures {
            let pass = figure.pass.map { $0 ? "✅" : "❌" } ?? "—"
            out += "| \(figure.name) | \(figure.target) | \(figure.measured) | \(pass) |\n"
        }
        let notes = self.figures.filter { $0.note != nil }
        if !notes.isEmpty {
            out += "\nNotes:\n"
            for figure in notes { out += "- \(figure.name): \(figure.note ?? "")\n" }
        }
        return out
    }
}

/// Progress goes to stderr, so that stdout holds only the results.
func log(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { buffer in
        _ = write(2, buffer.baseAddress, buffer.count)
    }
}

#if canImport(Glibc)
import Glibc
#endif
