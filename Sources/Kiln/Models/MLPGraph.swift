/// A multi-layer perceptron classifier as a graph: `x [B, sizes[0]]` through `Linear` layers
/// (`x @ W + b`, W `[in, out]`) with an activation between them, to logits `[B, sizes.last]`,
/// and the softmax cross-entropy against int32 `labels [B]`.
public struct MLPGraph {
    public let graph: Graph
    public let x: Tensor
    public let labels: Tensor
    /// W1, b1, W2, b2, ... in layer order.
    public let parameters: [Tensor]
    public let logits: Tensor
    public let loss: Tensor

    public init(batch: Int, sizes: [Int], activation: UnaryOp = .relu, dtype: DType = .float32) throws {
        guard sizes.count >= 2, sizes.allSatisfy({ $0 > 0 }) else {
            throw KilnError.invalidArgument(op: "MLPGraph", message: "layer sizes \(sizes) need at least an input and an output size, all positive")
        }
        graph = Graph()
        x = try graph.placeholder("x", [batch, sizes[0]], dtype)
        labels = try graph.placeholder("labels", [batch], .int32)
        var h = x
        var params: [Tensor] = []
        for layer in 1..<sizes.count {
            let w = try graph.parameter("W\(layer)", [sizes[layer - 1], sizes[layer]], dtype)
            let b = try graph.parameter("b\(layer)", [sizes[layer]], dtype)
            params += [w, b]
            h = try h.matmul(w) + b
            if layer < sizes.count - 1 { h = try graph.unary(activation, h) }
        }
        parameters = params
        logits = h
        loss = try graph.softmaxCrossEntropy(logits: logits, labels: labels)
    }

    /// Seeded values for the inputs and parameters (weights scaled by 1/sqrt(fan-in)).
    public func randomValues(seed: UInt64) throws -> [Tensor: HostTensor] {
        var rng = SeededGenerator(seed: seed)
        var values: [Tensor: HostTensor] = [:]
        values[x] = try HostTensor(rng.uniform(x.shape.count, in: -1...1), shape: x.shape)
        let classes = Int32(logits.shape[1])
        values[labels] = try HostTensor((0..<labels.shape[0]).map { _ in Int32.random(in: 0..<classes, using: &rng) }, shape: labels.shape)
        for p in parameters {
            let bound = 1 / Double(p.shape[0]).squareRoot()
            values[p] = try HostTensor(rng.uniform(p.shape.count, in: -bound...bound), shape: p.shape)
        }
        return values
    }
}
