import DeadLetters

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON of the API's answers that are not letters: the same documents as `dlq --json`, escaped for HTML
/// too (`<`, `>`, `&`), since a browser may be shown them.
enum AdminJSON {
    /// The `stats` object (see ``DeadLetterJSON/summary(_:escapingHTML:)``).
    static func summary(_ summary: DeadLetterSummary) -> String {
        DeadLetterJSON.summary(summary, escapingHTML: true)
    }

    /// An array of groups (see ``DeadLetterJSON/group(_:escapingHTML:)``).
    static func groups(_ groups: [DeadLetterGroup]) -> String {
        "[" + groups.map { DeadLetterJSON.group($0, escapingHTML: true) }.joined(separator: ",") + "]"
    }
}
