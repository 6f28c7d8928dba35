/// "Did you mean …?": the known names closest to a mistyped one.
enum Suggestion {
    /// The names among `names` that `typed` is probably a typo of: those at an edit distance of 1 (2 for names
    /// of 6 or more characters; a swap of two neighbours counts as 1), else those it is a prefix of; ignoring
    /// case. Closest first; empty when none is close.
    static func closest(to typed: String, among names: [String]) -> [String] {
        let typed = typed.lowercased()
        guard !typed.isEmpty else { return [] }
        let limit = typed.count >= 6 ? 2 : 1
        let near = names.map { ($0, Self.distance(typed, $0.lowercased())) }.filter { $0.1 <= limit }
        if !near.isEmpty {
            return near.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
        }
        guard typed.count >= 2 else { return [] }
        return names.filter { $0.lowercased().hasPrefix(typed) }.sorted()
    }

    /// `" did you mean 'a' or 'b'?"`-style text for `names`, or `nil` when there are none.
    static func phrase(_ names: [String]) -> String? {
        guard !names.isEmpty else { return nil }
        let quoted = names.prefix(3).map { "'\($0)'" }
        let list = quoted.count == 1 ? quoted[0] : quoted.dropLast().joined(separator: ", ") + " or " + quoted.last!
        return "did you mean \(list)?"
    }

    /// The optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var best = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    best = min(best, table[i - 2][j - 2] + 1)
                }
                table[i][j] = best
            }
        }
        return table[a.count][b.count]
    }
}
