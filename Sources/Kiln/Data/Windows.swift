/// Word windows for a window classifier: for every token of every sentence, the ids of the
/// `2 * halfWidth + 1` words centred on it (`<pad>` beyond the sentence edges) and the class of
/// the centre token's tag.
public struct WordWindows: Sendable, Equatable {
    /// `count * width` token ids, row-major.
    public let ids: [Int32]
    /// `count` class ids.
    public let labels: [Int32]
    /// The number of windows (tokens).
    public let count: Int
    /// Ids per window: `2 * halfWidth + 1`.
    public let width: Int

    /// The windows of every token of `sentences`, in order. Throws when a tag is not in `tags`,
    /// a sentence has not one tag per token, or `halfWidth` is negative.
    public init(sentences: [Sentence], vocabulary: Vocabulary, tags: TagSet, halfWidth: Int = 2) throws {
        guard halfWidth >= 0 else {
            throw KilnError.invalidArgument(op: "WordWindows", message: "half width \(halfWidth) is negative")
        }
        let width = 2 * halfWidth + 1
        var ids: [Int32] = [], labels: [Int32] = []
        let total = sentences.reduce(0) { $0 + $1.tokens.count }
        ids.reserveCapacity(total * width)
        labels.reserveCapacity(total)
        for (s, sentence) in sentences.enumerated() {
            guard sentence.tokens.count == sentence.tags.count else {
                throw KilnError.invalidArgument(op: "WordWindows", message: "sentence \(s) has \(sentence.tokens.count) tokens but \(sentence.tags.count) tags")
            }
            let tokenIDs = sentence.tokens.map(vocabulary.id(for:))
            for centre in tokenIDs.indices {
                for j in (centre - halfWidth)...(centre + halfWidth) {
                    ids.append(tokenIDs.indices.contains(j) ? tokenIDs[j] : Vocabulary.padID)
                }
                labels.append(try tags.id(for: sentence.tags[centre]))
            }
        }
        self.ids = ids
        self.labels = labels
        self.count = labels.count
        self.width = width
    }
}
