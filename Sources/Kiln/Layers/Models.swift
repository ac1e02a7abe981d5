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
        guard batch > 0 else {
            throw KilnError.invalidArgument(op: "mlp", message: "needs a positive batch, got \(batch)")
        }
        return try build(ClassifierModel(.mlp(sizes: sizes, activation: activation), dtype: dtype), batch: batch)
    }

    /// The lecture's word-window classifier: the vectors of `window` ids are concatenated,
    /// then Linear, tanh, Linear.
    public static func wordWindow(batch: Int, vocabulary: Int, dim: Int, window: Int = 5, hidden: Int,
                                  classes: Int, dtype: DType = .float32) throws -> ClassifierGraph {
        guard batch > 0 else {
            throw KilnError.invalidArgument(op: "wordWindow", message: "needs a positive batch, got \(batch)")
        }
        let spec = ModelSpec.wordWindow(vocabulary: vocabulary, dim: dim, window: window, hidden: hidden, classes: classes)
        return try build(ClassifierModel(spec, dtype: dtype), batch: batch)
    }

    /// The graph of `model` for a batch size: placeholders `x` (or `ids`) and `labels`.
    static func build(_ model: ClassifierModel, batch: Int, training: Bool = true) throws -> ClassifierGraph {
        let g = Graph()
        let params = ParameterSet(graph: g, dtype: model.dtype)
        // A training step's graph: batch statistics and dropout as while training.
        g.training = training
        let input = model.spec.kind == .wordWindow ? try g.placeholder("ids", [batch, model.spec.window], .int32)
                                                  : try g.placeholder("x", [batch, model.spec.inputFeatures], model.dtype)
        let labels = try g.placeholder("labels", [batch], .int32)
        let logits = try model(input)
        try params.add(model)
        return try ClassifierGraph(parameters: params, input: input, labels: labels, logits: logits)
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

/// A built-in task's model as a module: the MLP, or the word-window classifier (embedding,
/// concatenated window, Linear, tanh, Linear); parameters named `fc1.weight`, or
/// `words.table`, `hidden.weight`, `out.weight`, as checkpoints know them.
public final class ClassifierModel: Module {
    public let spec: ModelSpec
    public let dtype: DType
    let embedding: Embedding?
    let layers: Sequential

    public init(_ spec: ModelSpec, dtype: DType = .float32) throws {
        self.spec = spec
        self.dtype = dtype
        switch spec.kind {
        case .mlp:
            let sizes = spec.sizes
            guard sizes.count >= 2, sizes.allSatisfy({ $0 > 0 }) else {
                throw KilnError.invalidArgument(op: "mlp", message: "needs at least two positive layer sizes, got \(sizes)")
            }
            guard let activation = UnaryOp(rawValue: spec.activation) else {
                throw KilnError.invalidArgument(op: "model", message: "unknown activation '\(spec.activation)'")
            }
            var layers: [any Layer] = []
            for i in 1..<sizes.count {
                layers.append(Linear(sizes[i - 1], sizes[i], dtype: dtype, name: "fc\(i)"))
                if i < sizes.count - 1 { layers.append(Activation(activation)) }
            }
            embedding = nil
            self.layers = Sequential(layers)
        case .wordWindow:
            let (v, d, w, h, c) = (spec.vocabulary, spec.dim, spec.window, spec.hidden, spec.classes)
            guard v > 0, d > 0, w > 0, h > 0, c > 0 else {
                throw KilnError.invalidArgument(op: "wordWindow", message: "sizes must be positive (vocabulary \(v), dim \(d), window \(w), hidden \(h), classes \(c))")
            }
            embedding = Embedding(vocabulary: v, dim: d, dtype: dtype, name: "words")
            layers = Sequential(Linear(w * d, h, dtype: dtype, name: "hidden"), Activation.tanh, Linear(h, c, dtype: dtype, name: "out"))
        case .cnn:
            let channels = spec.channels ?? [], image = spec.image ?? []
            guard channels.count >= 2, channels.allSatisfy({ $0 > 0 }), image.count == 2, spec.hidden > 0, spec.classes > 0 else {
                throw KilnError.invalidArgument(op: "cnn", message: "needs image channels and at least one convolution's, an image height and width, and positive Linear sizes (channels \(channels), image \(image), hidden \(spec.hidden), classes \(spec.classes))")
            }
            var layers: [any Layer] = []
            var (h, w) = (image[0], image[1])
            for i in 1..<channels.count {
                layers += [try Conv2d(channels[i - 1], channels[i], kernel: 3, padding: 1, dtype: dtype, name: "conv\(i)"),
                           try BatchNorm2d(channels[i], dtype: dtype, name: "bn\(i)"), Activation.relu, try MaxPool2d(2)]
                (h, w) = (h / 2, w / 2)
            }
            guard h > 0, w > 0 else {
                throw KilnError.invalidArgument(op: "cnn", message: "image \(image) is too small for \(channels.count - 1) max-pools of 2")
            }
            let p = spec.dropout ?? 0
            layers += [Flatten(), try Dropout(p, seed: 1), Linear(channels.last! * h * w, spec.hidden, dtype: dtype, name: "fc1"), Activation.relu,
                       try Dropout(p, seed: 2), Linear(spec.hidden, spec.classes, dtype: dtype, name: "fc2")]
            embedding = nil
            self.layers = Sequential(layers)
        }
    }

    /// Logits `[B, classes]` of features `[B, F]` or of id windows `[B, window]`.
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        if spec.kind == .cnn, let c = spec.channels?.first, let image = spec.image {
            // Rows of flat pixels, as the data feeds them, are images [B, C, H, W].
            return try layers(input.reshaped([input.shape[0], c, image[0], image[1]]))
        }
        guard let embedding else { return try layers(input) }
        let b = input.shape[0]
        return try layers(embedding(input).reshaped([b, spec.window * spec.dim]))
    }
}
