/// Token ids for the word-window model: `<pad>` is 0 (sentence edges), `<unk>` is 1 (words not
/// in the vocabulary), then the words of the training data, most frequent first. Words are case
/// folded (lowercased) on build and on lookup alike, as the uncased GloVe vectors expect.
public struct Vocabulary: Sendable, Equatable {
    /// The token that fills windows beyond a sentence's edges; its embedding row stays zero.
    public static let padToken = "<pad>"
    /// The token every word outside the vocabulary maps to.
    public static let unknownToken = "<unk>"
    /// The id of `padToken`.
    public static let padID: Int32 = 0
    /// The id of `unknownToken`.
    public static let unknownID: Int32 = 1

    /// The token of each id: `tokens[Int(id)]`.
    public let tokens: [String]
    private let ids: [String: Int32]

    /// The folded form under which a word is stored and looked up.
    public static func fold(_ word: String) -> String { word.lowercased() }

    /// The vocabulary of `words` (already distinct or not; folded here), after the two
    /// special tokens, in the given order.
    public init(words: [String]) {
        var tokens = [Self.padToken, Self.unknownToken]
        var ids = [Self.padToken: Self.padID, Self.unknownToken: Self.unknownID]
        for word in words {
            let folded = Self.fold(word)
            if ids[folded] == nil {
                ids[folded] = Int32(tokens.count)
                tokens.append(folded)
            }
        }
        self.tokens = tokens
        self.ids = ids
    }

    /// The words of `sentences` that occur at least `minCount` times (after folding), most
    /// frequent first, ties in alphabetical order so the ids never depend on hashing.
    public init(sentences: [Sentence], minCount: Int = 1) {
        var counts: [String: Int] = [:]
        for sentence in sentences {
            for token in sentence.tokens { counts[Self.fold(token), default: 0] += 1 }
        }
        let kept = counts.filter { $0.value >= minCount }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        self.init(words: kept.map(\.key))
    }

    /// The number of ids, special tokens included.
    public var count: Int { tokens.count }

    /// The id of `word`, or `unknownID` when it is not in the vocabulary.
    public func id(for word: String) -> Int32 { ids[Self.fold(word)] ?? Self.unknownID }

    /// The id of `word`, or nil when it is not in the vocabulary.
    public func knownID(for word: String) -> Int32? { ids[Self.fold(word)] }
}

/// The IOB tags of a task as class ids: "O" is 0, the others follow in sorted order, so the
/// numbering depends only on which tags occur.
public struct TagSet: Sendable, Equatable {
    /// The tag of tokens outside any entity.
    public static let outside = "O"

    /// The tag of each class id.
    public let tags: [String]
    private let ids: [String: Int32]

    /// The tag set of `tags` ("O" is always included, first).
    public init(tags: some Sequence<String>) {
        let others = Set(tags).subtracting([Self.outside]).sorted()
        self.tags = [Self.outside] + others
        var ids: [String: Int32] = [:]
        for (i, t) in self.tags.enumerated() { ids[t] = Int32(i) }
        self.ids = ids
    }

    /// The tag set of the tags occurring in `sentences`.
    public init(sentences: [Sentence]) {
        self.init(tags: sentences.lazy.flatMap(\.tags))
    }

    /// The number of classes.
    public var count: Int { tags.count }

    /// The class id of `tag`; throws for a tag not in the set (one seen only in test data, say).
    public func id(for tag: String) throws -> Int32 {
        guard let id = ids[tag] else {
            throw KilnError.invalidValue(op: "TagSet", message: "unknown tag \"\(tag)\"; the tag set holds \(tags)")
        }
        return id
    }

    /// The tag of class id `id`; throws when out of range.
    public func tag(for id: Int32) throws -> String {
        guard id >= 0, Int(id) < tags.count else {
            throw KilnError.invalidValue(op: "TagSet", message: "class id \(id) is outside 0..<\(tags.count)")
        }
        return tags[Int(id)]
    }
}
