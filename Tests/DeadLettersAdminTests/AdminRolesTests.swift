import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Named tokens with roles: every route against every role.
@Suite("Admin roles: viewer, operator, admin")
struct AdminRolesTests {
    static let tokens = [
        AdminToken(name: "vera", role: .viewer, token: "viewer-token-0001"),
        AdminToken(name: "olga", role: .operator, token: "operator-token-0002"),
        AdminToken(name: "ada", role: .admin, token: "admin-token-0003"),
    ]

    /// Every route: method, path, JSON body, and the role it needs (`nil`: none).
    static func routes(_ id: String) -> [(HTTPRequest.Method, String, String?, AdminRole?)] {
        let dryRun = #"{"filter":{"source":["orders"]},"dryRun":true}"#
        return [
            (.get, "/healthz", nil, nil),
            (.get, "/api/v1/dead-letters", nil, .viewer),
            (.get, "/api/v1/dead-letters/\(id)", nil, .viewer),
            (.get, "/api/v1/stats", nil, .viewer),
            (.get, "/api/v1/timeline", nil, .viewer),
            (.get, "/api/v1/groups", nil, .viewer),
            (.get, "/api/v1/operations", nil, .viewer),
            (.get, "/api/v1/operations/none", nil, .viewer),
            (.get, "/api/v1/instances", nil, .viewer),
            (.get, "/metrics", nil, .viewer),
            (.get, "/", nil, .viewer),
            (.get, "/letters", nil, .viewer),
            (.get, "/letters/\(id)", nil, .viewer),
            (.get, "/groups", nil, .viewer),
            (.get, "/operations", nil, .viewer),
            (.get, "/instances", nil, .viewer),
            (.get, "/confirm?action=redrive&source=orders", nil, .operator),
            (.get, "/confirm?action=park&source=orders", nil, .operator),
            (.get, "/confirm?action=purge&source=orders", nil, .admin),
            (.get, "/confirm?action=delete&id=\(id)", nil, .admin),
            (.post, "/api/v1/redrive", dryRun, .operator),
            (.post, "/api/v1/park", dryRun, .operator),
            (.post, "/api/v1/operations/none/cancel", nil, .operator),
            (.post, "/api/v1/purge", dryRun, .admin),
            (.delete, "/api/v1/dead-letters/\(id)", nil, .admin),
            (.post, "/letters/\(id)/edit", "payload=x", .operator),
            (.post, "/actions/redrive", "source=orders", .operator),
            (.post, "/actions/park", "source=orders", .operator),
            (.post, "/actions/unpark", "source=orders", .operator),
            (.post, "/operations/none/cancel", "", .operator),
            (.post, "/actions/purge", "source=orders", .admin),
            (.post, "/actions/delete", "id=\(id)", .admin),
        ]
    }

    @Test(
        "each route answers each role as its role allows; a refusal is 403 naming the role needed",
        arguments: AdminRole.allCases
    )
    func everyRouteEveryRole(_ role: AdminRole) async throws {
        let harness = try await AdminHarness(tokens: Self.tokens)
        let token = try #require(Self.tokens.first { $0.role == role })
        let id = harness.letters[0].id
        try await harness.run { client in
            for (method, path, body, needed) in Self.routes(id) {
                var headers: HTTPFields = [.authorization: "Bearer \(token.token)"]
                if body != nil {
                    headers[.contentType] =
                        path.hasPrefix("/api/") ? "application/json" : "application/x-www-form-urlencoded"
                }
                let response = try await client.send(method, path, headers: headers, body: body)
                let refused = response.status == .forbidden && response.text.contains(#""code":"roleNeeded""#)
                if let needed, role < needed {
                    #expect(refused, "\(role) \(method) \(path): \(response.status) \(response.text.prefix(200))")
                    #expect(
                        response.text.contains(
                            "this needs the \(needed.rawValue) role; the token '\(token.name)' has the \(role.rawValue) role"
                        ),
                        "\(method) \(path): \(response.text.prefix(200))"
                    )
                } else {
                    #expect(!refused, "\(role) \(method) \(path) is allowed: \(response.text.prefix(200))")
                    #expect(response.status != .unauthorized, "\(method) \(path)")
                }
            }
            let wrong = try await client.send(.get, "/api/v1/stats", headers: [.authorization: "Bearer nope"])
            #expect(wrong.status == .unauthorized)
        }
    }

