import DeadLettersTesting
import HTTPTypes
import Testing

@Suite("Admin dashboard: the overview's words")
struct AdminOverviewWordsTests {
    @Test("The Parked card says how letters get there: by hand, or after failed replays or redrives")
    func parkedCard() async throws {
        let harness = try await AdminHarness()
        try await harness.run { client in
            let html = try await client.send(.get, "/").text
            #expect(
                html.contains(
                    #"id="count-parked">2</div><div class="hint">set aside by hand or after failed replays or redrives</div>"#
                )
            )
            #expect(!html.contains("failed after redrives"))
        }
    }
}
