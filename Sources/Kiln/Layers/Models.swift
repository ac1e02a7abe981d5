/// A classifier's graph: inputs, labels, parameters, logits and the mean softmax
/// cross-entropy loss; the accuracy for metrics.
public struct ClassifierGraph {
    public let graph: Graph
    public let parameters: ParameterSet
    /// Float features `[B, F]` or int32 ids `[B, window]`.
    public let input: Tensor
    /// int32 `[B]`.
    public let labels: Tensor
    public let logits: Tensor
    public let loss: Tensor
    public let accuracy: Tensor
    /// The class predicted for each row (int32 `[B]`).
    public let predictions: Tensor

    init(parameters: ParameterSet, input: Tensor, labels: Tensor, logits: Tensor) throws {
        let g = parameters.graph
        self.graph = g
        self.parameters = parameters
        self.input = input
        self.labels = labels
        self.logits = logits
        loss = try g.softmaxCrossEntropy(logits: logits, labels: labels)
        accuracy = try g.accuracy(logits: logits, labels: labels)
        predictions = try g.argmax(logits, axis: 1)
    }

    /// An MLP: `sizes[0]` features through Linear layers with `activation` between them.
    public static func mlp(batch: Int, sizes: [Int], activation: UnaryOp = .relu, dtype: DType = .float32) throws -> ClassifierGraph {
        guard sizes.count >= 2, sizes.allSatisfy({ $0 > 0 }), batch > 0 else {
            throw KilnError.invalidArgument(op: "mlp", message: "needs a positive batch and at least two positive layer sizes, got batch \(batch), sizes \(sizes)")
        }
        let g = Graph()
        let params = ParameterSet(graph: g, dtype: dtype)
        let x = try g.placeholder("x", [batch, sizes[0]], dtype)
        let labels = try g.placeholder("labels", [batch], .int32)
        var layers: [any Layer] = []
        for i in 1..<sizes.count {
            layers.append(Linear(sizes[i - 1], sizes[i], dtype: dtype, name: "fc\(i)"))
            if i < sizes.count - 1 { layers.append(Activation(activation)) }
        }
        let model = Sequential(layers)
        let logits = try model(x)
        try params.add(model)
        return try ClassifierGraph(parameters: params, input: x, labels: labels, logits: logits)
    }

    /// The lecture's word-window classifier: the vectors of `window` ids are concatenated,
    /// then Linear, tanh, Linear.
    public static func wordWindow(batch: Int, vocabulary: Int, dim: Int, window: Int = 5, hidden: Int,
                                  classes: Int, dtype: DType = .float32) throws -> ClassifierGraph {
        guard batch > 0, vocabulary > 0, dim > 0, window > 0, hidden > 0, classes > 0 else {
            throw KilnError.invalidArgument(op: "wordWindow", message: "sizes must be positive (batch \(batch), vocabulary \(vocabulary), dim \(dim), window \(window), hidden \(hidden), classes \(classes))")
        }
        let g = Graph()
        let params = ParameterSet(graph: g, dtype: dtype)
        let ids = try g.placeholder("ids", [batch, window], .int32)
        let labels = try g.placeholder("labels", [batch], .int32)
        let embedding = Embedding(vocabulary: vocabulary, dim: dim, dtype: dtype, name: "words")
        let head = Sequential(Linear(window * dim, hidden, dtype: dtype, name: "hidden"), Activation.tanh,
                              Linear(hidden, classes, dtype: dtype, name: "out"))
        let logits = try head(embedding(ids).reshaped([batch, window * dim]))
        try params.add(embedding)
        try params.add(head)
        return try ClassifierGraph(parameters: params, input: ids, labels: labels, logits: logits)
    }

    /// A seeded random batch: features in [-1, 1] or ids in [0, vocabulary), labels in [0, classes).
    public func randomBatch(seed: UInt64) throws -> [Tensor: HostTensor] {
        var rng = SeededGenerator(seed: seed)
        let classes = Int32(logits.shape[1])
        let input: HostTensor
        if self.input.dtype == .int32 {
            let vocabulary = Int32(parameters.tensors[0].shape[0])
            input = try HostTensor((0..<self.input.shape.count).map { _ in Int32.random(in: 0..<vocabulary, using: &rng) }, shape: self.input.shape)
        } else {
            input = try HostTensor(rng.uniform(self.input.shape.count, in: -1...1), shape: self.input.shape).converted(to: self.input.dtype)
        }
        let y = try HostTensor((0..<labels.shape[0]).map { _ in Int32.random(in: 0..<classes, using: &rng) }, shape: labels.shape)
        return [self.input: input, labels: y]
    }

    /// Seeded initial parameters and a random batch: every value the loss needs.
    public func randomValues(seed: UInt64) throws -> [Tensor: HostTensor] {
        try parameters.initialValues(seed: seed).merging(randomBatch(seed: seed &+ 1)) { a, _ in a }
    }
}