    @Test("a viewer reads letters without their payloads; an operator reads them whole")
    func viewerSeesNoPayload() async throws {
        let harness = try await AdminHarness(tokens: Self.tokens)
        let letter = harness.letters[0]
        try await harness.run { client in
            let viewer: HTTPFields = [.authorization: "Bearer viewer-token-0001"]
            let shown = try await client.send(.get, "/api/v1/dead-letters/\(letter.id)", headers: viewer).object()
            #expect(shown["payload"] as? String == "")
            #expect(shown["payloadHidden"] as? Bool == true)
            #expect(shown["errorMessage"] as? String == letter.errorMessage, "everything else is there")
            let list = try await client.send(.get, "/api/v1/dead-letters", headers: viewer).object()
            let items = try #require(list["items"] as? [[String: Any]])
            #expect(items.count == harness.letters.count)
            #expect(items.allSatisfy { $0["payload"] as? String == "" && $0["payloadHidden"] as? Bool == true })
            let page = try await client.send(.get, "/letters/\(letter.id)", headers: viewer).text
            #expect(page.contains("Hidden: reading payloads needs the operator role."))
            #expect(!page.contains(#"id="edit-payload""#), "no edit form for a viewer")

            let operatorHeaders: HTTPFields = [.authorization: "Bearer operator-token-0002"]
            let whole = try await client.send(.get, "/api/v1/dead-letters/\(letter.id)", headers: operatorHeaders)
            #expect(try whole.object()["payload"] as? String == letter.payload.base64EncodedString())
            #expect(!whole.text.contains("payloadHidden"))
        }
    }

    @Test("the dashboard shows each role only the actions it may take")
    func dashboardShowsAllowedActions() async throws {
        let harness = try await AdminHarness(tokens: Self.tokens)
        let id = harness.letters[0].id
        try await harness.run { client in
            for token in Self.tokens {
                let headers: HTTPFields = [.authorization: "Bearer \(token.token)"]
                let list = try await client.send(.get, "/letters", headers: headers).text
                let letter = try await client.send(.get, "/letters/\(id)", headers: headers).text
                let groups = try await client.send(.get, "/groups", headers: headers).text
                let operates = token.role >= .operator
                let removes = token.role >= .admin
                #expect(list.contains(#"id="redrive-matching""#) == operates, "\(token.role)")
                #expect(list.contains(#"class="redrive-row""#) == operates, "\(token.role)")
                #expect(list.contains(#"id="select-all""#) == operates, "\(token.role)")
                #expect(list.contains(#"id="purge-matching""#) == removes, "\(token.role)")
                #expect(list.contains(#"class="delete-row""#) == removes, "\(token.role)")
                #expect(letter.contains(#"id="redrive-letter""#) == operates, "\(token.role)")
                #expect(letter.contains(#"id="delete-letter""#) == removes, "\(token.role)")
                #expect(groups.contains("Redrive…") == operates, "\(token.role)")
                #expect(groups.contains("Purge…") == removes, "\(token.role)")
            }
        }
    }

    @Test("the token's name is who acted: in the letter's history and on the operation")
    func actorIsTheTokensName() async throws {
        let harness = try await AdminHarness(tokens: Self.tokens)
        let letter = harness.letters[0]
        try await harness.run { client in
            let response = try await client.postJSON(
                "/api/v1/redrive",
                #"{"filter":{"ids":["\#(letter.id)"]}}"#,
                headers: [.authorization: "Bearer operator-token-0002"]
            )
            #expect(response.status == .ok, "\(response.text)")
            let operation = try #require(try response.object()["operation"] as? [String: Any])
            #expect(operation["actor"] as? String == "olga")
            let stored = try #require(try await harness.store.letter(id: letter.id))
            #expect(stored.history.last?.event == .redriven)
            #expect(stored.history.last?.actor == "olga")
        }
    }

    @Test("tokens are read as 'name role token' lines, and a wrong line is named without its token")
    func parsing() throws {
        let text = "# who may do what\nvera viewer tok-a\n\n  olga operator tok-b ; ada admin tok-c\n"
        #expect(
            try AdminToken.parse(text, source: "tokens.txt") == [
                AdminToken(name: "vera", role: .viewer, token: "tok-a"),
                AdminToken(name: "olga", role: .operator, token: "tok-b"),
                AdminToken(name: "ada", role: .admin, token: "tok-c"),
            ]
        )
        for (bad, expected) in [
            (
                "vera viewer tok-a\nroot superuser s3cr3t",
                "tokens.txt, line 2: unknown role 'superuser'; use viewer, operator or admin"
            ),
            ("vera viewer", "tokens.txt, line 1: expected 'name role token' (3 fields), found 2"),
            ("# nothing\n\n", "tokens.txt holds no token"),
        ] {
            let error = #expect(throws: DeadLetterError.self) { try AdminToken.parse(bad, source: "tokens.txt") }
            #expect(error?.message.hasPrefix(expected) == true, "\(String(describing: error?.message))")
            #expect(error?.message.contains("s3cr3t") == false)
        }
        var configuration = DeadLetterAdminServer.Configuration(host: "0.0.0.0", port: 0)
        configuration.tokens = [
            AdminToken(name: "a", role: .viewer, token: "same-token"),
            AdminToken(name: "b", role: .admin, token: "same-token"),
        ]
        let duplicate = #expect(throws: DeadLetterError.self) { try configuration.validate() }
        #expect(duplicate?.message.contains("'b' has the same token as another name") == true)
        configuration.tokens = [AdminToken(name: "a", role: .viewer, token: "token-a")]
        #expect(throws: Never.self) { try configuration.validate() }
    }
}
