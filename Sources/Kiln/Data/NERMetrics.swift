/// Named-entity scores as the CoNLL evaluation script (conlleval) computes them: over entity
/// spans, where a predicted span counts only if its type and both boundaries match a gold span
/// exactly; "O" tokens are not scored. Tags may be IOB1, IOB2 (B-/I-) or IOBES, read the way
/// conlleval reads them (an I- after O or after another type starts a new span).
public struct NERMetrics: Sendable, Equatable {
    /// Counts and scores for one entity type, or for all together.
    public struct Score: Sendable, Equatable {
        /// Predicted spans that match a gold span exactly.
        public let correct: Int
        /// Predicted spans.
        public let predicted: Int
        /// Gold (reference) spans.
        public let gold: Int

        /// Scores from span counts.
        public init(correct: Int, predicted: Int, gold: Int) {
            self.correct = correct
            self.predicted = predicted
            self.gold = gold
        }

        /// correct / predicted; 0 when nothing was predicted.
        public var precision: Double { predicted == 0 ? 0 : Double(correct) / Double(predicted) }
        /// correct / gold; 0 when there is no gold span.
        public var recall: Double { gold == 0 ? 0 : Double(correct) / Double(gold) }
        /// The harmonic mean of precision and recall; 0 when both are 0.
        public var f1: Double {
            precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
        }
    }

    /// Scores per entity type ("PER", "LOC", ...), for every type in gold or predictions.
    public let perType: [String: Score]
    /// Micro-averaged over all spans of all types.
    public let overall: Score

    /// An entity span: type and token range within sentence `sentence`.
    public struct Span: Hashable, Sendable {
        /// The index of the sentence in the input.
        public let sentence: Int
        /// The entity type: the tag without its B-/I- prefix.
        public let type: String
        /// The token indices of the span.
        public let range: Range<Int>
    }

    /// Scores `predicted` against `gold`, one tag sequence per sentence; throws when the
    /// numbers of sentences or of tags in a sentence differ.
    public init(gold: [[String]], predicted: [[String]]) throws {
        guard gold.count == predicted.count else {
            throw KilnError.invalidArgument(op: "NERMetrics", message: "\(gold.count) gold sentences but \(predicted.count) predicted")
        }
        var goldSpans = Set<Span>(), predictedSpans = Set<Span>()
        for (i, (g, p)) in zip(gold, predicted).enumerated() {
            guard g.count == p.count else {
                throw KilnError.invalidArgument(op: "NERMetrics", message: "sentence \(i): \(g.count) gold tags but \(p.count) predicted")
            }
            goldSpans.formUnion(Self.spans(g, sentence: i))
            predictedSpans.formUnion(Self.spans(p, sentence: i))
        }
        let correctSpans = goldSpans.intersection(predictedSpans)
        func count(_ spans: Set<Span>) -> [String: Int] {
            spans.reduce(into: [:]) { $0[$1.type, default: 0] += 1 }
        }
        let correct = count(correctSpans), predictedCount = count(predictedSpans), goldCount = count(goldSpans)
        var perType: [String: Score] = [:]
        for type in Set(goldCount.keys).union(predictedCount.keys) {
            perType[type] = Score(correct: correct[type] ?? 0, predicted: predictedCount[type] ?? 0, gold: goldCount[type] ?? 0)
        }
        self.perType = perType
        overall = Score(correct: correctSpans.count, predicted: predictedSpans.count, gold: goldSpans.count)
    }

    /// Splits a tag into its prefix ("B", "I", "E", "S" or "O") and entity type ("" for O).
    static func split(_ tag: String) -> (prefix: String, type: String) {
        if tag == "O" { return ("O", "") }
        if let dash = tag.firstIndex(of: "-") {
            return (String(tag[..<dash]), String(tag[tag.index(after: dash)...]))
        }
        return ("I", tag)  // a bare type, as some IOB1 files write it
    }

    /// The entity spans of one sentence's tags, with conlleval's rules for where chunks end
    /// and start.
    public static func spans(_ tags: [String], sentence: Int = 0) -> [Span] {
        var result: [Span] = []
        var start: Int?
        var previous = (prefix: "O", type: "")
        for (i, tag) in (tags + ["O"]).enumerated() {
            let current = split(tag)
            if let s = start, chunkEnds(previous, current) {
                result.append(Span(sentence: sentence, type: previous.type, range: s..<i))
                start = nil
            }
            if chunkStarts(previous, current) { start = i }
            previous = current
        }
        return result
    }

    static func chunkEnds(_ p: (prefix: String, type: String), _ c: (prefix: String, type: String)) -> Bool {
        if p.prefix == "O" { return false }
        if p.prefix == "E" || p.prefix == "S" { return true }
        if ["B", "S", "O"].contains(c.prefix) { return true }
        return p.type != c.type
    }

    static func chunkStarts(_ p: (prefix: String, type: String), _ c: (prefix: String, type: String)) -> Bool {
        if c.prefix == "O" { return false }
        if c.prefix == "B" || c.prefix == "S" { return true }
        if ["E", "S", "O"].contains(p.prefix) { return true }
        return p.type != c.type
    }
}
