import DeadLetters
import DeadLettersAdmin
import DeadLettersTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Admin server security over a real socket")
struct AdminSecurityTests {
    @Test(
        "A non-loopback address without a token is refused, with a clear error",
        arguments: ["0.0.0.0", "::", "10.0.0.5", "example.com"]
    )
    func refusesOpenBind(host: String) async throws {
        let harness = try await AdminHarness(seed: false)
        let error = #expect(throws: DeadLetterError.self) {
            _ = try DeadLetterAdminServer(queue: harness.queue, configuration: .init(host: host, port: 0))
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.field == "token")
        #expect(error?.message.contains("without a token") == true)
        // With a token it is allowed, and loopback names need none.
        _ = try DeadLetterAdminServer(queue: harness.queue, configuration: .init(host: host, port: 0, token: "t"))
        for loopback in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] {
            _ = try DeadLetterAdminServer(queue: harness.queue, configuration: .init(host: loopback, port: 0))
        }
    }

    @Test("Configuration values are checked")
    func configuration() async throws {
        let harness = try await AdminHarness(seed: false)
        for configuration in [
            DeadLetterAdminServer.Configuration(port: 70_000),
            DeadLetterAdminServer.Configuration(token: ""),
            DeadLetterAdminServer.Configuration(token: "with space"),
            DeadLetterAdminServer.Configuration(maximumBodySize: 0),
        ] {
            #expect(throws: DeadLetterError.self) {
                _ = try DeadLetterAdminServer(queue: harness.queue, configuration: configuration)
            }
        }
    }

    @Test("With a token, every route but /healthz needs it: 401 without, 401 when wrong, 200 with")
    func bearerToken() async throws {
        let harness = try await AdminHarness(token: AdminHarness.token)
        try await harness.run { client in
            #expect(try await client.send(.get, "/healthz").status == .ok)
            for path in ["/api/v1/dead-letters", "/api/v1/stats", "/api/v1/groups", "/metrics"] {
                let none = try await client.send(.get, path)
                #expect(none.status == .unauthorized, "\(path)")
                #expect(try none.errorCode() == "unauthorized")
                #expect(none.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                let wrong = try await client.send(
                    .get,
                    path,
                    headers: [.authorization: "Bearer \(AdminHarness.token)x"]
                )
                #expect(wrong.status == .unauthorized, "\(path)")
                #expect(none.text.contains("needs a token"), "no token: what to send")
                #expect(wrong.text.contains("not this server's token"), "a wrong token is told apart from none")
                #expect(wrong.headers[.wwwAuthenticate]?.contains(#"error="invalid_token""#) == true)
                let basic = try await client.send(.get, path, headers: [.authorization: "Basic \(AdminHarness.token)"])
                #expect(basic.status == .unauthorized, "\(path)")
                #expect(basic.text.contains("needs a token"), "another scheme is told what to send")
                #expect(try await client.send(.get, path, headers: bearer).status == .ok, "\(path)")
            }
            let redrive = try await client.postJSON("/api/v1/redrive", "{}")
            #expect(redrive.status == .unauthorized)
            #expect(try await harness.store.count(DeadLetterFilter(statuses: [.retrying])) == 3)
            let delete = try await client.send(.delete, "/api/v1/dead-letters/\(harness.letters[0].id)")
            #expect(delete.status == .unauthorized)
            #expect(try await harness.store.letter(id: harness.letters[0].id) != nil)
        }
    }

    @Test("The dashboard sends people to sign in; a wrong token is refused; the cookie is HttpOnly, SameSite=Strict")
    func dashboardSignIn() async throws {
        let harness = try await AdminHarness(token: AdminHarness.token)
        try await harness.run { client in
            let redirect = try await client.send(.get, "/letters?source=orders")
            #expect(redirect.status == .seeOther)
            #expect(redirect.headers[.location] == "/signin?next=%2Fletters%3Fsource%3Dorders")

            let page = try await client.send(.get, "/signin?next=%2Fletters")
            #expect(page.status == .ok)
            let csrf = try formToken(in: page.text)

            let wrong = try await client.postForm("/signin", "csrf=\(csrf)&token=nope&next=%2Fletters")
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            #expect(wrong.text.contains("That token is not right"))

            let noForm = try await client.postForm("/signin", "token=\(AdminHarness.token)")
            #expect(noForm.status == .forbidden)

            let signedIn = try await client.postForm(
                "/signin",
                "csrf=\(csrf)&token=\(AdminHarness.token)&next=%2Fletters"
            )
            #expect(signedIn.status == .seeOther)
            #expect(signedIn.headers[.location] == "/letters")
            let cookie = try #require(signedIn.headers[.setCookie])
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))
            let session = try #require(cookie.split(separator: ";").first.map(String.init))
            #expect(session.hasPrefix("dlq_session="))
            #expect(!session.contains(AdminHarness.token))

            let letters = try await client.send(.get, "/letters", headers: [.cookie: session])
            #expect(letters.status == .ok)
            #expect(letters.text.contains("letters match"))
            // The cookie also opens the API (the dashboard's own links), a made-up one does not.
            #expect(try await client.send(.get, "/api/v1/stats", headers: [.cookie: session]).status == .ok)
            #expect(
                try await client.send(.get, "/api/v1/stats", headers: [.cookie: "dlq_session=forged"]).status
                    == .unauthorized
            )

            // Open redirects are not followed.
            let away = try await client.postForm(
                "/signin",
                "csrf=\(csrf)&token=\(AdminHarness.token)&next=%2F%2Fevil.example"
            )
            #expect(away.headers[.location] == "/")

            let out = try await client.postForm("/signout", "csrf=\(csrf)", headers: [.cookie: session])
            #expect(out.status == .seeOther)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            let after = try await client.send(.get, "/letters", headers: [.cookie: session])
            #expect(after.status == .seeOther)
        }
    }

    @Test("Cross-site state changes are refused with 403 (Origin, Sec-Fetch-Site, missing form token)")
    func crossSite() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let evil = try await client.postJSON("/api/v1/redrive", "{}", headers: [.origin: "http://evil.example"])
            #expect(evil.status == .forbidden)
            #expect(try evil.errorCode() == "forbidden")
            let nullOrigin = try await client.postJSON("/api/v1/redrive", "{}", headers: [.origin: "null"])
            #expect(nullOrigin.status == .forbidden)
            let site = try await client.send(
                .delete,
                "/api/v1/dead-letters/\(harness.letters[0].id)",
                headers: [HTTPField.Name("Sec-Fetch-Site")!: "cross-site"]
            )
            #expect(site.status == .forbidden)
            #expect(try await harness.store.letter(id: harness.letters[0].id) != nil)
            // A text/plain body (what a cross-site form can send) is refused.
            let plain = try await client.send(
                .post,
                "/api/v1/purge",
                headers: [.contentType: "text/plain"],
                body: #"{"all":true}"#
            )
            #expect(plain.status == .unsupportedMediaType)
            // A dashboard form without the page's token is refused.
            let form = try await client.postForm("/actions/purge", "all=1")
            #expect(form.status == .forbidden)
            #expect(try await harness.store.count(DeadLetterFilter()) == 12)
            // The same origin is fine.
            let same = try await client.postJSON(
                "/api/v1/redrive",
                #"{"dryRun":true}"#,
                headers: [.origin: "http://localhost", HTTPField.Name("Sec-Fetch-Site")!: "same-origin"]
            )
            #expect(same.status == .ok)
        }
    }

    @Test("Bodies over the limit are 413, by Content-Length or by the bytes sent")
    func oversizedBodies() async throws {
        let harness = try await AdminHarness(maximumBodySize: 1024)
        try await harness.run { client in
            let search = String(repeating: "x", count: 900)
            let big =
                #"{"filter":{"search":"\#(search)"},"dryRun":true,"limit":1}"# + String(repeating: " ", count: 200)
            let response = try await client.postJSON("/api/v1/purge", big)
            #expect(response.status == .contentTooLarge)
            #expect(try response.errorCode() == "bodyTooLarge")
            let form = try await client.postForm("/actions/redrive", String(repeating: "a=b&", count: 400))
            #expect(form.status == .contentTooLarge)
            let fits = try await client.postJSON("/api/v1/redrive", #"{"dryRun":true}"#)
            #expect(fits.status == .ok)
        }
    }

    @Test("Error answers never repeat a token or a payload")
    func errorsStayQuiet() async throws {
        let harness = try await AdminHarness(token: AdminHarness.token)
        try await harness.run { client in
            let wrong = try await client.send(
                .get,
                "/api/v1/stats",
                headers: [.authorization: "Bearer guess-\(AdminHarness.token)"]
            )
            #expect(!wrong.text.contains(AdminHarness.token))
            let missing = try await client.send(.get, "/api/v1/dead-letters/%3Cscript%3E", headers: bearer)
            #expect(missing.status == .notFound)
            #expect(!missing.text.contains("<script>"))
        }
    }
}

