extension DeadLetterStore {
    public func page(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        if sort == .id { return try await self.page(filter, after: cursor, limit: limit) }
        return try await self.sortedByScan(filter, sort, after: cursor, limit: limit)
    }

    public func pageWithoutPayloads(
        _ filter: DeadLetterFilter,
        sortedBy sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        if sort == .id { return try await self.pageWithoutPayloads(filter, after: cursor, limit: limit) }
        var page = try await self.page(filter, sortedBy: sort, after: cursor, limit: limit)
        page.removePayloads()
        return page
    }

    /// A sorted page from every selected letter, read page by page in id order; only the page is kept.
    private func sortedByScan(
        _ filter: DeadLetterFilter,
        _ sort: DeadLetterSort,
        after cursor: String?,
        limit: Int
    ) async throws -> DeadLetterPage {
        let limit = Swift.max(1, limit)
        let position = try cursor.map { try sort.position($0) }
        var kept: [DeadLetter] = []
        var idCursor: String?
        repeat {
            let page = try await self.page(filter, after: idCursor, limit: 1000)
            for letter in page.letters {
                if let position, !Self.follows(letter, position, sort) { continue }
                kept.append(letter)
            }
            if kept.count > 4 * (limit + 1) {
                kept.sort { sort.orders($0, before: $1) }
                kept.removeLast(kept.count - (limit + 1))
            }
            idCursor = page.nextCursor
        } while idCursor != nil
        kept.sort { sort.orders($0, before: $1) }
        guard kept.count > limit else { return DeadLetterPage(letters: kept, nextCursor: nil) }
        kept.removeLast(kept.count - limit)
        return DeadLetterPage(letters: kept, nextCursor: kept.last.map(sort.cursor(after:)))
    }

    /// Whether `letter` comes after the cursor's position in `sort`.
    private static func follows(
        _ letter: DeadLetter,
        _ position: (value: DeadLetterSort.SortValue, id: String),
        _ sort: DeadLetterSort
    ) -> Bool {
        let value = sort.value(of: letter)
        let ascendingAfter: Bool
        if value == position.value {
            if letter.id == position.id { return false }
            ascendingAfter = position.id.utf8.lexicographicallyPrecedes(letter.id.utf8)
        } else {
            ascendingAfter = position.value.precedes(value)
        }
        return sort.isDescending ? !ascendingAfter : ascendingAfter
    }
}
