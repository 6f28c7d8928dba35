import DeadLetters
public import HTTPTypes
public import Hummingbird

/// An error of the admin API, answered as JSON `{"error":{"code":"…","message":"…"}}` with its status.
///
/// Messages name what was wrong (the parameter, the field, the id) and never repeat payloads or secrets.
public struct DeadLetterAdminError: HTTPResponseError, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status of the answer.
    public var status: HTTPResponse.Status
    /// A short machine-readable code, such as `invalidParameter` or `notFound`.
    public var code: String
    /// A sentence saying what went wrong.
    public var message: String
    /// Extra header fields of the answer, such as `WWW-Authenticate` or `Allow`.
    public var headers: HTTPFields
    /// The query parameter that was wrong, for the dashboard to show the error beside its field.
    var parameter: String?

    /// Creates an error.
    /// - Parameters:
    ///   - status: the HTTP status.
    ///   - code: the machine-readable code.
    ///   - message: what went wrong.
    ///   - headers: extra header fields; none by default.
    public init(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.parameter = nil
    }

    /// `"<status> <code>: <message>"`.
    public var description: String { "\(self.status.code) \(self.code): \(self.message)" }

    /// The JSON answer.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        var body = #"{"error":{"code":"#
        body += JSONText.string(self.code)
        body += #","message":"#
        body += JSONText.string(self.message)
        body += "}}\n"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

extension DeadLetterAdminError {
    static func badRequest(_ message: String, code: String = "invalidRequest") -> Self {
        Self(status: .badRequest, code: code, message: message)
    }

    static func invalidParameter(_ name: String, _ problem: String) -> Self {
        var error = Self(status: .badRequest, code: "invalidParameter", message: "parameter '\(name)': \(problem)")
        error.parameter = name
        return error
    }

    static func invalidField(_ name: String, _ problem: String) -> Self {
        Self(status: .badRequest, code: "invalidBody", message: "field '\(name)': \(problem)")
    }

    /// 403: the token's role is below the one the request needs; says which.
    static func roleNeeded(_ needed: AdminRole, identity: AdminIdentity) -> Self {
        Self(
            status: .forbidden,
            code: "roleNeeded",
            message: "this needs the \(needed.rawValue) role; the token '\(identity.name)' has the "
                + "\(identity.role.rawValue) role"
        )
    }

    static func notFound(_ message: String) -> Self {
        Self(status: .notFound, code: "notFound", message: message)
    }

    static let unauthorized = Self(
        status: .unauthorized,
        code: "unauthorized",
        message: "this server needs a token: send 'Authorization: Bearer <token>'",
        headers: [.wwwAuthenticate: #"Bearer realm="dlq""#]
    )

    /// An `Authorization` header that is not this server's token (RFC 6750's `invalid_token`).
    static let wrongToken = Self(
        status: .unauthorized,
        code: "unauthorized",
        message: "the token sent is not this server's token",
        headers: [.wwwAuthenticate: #"Bearer realm="dlq", error="invalid_token""#]
    )

    static func forbidden(_ message: String) -> Self {
        Self(status: .forbidden, code: "forbidden", message: message)
    }

    static func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) -> Self {
        Self(
            status: .methodNotAllowed,
            code: "methodNotAllowed",
            message: "\(method.rawValue) is not allowed here; use \(allowed.map(\.rawValue).joined(separator: " or "))",
            headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")]
        )
    }

    static func tooLarge(_ limit: Int) -> Self {
        Self(
            status: .contentTooLarge,
            code: "bodyTooLarge",
            message: "the request body is larger than the limit of \(limit) bytes"
        )
    }

    /// A read that did not finish within the server's deadline: the store is slow or unreachable.
    static func timeout(_ limit: Duration) -> Self {
        let (seconds, attoseconds) = limit.components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        let text = value == value.rounded() ? "\(Int(value))" : "\(value)"
        return Self(
            status: .serviceUnavailable,
            code: "timeout",
            message: "the store did not answer within \(text) s; try again later"
        )
    }

    static let internalError = Self(
        status: .internalServerError,
        code: "internalError",
        message: "the server could not complete the request; see its log"
    )
}

/// JSON string literals in the API's answers: escaped as the stored format escapes, and for HTML too.
enum JSONText {
    static func string(_ string: String) -> String {
        DeadLetterJSON.quoted(string, escapingHTML: true)
    }

    static func stringOrNull(_ string: String?) -> String {
        string.map(Self.string) ?? "null"
    }
}
