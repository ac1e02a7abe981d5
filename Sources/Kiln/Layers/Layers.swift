/// A piece of a model: maps a tensor to a tensor, owning its parameters.
public protocol Layer {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

/// `x @ W + b` with W `[in, out]`.
public struct Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?

    /// - Parameters:
    ///   - weightInit: defaults to PyTorch's (uniform ±1/sqrt(in)).
    public init(_ params: ParameterSet, _ inputs: Int, _ outputs: Int, name: String,
                weightInit: Initializer? = nil, bias: Bool = true, biasInit: Initializer? = nil) throws {
        weight = try params.make("\(name).weight", [inputs, outputs], weightInit ?? .pytorchDefault(fanIn: inputs))
        self.bias = bias ? try params.make("\(name).bias", [outputs], biasInit ?? .pytorchDefault(fanIn: inputs)) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try x.matmul(weight)
        return try bias.map { try y + $0 } ?? y
    }
}

/// An elementwise activation.
public struct Activation: Layer, Sendable {
    public let op: UnaryOp
    public init(_ op: UnaryOp) { self.op = op }
    public static let relu = Activation(.relu)
    public static let tanh = Activation(.tanh)
    public static let sigmoid = Activation(.sigmoid)

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.graph.unary(op, x) }
}

/// Layers applied in order.
public struct Sequential: Layer {
    public let layers: [any Layer]
    public init(_ layers: [any Layer]) { self.layers = layers }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try layers.reduce(x) { try $1($0) }
    }
}

/// A table of trainable vectors looked up by int32 ids: ids `S` give `S + [dim]`.
public struct Embedding {
    public let table: Tensor

    public init(_ params: ParameterSet, vocabulary: Int, dim: Int, name: String = "embedding",
                initializer: Initializer = .normal(1)) throws {
        table = try params.make("\(name).table", [vocabulary, dim], initializer)
    }

    public func callAsFunction(_ ids: Tensor) throws -> Tensor { try ids.graph.gather(table, ids: ids) }
}
