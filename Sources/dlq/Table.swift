/// An aligned table for people: a header row, then rows, columns separated by two spaces.
///
/// Widths ignore ANSI colour codes, so coloured cells stay aligned. The last column is not padded.
struct Table {
    enum Alignment {
        case left, right
    }

    struct Column {
        var title: String
        var alignment: Alignment = .left
        /// Cells longer than this are cut with an ellipsis; `nil` for no limit.
        var maxWidth: Int?
    }

    var columns: [Column]
    var rows: [[String]] = []
    var style: Style = .stdout

    init(_ columns: [Column], style: Style = .stdout) {
        self.columns = columns
        self.style = style
    }

    mutating func append(_ row: [String]) {
        self.rows.append(row)
    }

    /// The table as text, one line per row, each ending with a line break.
    func render() -> String {
        let cells: [[String]] = self.rows.map { row in
            row.enumerated().map { index, cell in
                guard index < self.columns.count, let max = self.columns[index].maxWidth,
                    cell.visibleWidth > max
                else { return cell }
                return cell.truncated(to: max)
            }
        }
        var widths = self.columns.map { $0.title.visibleWidth }
        for row in cells {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = Swift.max(widths[index], cell.visibleWidth)
            }
        }
        func line(_ row: [String], header: Bool) -> String {
            var parts: [String] = []
            for (index, cell) in row.enumerated() {
                let width = index < widths.count ? widths[index] : cell.visibleWidth
                let pad = String(repeating: " ", count: Swift.max(0, width - cell.visibleWidth))
                let alignment = index < self.columns.count ? self.columns[index].alignment : .left
                let isLast = index == row.count - 1
                switch alignment {
                case .left: parts.append(isLast ? cell : cell + pad)
                case .right: parts.append(pad + cell)
                }
            }
            let text = parts.joined(separator: "  ")
            return header ? self.style.bold(text) : text
        }
        var output = line(self.columns.map(\.title), header: true) + "\n"
        for row in cells { output += line(row, header: false) + "\n" }
        return output
    }
}
