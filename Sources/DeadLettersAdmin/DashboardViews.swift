import DeadLetters
// Full Foundation for `Bundle`, to find the templates beside the executable.
import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// The dashboard's templates (swift-mustache, from the module's `Templates` resources) and what renders them.
///
/// Every value is HTML-escaped by the templates (`{{value}}`); no template uses unescaped output.
struct DashboardViews: Sendable {
    let library: MustacheLibrary
    let basePath: String

    /// The name of the resource bundle SwiftPM puts beside the executable.
    static let bundleName = "swift-dead-letters_DeadLettersAdmin.resources"
    static let templateNames = [
        "head", "foot", "overview", "letters", "letter", "groups", "confirm", "signin", "error", "operations",
        "operation", "instances",
    ]

    /// Loads the templates from `DLQ_ADMIN_TEMPLATES` when set, else from the resource bundle beside the
    /// executable.
    /// - Throws: ``DeadLetters/DeadLetterError`` `io` naming the folder when a template is missing or invalid.
    init(basePath: String) throws {
        self.basePath = basePath
        let folder = Self.templateFolder()
        var library = MustacheLibrary()
        for name in Self.templateNames {
            let path = "\(folder)/\(name).mustache"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DeadLetterError(
                    code: .io,
                    message: "the dashboard template '\(name).mustache' is missing; keep \(Self.bundleName) "
                        + "beside the executable or set DLQ_ADMIN_TEMPLATES",
                    file: folder
                )
            }
            do {
                try library.register(String(decoding: data, as: UTF8.self), named: name)
            } catch {
                throw DeadLetterError(code: .io, message: "the dashboard template is not valid Mustache", file: path)
            }
        }
        self.library = library
    }

    static func templateFolder() -> String {
        if let folder = ProcessInfo.processInfo.environment["DLQ_ADMIN_TEMPLATES"], !folder.isEmpty {
            return folder
        }
        var candidates: [String] = []
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent(Self.bundleName).path)
        }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(Self.bundleName).path)
        for candidate in candidates {
            let folder = candidate + "/Templates"
            if FileManager.default.fileExists(atPath: folder + "/head.mustache") { return folder }
            if FileManager.default.fileExists(atPath: candidate + "/head.mustache") { return candidate }
        }
        return (candidates.first ?? Self.bundleName) + "/Templates"
    }

    /// A path under the base path, for links.
    func link(_ path: String) -> String { self.basePath + path }

    /// Renders `template` as a full page with `status`.
    func page(
        _ template: String,
        _ values: [String: Any],
        status: HTTPResponse.Status = .ok,
        headers: HTTPFields = [:]
    ) throws -> Response {
        var context = values
        context["base"] = self.basePath
        // A page that refreshes itself (`live`) or has copy buttons (`copy`) carries the one script the policy
        // allows: by a nonce made for this response alone, so no other script (a payload that slipped through
        // escaping) can run.
        let nonce = context["live"] == nil && context["copy"] == nil ? nil : Self.nonce()
        context["nonce"] = nonce
        guard let html = self.library.render(context, withTemplate: template) else {
            throw DeadLetterAdminError.internalError
        }
        var headers = headers
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        Self.addSecurityHeaders(to: &headers, nonce: nonce)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// An HTML page for an error of a dashboard route.
    func errorPage(_ error: DeadLetterAdminError) -> Response? {
        var headers = error.headers
        headers[.wwwAuthenticate] = nil
        return try? self.page(
            "error",
            [
                "title": "Error \(error.status.code)",
                "status": "\(error.status.code) \(error.status.reasonPhrase)",
                "message": error.message,
                "signedIn": false,
            ],
            status: error.status,
            headers: headers
        )
    }

    /// No scripts but the page's own (by the nonce of this response, for a page that refreshes itself), no
    /// framing, no referrer to other sites (`no-referrer` would make browsers send `Origin: null` on the
    /// dashboard's own forms): a payload that slipped through escaping still cannot run. A policy already set
    /// for the response (with its nonce) is kept.
    static func addSecurityHeaders(to headers: inout HTTPFields, nonce: String? = nil) {
        if headers[.contentSecurityPolicy] == nil || nonce != nil {
            let scripts = nonce.map { "script-src 'nonce-\($0)'; connect-src 'self'; " } ?? ""
            headers[.contentSecurityPolicy] =
                "default-src 'none'; \(scripts)style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'"
        }
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
    }

    /// 16 random bytes from the system's secure generator, as hex: a script nonce for one response.
    static func nonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    // MARK: Formatting

    /// `3d 4h`, `2h 5m`, `40s`.
    static func age(_ seconds: Double) -> String {
        let total = max(0, Int(seconds))
        let days = total / 86_400
        let hours = total % 86_400 / 3600
        let minutes = total % 3600 / 60
        if days > 0 { return hours > 0 ? "\(days)d \(hours)h" : "\(days)d" }
        if hours > 0 { return minutes > 0 ? "\(hours)h \(minutes)m" : "\(hours)h" }
        if minutes > 0 { return "\(minutes)m" }
        return "\(total)s"
    }

    /// `1,234,567`.
    static func count(_ value: Int) -> String {
        let digits = Array(String(abs(value)))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return value < 0 ? "-" + out : out
    }

    /// `2026-11-23 10:00:07 UTC`.
    static func time(_ date: Date?) -> String {
        guard let date else { return "—" }
        let text = Timestamp.format(date)
        return text.prefix(10) + " " + text.dropFirst(11).prefix(8) + " UTC"
    }

    /// A payload as the detail page shows it: pretty JSON when it is JSON, text when it is UTF-8, else base64.
    static func payload(_ data: Data, contentType: String?) -> (text: String, kind: String) {
        let limit = 256 * 1024
        let shown = data.prefix(limit)
        let truncated = data.count > limit ? " (first \(count(limit)) of \(count(data.count)) bytes)" : ""
        guard let text = String(validating: Array(shown), as: UTF8.self) else {
            return (Data(shown.prefix(64 * 1024)).base64EncodedString(), "binary, \(count(data.count)) bytes, base64")
        }
        let trimmed = text.drop { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
        let looksJSON =
            (contentType?.lowercased().contains("json") ?? false) || trimmed.first == "{"
            || trimmed.first == "["
        if looksJSON, truncated.isEmpty, let pretty = PrettyJSON.format(text) {
            return (pretty, "JSON" + truncated)
        }
        return (text, "text, \(count(data.count)) bytes" + truncated)
    }
}

/// Re-indents valid JSON text, keeping its keys' order and its numbers as written.
enum PrettyJSON {
    static func format(_ text: String) -> String? {
        guard (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) != nil else { return nil }
        var out = ""
        var depth = 0
        var inString = false
        var escaped = false
        var pendingOpen = false
        func newline() { out += "\n" + String(repeating: "  ", count: depth) }
        for scalar in text.unicodeScalars {
            if inString {
                out.unicodeScalars.append(scalar)
                if escaped {
                    escaped = false
                } else if scalar == "\\" {
                    escaped = true
                } else if scalar == "\"" {
                    inString = false
                }
                continue
            }
            if scalar == " " || scalar == "\n" || scalar == "\r" || scalar == "\t" { continue }
            if pendingOpen {
                pendingOpen = false
                if scalar == "}" || scalar == "]" {
                    depth -= 1
                    out.unicodeScalars.append(scalar)
                    continue
                }
                newline()
            }
            switch scalar {
            case "\"":
                inString = true
                out.unicodeScalars.append(scalar)
            case "{", "[":
                out.unicodeScalars.append(scalar)
                depth += 1
                pendingOpen = true
            case "}", "]":
                depth -= 1
                newline()
                out.unicodeScalars.append(scalar)
            case ",":
                out += ","
                newline()
            case ":":
                out += ": "
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