@Suite("DNS rebinding")
struct AdminHostTests {
    @Test("Without a token, a foreign Host is refused with 403; loopback names and a token server are fine")
    func foreignHost() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let port = try #require(client.port)
            let foreign = try rawHTTP(
                port: port,
                "GET /api/v1/stats HTTP/1.1\r\nHost: rebind.evil.example:\(port)\r\nConnection: close\r\n\r\n"
            )
            #expect(foreign.hasPrefix("HTTP/1.1 403"))
            #expect(foreign.contains("not a loopback name"))
            for host in ["localhost:\(port)", "127.0.0.1:\(port)", "[::1]:\(port)"] {
                let local = try rawHTTP(
                    port: port,
                    "GET /api/v1/stats HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n"
                )
                #expect(local.hasPrefix("HTTP/1.1 200"), "\(host)")
            }
        }
        let withToken = try await AdminHarness(token: AdminHarness.token)
        try await withToken.run { client in
            let port = try #require(client.port)
            let named = try rawHTTP(
                port: port,
                "GET /api/v1/stats HTTP/1.1\r\nHost: dlq.internal.example\r\n"
                    + "Authorization: Bearer \(AdminHarness.token)\r\nConnection: close\r\n\r\n"
            )
            #expect(named.hasPrefix("HTTP/1.1 200"))
        }
    }
}
