/// A transformer that tags every token of a sentence (named entities): word vectors (trainable,
/// optionally GloVe's) projected to the model's width, positions (learned or sinusoidal), transformer blocks
/// whose attention skips padding, a final layer norm and a tag for every position.
public final class SentenceTagger: Module {
    public let words: Embedding
    /// From the word vectors' dimension to the width (absent when they are equal).
    public let project: Linear?
    /// The learned position table; absent with sinusoidal positions.
    public let positions: Parameter?
    /// The sinusoidal position table, a constant kept with the model's state.
    public let sinusoids: StateBuffer?
    public let blocks: [TransformerBlock]
    public let norm: LayerNorm
    public let classify: Linear
    /// Positions per (padded) sentence.
    public let maxLength: Int

    public init(vocabulary: Int, dim: Int, width: Int, layers: Int, heads: Int, tags: Int, maxLength: Int,
                positions encoding: PositionEncoding = .learned, dtype: DType = .float32) throws {
        guard vocabulary >= 1, dim >= 1, width >= 1, layers >= 1, tags >= 1, maxLength >= 1 else {
            throw KilnError.invalidArgument(op: "SentenceTagger", message: "vocabulary \(vocabulary), dim \(dim), width \(width), layers \(layers), tags \(tags) and length \(maxLength) must all be at least 1")
        }
        let std = Initializer.normal(0.02)
        words = Embedding(vocabulary: vocabulary, dim: dim, dtype: dtype, name: "words")
        project = dim == width ? nil : Linear(dim, width, dtype: dtype, weightInit: std, biasInit: .zeros)
        switch encoding {
        case .learned: (positions, sinusoids) = (Parameter([maxLength, width], dtype: dtype, initializer: std), nil)
        case .sinusoidal:
            (positions, sinusoids) = (nil, try StateBuffer([maxLength, width], values: PositionEncoding.sinusoids(positions: maxLength, width: width),
                                                           dtype: dtype))
        }
        blocks = try (0..<layers).map { _ in
            try TransformerBlock(width: width, heads: heads, dtype: dtype, weightInit: std,
                                 residualInit: .normal(0.02 / Double(2 * layers).squareRoot()))
        }
        norm = try LayerNorm(width, dtype: dtype)
        classify = Linear(width, tags, dtype: dtype, weightInit: std, biasInit: .zeros)
        self.maxLength = maxLength
    }

    /// Tag logits `[B, T, tags]` for int32 word ids `[B, T]` and a padding mask `[B, T]` (1 at a
    /// word, 0 at padding), T the padded length.
    public func callAsFunction(_ ids: Tensor, mask: Tensor) throws -> Tensor {
        guard ids.shape.rank == 2, ids.dtype == .int32, ids.shape[1] == maxLength else {
            throw KilnError.shapeMismatch(op: "SentenceTagger", message: "ids must be int32 [batch, \(maxLength)], got \(ids.dtype) \(ids.shape)")
        }
        var x = try words(ids)
        if let project { x = try project(x) }
        x = try x + (positions?.tensor(in: ids.graph) ?? sinusoids!.tensor(in: ids.graph))
        for block in blocks { x = try block(x, padding: mask) }
        return try classify(norm(x))
    }
}

/// Sentences as a tagger's examples: word ids `tokens` [n, maxLength] (padding id 0), `mask`
/// [n, maxLength] (1 at a word), `tags` [n, maxLength] (the tag ids; `ignoreIndex` at padding,
/// which the loss skips).
public struct TaggedSentences: Dataset {
    public static let ignoreIndex: Int32 = -100
    public let sentences: [Sentence]
    public let vocabulary: Vocabulary
    public let tags: TagSet
    public let maxLength: Int
    public var count: Int { sentences.count }

    /// A sentence longer than `maxLength` is an error naming it.
    public init(_ sentences: [Sentence], vocabulary: Vocabulary, tags: TagSet, maxLength: Int, source: String) throws {
        if let i = sentences.firstIndex(where: { $0.tokens.count > maxLength }) {
            throw KilnError.invalidArgument(op: source, message: "sentence \(i + 1) has \(sentences[i].tokens.count) tokens, longer than the tagger's \(maxLength) positions")
        }
        self.sentences = sentences
        self.vocabulary = vocabulary
        self.tags = tags
        self.maxLength = maxLength
    }

    public func batch(_ indices: [Int]) throws -> [String: HostTensor] {
        let n = indices.count * maxLength
        var ids = [Int32](repeating: Vocabulary.padID, count: n), labels = [Int32](repeating: Self.ignoreIndex, count: n)
        var mask = [Float](repeating: 0, count: n)
        for (row, i) in indices.enumerated() {
            let s = sentences[i]
            for (t, (word, tag)) in zip(s.tokens, s.tags).enumerated() {
                ids[row * maxLength + t] = vocabulary.id(for: word)
                labels[row * maxLength + t] = try tags.id(for: tag)
                mask[row * maxLength + t] = 1
            }
        }
        let shape: Shape = [indices.count, maxLength]
        return ["tokens": try HostTensor(ids, shape: shape), "mask": try HostTensor(mask, shape: shape), "tags": try HostTensor(labels, shape: shape)]
    }

    /// Every sentence's predicted tags from a trained tagger, in batches of `batchSize`, and
    /// the entity scores against the gold tags.
    public func score(_ step: ModelStep<SentenceTagger>, batchSize: Int = 64) throws -> (predicted: [[String]], metrics: NERMetrics) {
        var predicted: [[String]] = []
        for start in stride(from: 0, to: count, by: batchSize) {
            let indices = Array(start..<min(start + batchSize, count))
            var feeds = try batch(indices)
            feeds["tags"] = nil
            let out = try step.infer(feeds, name: "tags") { model, b in
                let logits = try model(b["tokens"], mask: b["mask"])
                return ["tags": try logits.graph.argmax(logits, axis: -1)]
            }
            let ids = out["tags"]!.doubles.map { Int32($0) }
            for (row, i) in indices.enumerated() {
                predicted.append(try (0..<sentences[i].tokens.count).map { try tags.tag(for: ids[row * maxLength + $0]) })
            }
        }
        return (predicted, try NERMetrics(gold: sentences.map(\.tags), predicted: predicted))
    }
}
