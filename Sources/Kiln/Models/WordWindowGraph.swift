/// The word-window named-entity classifier of the backprop lecture as a graph: the word vectors
/// of a window of `window` token ids (from a trainable table `E [vocab, dim]`) are concatenated,
/// then `Linear`, tanh, `Linear` give class logits, scored by softmax cross-entropy.
public struct WordWindowGraph {
    public let graph: Graph
    /// int32 `[B, window]`.
    public let ids: Tensor
    /// int32 `[B]`.
    public let labels: Tensor
    /// E, W1, b1, W2, b2.
    public let parameters: [Tensor]
    public let logits: Tensor
    public let loss: Tensor

    public init(batch: Int, vocab: Int, dim: Int, window: Int = 5, hidden: Int, classes: Int,
                dtype: DType = .float32) throws {
        graph = Graph()
        ids = try graph.placeholder("ids", [batch, window], .int32)
        labels = try graph.placeholder("labels", [batch], .int32)
        let e = try graph.parameter("E", [vocab, dim], dtype)
        let w1 = try graph.parameter("W1", [window * dim, hidden], dtype)
        let b1 = try graph.parameter("b1", [hidden], dtype)
        let w2 = try graph.parameter("W2", [hidden, classes], dtype)
        let b2 = try graph.parameter("b2", [classes], dtype)
        parameters = [e, w1, b1, w2, b2]
        let x = try graph.gather(e, ids: ids).reshaped([batch, window * dim])
        let h = try (x.matmul(w1) + b1).tanh()
        logits = try h.matmul(w2) + b2
        loss = try graph.softmaxCrossEntropy(logits: logits, labels: labels)
    }

    /// Seeded values for ids, labels and parameters.
    public func randomValues(seed: UInt64) throws -> [Tensor: HostTensor] {
        var rng = SeededGenerator(seed: seed)
        var values: [Tensor: HostTensor] = [:]
        let vocab = Int32(parameters[0].shape[0]), classes = Int32(logits.shape[1])
        values[ids] = try HostTensor((0..<ids.shape.count).map { _ in Int32.random(in: 0..<vocab, using: &rng) }, shape: ids.shape)
        values[labels] = try HostTensor((0..<labels.shape[0]).map { _ in Int32.random(in: 0..<classes, using: &rng) }, shape: labels.shape)
        for p in parameters {
            let bound = 1 / Double(p.shape[0]).squareRoot()
            values[p] = try HostTensor(rng.uniform(p.shape.count, in: -bound...bound), shape: p.shape)
        }
        return values
    }
}
