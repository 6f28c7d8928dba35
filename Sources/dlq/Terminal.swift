#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the command may do with its output streams: colours only on a terminal and never with `NO_COLOR`,
/// progress only when stderr is a terminal.
enum Terminal {
    /// Whether standard output is a terminal.
    static let stdoutIsTerminal = isatty(STDOUT_FILENO) == 1
    /// Whether standard error is a terminal.
    static let stderrIsTerminal = isatty(STDERR_FILENO) == 1
    /// Whether standard input is a terminal.
    static let stdinIsTerminal = isatty(STDIN_FILENO) == 1

    /// `NO_COLOR` set to anything (https://no-color.org), or `TERM=dumb`.
    static let colorsDisabled: Bool = {
        if getenv("NO_COLOR") != nil { return true }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return true }
        return false
    }()

    /// Whether text written to standard output may carry colours.
    static let stdoutColors = stdoutIsTerminal && !colorsDisabled
    /// Whether text written to standard error may carry colours.
    static let stderrColors = stderrIsTerminal && !colorsDisabled

    /// The width of the terminal on standard output, or 160 when it is not one.
    static var width: Int {
        if let columns = getenv("COLUMNS"), let value = Int(String(cString: columns)), value > 20 { return value }
        var size = winsize()
        if stdoutIsTerminal, withUnsafeMutablePointer(to: &size, { ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), $0) }) == 0,
            size.ws_col > 20
        {
            return Int(size.ws_col)
        }
        return 160
    }

    /// Writes `text` to standard output as is.
    static func out(_ text: String) {
        write(STDOUT_FILENO, text)
    }

    /// Writes `text` and a line break to standard output.
    static func line(_ text: String = "") {
        write(STDOUT_FILENO, text + "\n")
    }

    /// Writes `text` to standard error as is.
    static func err(_ text: String) {
        write(STDERR_FILENO, text)
    }

    /// Writes raw bytes to standard output.
    static func out(bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeAll(STDOUT_FILENO, $0) }
    }

    private static func write(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    }

    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) {
        guard var base = buffer.baseAddress else { return }
        var left = buffer.count
        while left > 0 {
            let written = systemWrite(fd, base, left)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            left -= written
            base += written
        }
    }
}

/// ANSI styles, applied only when the stream is a terminal and `NO_COLOR` is not set.
struct Style: Sendable {
    /// Whether styles produce escape codes.
    var enabled: Bool

    /// Styles for standard output.
    static let stdout = Style(enabled: Terminal.stdoutColors)
    /// Styles for standard error.
    static let stderr = Style(enabled: Terminal.stderrColors)

    private func wrap(_ text: String, _ code: String) -> String {
        self.enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    func bold(_ text: String) -> String { self.wrap(text, "1") }
    func dim(_ text: String) -> String { self.wrap(text, "2") }
    func red(_ text: String) -> String { self.wrap(text, "31") }
    func green(_ text: String) -> String { self.wrap(text, "32") }
    func yellow(_ text: String) -> String { self.wrap(text, "33") }
    func blue(_ text: String) -> String { self.wrap(text, "34") }
    func magenta(_ text: String) -> String { self.wrap(text, "35") }
    func cyan(_ text: String) -> String { self.wrap(text, "36") }

    /// The colour of a status.
    func status(_ status: String) -> String {
        switch status {
        case "dead": self.red(status)
        case "retrying": self.yellow(status)
        case "parked": self.magenta(status)
        default: status
        }
    }
}

extension String {
    /// The number of terminal columns the string takes, ignoring ANSI escape sequences.
    var visibleWidth: Int {
        var width = 0
        var inEscape = false
        for scalar in self.unicodeScalars {
            if inEscape {
                if scalar == "m" { inEscape = false }
                continue
            }
            if scalar == "\u{1B}" {
                inEscape = true
                continue
            }
            // Combining marks take no column; everything else counts one (good enough for tables).
            if scalar.properties.generalCategory == .nonspacingMark { continue }
            width += 1
        }
        return width
    }

    /// The string cut to `width` columns with an ellipsis, on one line (line breaks become spaces).
    func truncated(to width: Int) -> String {
        let flat = self.replacing("\r\n", with: " ").map { $0 == "\n" || $0 == "\t" ? " " : $0 }
        guard flat.count > width else { return String(flat) }
        guard width > 1 else { return String(flat.prefix(width)) }
        return String(flat.prefix(width - 1)) + "…"
    }
}

private func systemWrite(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, base, count)
}
