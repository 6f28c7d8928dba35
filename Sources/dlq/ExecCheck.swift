import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks, before any letter is claimed, that `dlq replay --exec CMD` names a command `sh` can run: an
/// operator's typo must not become every letter's failure.
enum ExecCheck {
    /// The words `sh` runs itself (POSIX special and regular built-ins, and what dash and bash add).
    static let builtins: Set<String> = [
        ":", ".", "[", "alias", "bg", "break", "cd", "command", "continue", "echo", "eval", "exec", "exit",
        "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill", "local", "printf", "pwd", "read",
        "readonly", "return", "set", "shift", "test", "times", "trap", "true", "type", "ulimit", "umask",
        "unalias", "unset", "wait",
    ]
    /// Words that begin a compound command; what follows them is not checked.
    static let keywords: Set<String> = ["!", "{", "(", "if", "while", "until", "for", "case", "time"]

    /// The command's first word when `sh` cannot run it, with why; `nil` when it can (or when the word is
    /// only known at run time: a variable, a quoted or substituted word).
    static func problem(_ command: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        var words = command.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        // Leading assignments (`FOO=bar cmd`) set the environment of the command that follows.
        while let first = words.first, Self.isAssignment(first) { words.removeFirst() }
        guard var word = words.first else { return nil }
        // `cmd;` or `cmd|…` written without spaces: the word ends at the operator.
        if let end = word.firstIndex(where: { ";|&<>()".contains($0) }) {
            guard end > word.startIndex else { return nil }
            word = String(word[..<end])
        }
        if Self.keywords.contains(word) || Self.builtins.contains(word) { return nil }
        if word.contains(where: { "$`\"'\\*?[~".contains($0) }) { return nil }
        let files = FileManager.default
        if word.contains("/") {
            var isFolder: ObjCBool = false
            guard files.fileExists(atPath: word, isDirectory: &isFolder) else { return "\(word): no such file" }
            guard !isFolder.boolValue else { return "\(word): is a folder, not a command" }
            guard Self.isExecutable(word) else { return "\(word): not executable (chmod +x \(word))" }
            return nil
        }
        for folder in (path ?? "/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (folder.isEmpty ? "." : String(folder)) + "/" + word
            var isFolder: ObjCBool = false
            if files.fileExists(atPath: candidate, isDirectory: &isFolder), !isFolder.boolValue,
                Self.isExecutable(candidate)
            {
                return nil
            }
        }
        return "\(word): command not found on PATH"
    }

    /// Whether some execute bit is set (root passes `access(X_OK)` for any file with one) and `access` agrees.
    private static func isExecutable(_ path: String) -> Bool {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let permissions = attributes[.posixPermissions] as? Int, permissions & 0o111 != 0
        else { return false }
        return access(path, X_OK) == 0
    }

    private static func isAssignment(_ word: String) -> Bool {
        guard let equals = word.firstIndex(of: "="), equals > word.startIndex else { return false }
        let name = word[..<equals]
        guard let first = name.first, first == "_" || first.isLetter else { return false }
        return name.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber }
    }
}
