import DeadLetters
import HTTPTypes

/// What a token may do on the admin routes. Each role may do what the roles before it may.
public enum AdminRole: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Reads everything but payloads: counts, lists, letters without their payloads, groups, operations,
    /// instances, `/metrics`.
    case viewer
    /// Payloads too; redrive, park, unpark, edit, and cancel an operation.
    case `operator`
    /// Purge and delete too.
    case admin

    public static func < (lhs: Self, rhs: Self) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }
}

/// A named token and its role. The name is who acts in the letters' history and the operations' audit log.
public struct AdminToken: Sendable, Hashable {
    public var name: String
    public var role: AdminRole
    public var token: String

    public init(name: String, role: AdminRole, token: String) {
        self.name = name
        self.role = role
        self.token = token
    }

    /// Tokens written one per line as `name role token` (`dlq serve --tokens-file`, `DLQ_TOKENS`): lines
    /// separated by newlines or `;`; blank lines and lines starting with `#` are skipped.
    /// - Parameter source: where the text came from, for messages (`tokens.txt`, `DLQ_TOKENS`).
    /// - Throws: ``DeadLetters/DeadLetterError`` `invalidConfiguration` naming the line and what is wrong
    ///   (never the token itself).
    public static func parse(_ text: String, source: String) throws -> [AdminToken] {
        var tokens: [AdminToken] = []
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == ";" || $0 == "\r\n" }
        for (index, raw) in lines.enumerated() {
            let line = raw.trimmingASCIIWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            func invalid(_ problem: String) -> DeadLetterError {
                DeadLetterError(
                    code: .invalidConfiguration,
                    message: "\(source), line \(index + 1): \(problem)",
                    field: "tokens"
                )
            }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count == 3 else {
                throw invalid("expected 'name role token' (3 fields), found \(fields.count)")
            }
            guard let role = AdminRole(rawValue: fields[1]) else {
                let shown = String(fields[1].prefix(20))
                throw invalid("unknown role '\(shown)'; use viewer, operator or admin")
            }
            tokens.append(AdminToken(name: fields[0], role: role, token: fields[2]))
        }
        guard !tokens.isEmpty else {
            throw DeadLetterError(
                code: .invalidConfiguration,
                message: "\(source) holds no token; write one 'name role token' per line",
                field: "tokens"
            )
        }
        return tokens
    }

    /// Checks names and tokens: printable ASCII without spaces, names unique, tokens unique.
    static func validate(_ tokens: [AdminToken]) throws {
        func invalid(_ message: String) -> DeadLetterError {
            DeadLetterError(code: .invalidConfiguration, message: message, field: "tokens")
        }
        func printable(_ text: String) -> Bool {
            !text.isEmpty && !text.unicodeScalars.contains { $0.value <= 0x20 || $0.value >= 0x7F }
        }
        var names: Set<String> = []
        var secrets: Set<String> = []
        for token in tokens {
            guard printable(token.name), token.name.utf8.count <= 64 else {
                throw invalid("a token's name must be 1 to 64 printable ASCII characters without spaces")
            }
            guard printable(token.token) else {
                throw invalid("the token of '\(token.name)' must be printable ASCII without spaces")
            }
            guard names.insert(token.name).inserted else { throw invalid("two tokens are named '\(token.name)'") }
            guard secrets.insert(token.token).inserted else {
                throw invalid("'\(token.name)' has the same token as another name; each needs its own")
            }
        }
    }
}

/// Who sent a request: a token's name and role.
struct AdminIdentity: Sendable, Hashable {
    var name: String
    var role: AdminRole

    /// The identity of the request being handled, set by ``AdminSecurityMiddleware``; `nil` on a server
    /// without tokens (everyone may do everything there).
    @TaskLocal static var current: AdminIdentity?
}

extension AdminRole {
    /// The role a request needs, by method and path (relative to the mount path); `nil` for none
    /// (`/healthz`, sign-in and sign-out).
    static func needed(method: HTTPRequest.Method, path: String, query: String?) -> AdminRole? {
        if path == "/healthz" || path == "/signin" || path == "/signout" { return nil }
        let isChange = method != .get && method != .head
        if path == "/confirm" {
            let action = (try? FormItems(encoded: query))?.last("action") ?? ""
            return Self.forAction(action)
        }
        guard isChange else { return .viewer }
        if method == .delete { return .admin }
        if path.hasPrefix("/actions/") { return Self.forAction(String(path.dropFirst("/actions/".count))) }
        if path == "/api/v1/purge" { return .admin }
        return .operator
    }

    /// The role a dashboard action needs: removing letters is an administrator's.
    static func forAction(_ action: String) -> AdminRole {
        action == "purge" || action == "delete" ? .admin : .operator
    }
}

extension Substring {
    func trimmingASCIIWhitespace() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" || first == "\r" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text.removeLast() }
        return text
    }
}
