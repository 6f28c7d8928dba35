import DeadLetters
import Foundation
import Synchronization

/// A one-line progress bar on standard error, with the rate and the time left: shown only when standard error
/// is a terminal, redrawn at most ten times a second, erased when done.
final class ProgressBar: Sendable {
    private struct State {
        var done = 0
        var total: Int?
        var detail = ""
        var lastDraw: ContinuousClock.Instant?
        var drawn = false
        var finished = false
    }

    private let label: String
    private let enabled: Bool
    private let start = ContinuousClock.now
    private let state: Mutex<State>
    private let style = Style.stderr

    /// Creates a bar.
    /// - Parameters:
    ///   - label: what is being done, e.g. "replaying".
    ///   - total: how many items there are, when known.
    ///   - enabled: whether to draw; by default when standard error is a terminal.
    init(_ label: String, total: Int?, enabled: Bool = Terminal.stderrIsTerminal) {
        self.label = label
        self.enabled = enabled
        self.state = Mutex(State(total: total))
    }

    /// Sets how many items are done, and an optional detail shown after the counts.
    func update(_ done: Int, detail: String? = nil) {
        guard self.enabled else { return }
        let line: String? = self.state.withLock { state in
            state.done = done
            if let detail { state.detail = detail }
            let now = ContinuousClock.now
            if let last = state.lastDraw, now - last < .milliseconds(100), done != state.total { return nil }
            if state.finished { return nil }
            state.lastDraw = now
            state.drawn = true
            return self.render(state, now: now)
        }
        if let line { Terminal.err("\r\u{1B}[2K" + line) }
    }

    /// Erases the bar.
    func finish() {
        guard self.enabled else { return }
        let erase = self.state.withLock { state in
            defer { state.finished = true }
            return state.drawn && !state.finished
        }
        if erase { Terminal.err("\r\u{1B}[2K") }
    }

    private func render(_ state: State, now: ContinuousClock.Instant) -> String {
        let elapsed = max(0.001, (now - self.start).seconds)
        let rate = Double(state.done) / elapsed
        var text = "\(self.label) "
        if let total = state.total, total > 0 {
            let fraction = min(1, Double(state.done) / Double(total))
            let width = 28
            let filled = Int((fraction * Double(width)).rounded(.down))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            text += self.style.cyan(bar) + " \(state.done)/\(total) "
            text += String(format: "%3d%%", Int((fraction * 100).rounded(.down)))
            text += "  " + Self.formatRate(rate)
            if state.done > 0, state.done < total {
                let left = Double(total - state.done) / max(rate, 0.000_001)
                text += "  " + self.style.dim("\(Self.formatSeconds(left)) left")
            }
        } else {
            text += "\(state.done)  " + Self.formatRate(rate)
        }
        if !state.detail.isEmpty { text += "  " + state.detail }
        return text
    }

    static func formatRate(_ rate: Double) -> String {
        if rate >= 10_000 { return String(format: "%.0fk/s", rate / 1000) }
        if rate >= 100 { return String(format: "%.0f/s", rate) }
        return String(format: "%.1f/s", rate)
    }

    static func formatSeconds(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded(.up))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total / 3600)h\(String(format: "%02d", total / 60 % 60))m"
    }
}
