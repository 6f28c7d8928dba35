import Foundation
import Testing

extension DLQCommandSuites {
    @Suite("dlq serve --tokens-file and DLQ_TOKENS")
    struct ServeTokensCommandTests {
        @Test("wrong token files and values are refused in one line naming the file and line, never the token")
        func wrongTokens() throws {
            let space = try Workspace()
            defer { space.remove() }
            space.write("tokens", "vera viewer tok-vera-1\nroot superuser s3cr3t-value\n")
            space.write("empty", "# nobody yet\n")
            let cases: [([String], [String: String], String)] = [
                (
                    ["--tokens-file", space.path("tokens")], [:],
                    "line 2: unknown role 'superuser'; use viewer, operator or admin"
                ),
                (
                    ["--tokens-file", space.path("missing")], [:],
                    "--tokens-file \(space.path("missing")): cannot be read"
                ),
                (["--tokens-file", space.path("empty")], [:], "holds no token; write one 'name role token' per line"),
                ([], ["DLQ_TOKENS": "vera viewer t1; olga operator"], "DLQ_TOKENS, line 2: expected 'name role token'"),
                ([], ["DLQ_TOKENS": "a viewer same-1;b admin same-1"], "'b' has the same token as another name"),
            ]
            for (arguments, environment, expected) in cases {
                let run = try space.run(["serve", "--port", "0"] + arguments, environment: environment)
                #expect(run.status == 2, "\(arguments) \(environment): \(run.status) \(run.stderr)")
                #expect(run.stderr.contains(expected), "\(arguments) \(environment): \(run.stderr)")
                #expect(run.stderr.split(separator: "\n").count == 1, "one line: \(run.stderr)")
                #expect(!run.stderr.contains("s3cr3t"), "no token in the message")
            }
        }
    }
}
