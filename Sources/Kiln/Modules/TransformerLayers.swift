import Foundation

// The pieces of a transformer, built from graph ops so that autodiff derives their gradients:
// softmax, GELU, layer norm, multi-head attention, and the pre-LN block of GPT-2.

/// softmax(x) along `axis`, exp(x − max) / Σ exp(x − max) so that large values stay finite: one
/// kernel forward and one backward (`Graph.softmax`).
public func softmax(_ x: Tensor, axis: Int = -1) throws -> Tensor {
    try x.graph.softmax(x, axis: axis)
}

/// GELU, x·Φ(x). `approximate` (the default): GPT-2's 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
/// PyTorch's `gelu(approximate="tanh")`, one elementwise op; otherwise the exact
/// 0.5·x·(1 + erf(x/√2)), PyTorch's default.
public func gelu(_ x: Tensor, approximate: Bool = true) throws -> Tensor {
    if approximate { return try x.graph.unary(.gelu, x) }
    return try x * 0.5 * (try x.graph.unary(.erf, x * (1 / 2.0.squareRoot())) + 1)
}

/// Layer normalization over the last axis (PyTorch's nn.LayerNorm(width)): each row is
/// centred and scaled by its biased variance, then `weight · x̂ + bias` (starting at 1 and 0).
/// `rms`: RMS norm (nn.RMSNorm), x scaled by its root mean square, no centring, no bias.
public final class LayerNorm: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let epsilon: Double
    public let rms: Bool

    public init(_ width: Int, epsilon: Double = 1e-5, bias: Bool = true, rms: Bool = false, dtype: DType = .float32,
                name: String? = nil) throws {
        guard width >= 1, epsilon > 0 else {
            throw KilnError.invalidArgument(op: "LayerNorm", message: "width \(width) must be at least 1 and epsilon \(epsilon) positive")
        }
        self.epsilon = epsilon
        self.rms = rms
        let bias = bias && !rms
        weight = Parameter([width], dtype: dtype, initializer: .constant(1), name: name.map { "\($0).weight" })
        self.bias = bias ? Parameter([width], dtype: dtype, initializer: .constant(0), name: name.map { "\($0).bias" }) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let width = weight.shape[0], last = x.shape.rank - 1
        guard last >= 0, x.shape[last] == width else {
            throw KilnError.shapeMismatch(op: "LayerNorm", message: "input \(x.shape) does not end in the normalized width \(width)")
        }
        let y = try x.graph.layerNorm(x, epsilon: epsilon, rms: rms) * weight.tensor(in: x.graph)
        return try bias.map { try y + $0.tensor(in: x.graph) } ?? y
    }
}

/// GELU (tanh approximation) as a layer.
public final class GELU: Layer {
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try gelu(x) }
}

/// Multi-head self-attention over `[B, T, width]` (PyTorch's nn.MultiheadAttention with
/// batch_first, separate query, key and value projections): each head attends with
/// softmax(q·kᵀ/√d)·v over its `width / heads` channels, then the heads are joined and
/// projected. `causal`: position t sees positions ≤ t only (a language model); sequences are
/// then exactly `context` long. A padding mask `[B, T]` (1 for a token, 0 for padding) keeps
/// every query from attending to padding.
public final class MultiHeadAttention: Module {
    public let query: Linear
    public let key: Linear
    public let value: Linear
    public let output: Linear
    public let heads: Int
    /// The additive causal mask `[context, context]`: 0 on and below the diagonal, −10⁹ above.
    public let causalMask: StateBuffer?

    public init(width: Int, heads: Int, causal: Bool = false, context: Int = 0, dtype: DType = .float32,
                weightInit: Initializer? = nil, outputInit: Initializer? = nil) throws {
        guard heads >= 1, width >= 1, width % heads == 0 else {
            throw KilnError.invalidArgument(op: "MultiHeadAttention", message: "\(heads) heads do not divide the width \(width)")
        }
        guard !causal || context >= 1 else {
            throw KilnError.invalidArgument(op: "MultiHeadAttention", message: "a causal mask needs the context length (got \(context))")
        }
        let bias: Initializer? = weightInit == nil ? nil : .zeros
        query = Linear(width, width, dtype: dtype, weightInit: weightInit, biasInit: bias)
        key = Linear(width, width, dtype: dtype, weightInit: weightInit, biasInit: bias)
        value = Linear(width, width, dtype: dtype, weightInit: weightInit, biasInit: bias)
        output = Linear(width, width, dtype: dtype, weightInit: outputInit ?? weightInit, biasInit: bias)
        self.heads = heads
        causalMask = causal ? try StateBuffer([context, context], values: (0..<context * context).map { $0 % context > $0 / context ? -1e9 : 0 },
                                              dtype: dtype) : nil
    }

    /// - Parameter padding: `[B, T]`, 1 where a token is and 0 where padding is (optional).
    public func callAsFunction(_ x: Tensor, padding: Tensor? = nil) throws -> Tensor {
        let width = query.weight.shape[0]
        guard x.shape.rank == 3, x.shape[2] == width else {
            throw KilnError.shapeMismatch(op: "MultiHeadAttention", message: "input \(x.shape) is not [batch, time, \(width)]")
        }
        let (b, t, d) = (x.shape[0], x.shape[1], width / heads)
        func split(_ y: Tensor) throws -> Tensor { try y.reshaped([b, t, heads, d]).transposed([0, 2, 1, 3]) }
        let q = try split(query(x)), k = try split(key(x)), v = try split(value(x))
        var scores = try q.matmul(k, transposeB: true) * (1 / Double(d).squareRoot())   // [B, H, T, T]
        if let causalMask {
            let context = causalMask.shape[0]
            guard t == context else {
                throw KilnError.shapeMismatch(op: "MultiHeadAttention", message: "a sequence of \(t) positions does not fit the causal context of \(context): feed windows of exactly \(context)")
            }
            scores = try scores + causalMask.tensor(in: x.graph)
        }
        if let padding {
            guard padding.shape == [b, t] else {
                throw KilnError.shapeMismatch(op: "MultiHeadAttention", message: "padding mask \(padding.shape) does not fit input \(x.shape): expected [\(b), \(t)]")
            }
            // Keys at padding get −10⁹ before the softmax.
            scores = try scores + (padding - 1).reshaped([b, 1, 1, t]) * 1e9
        }
        let attended = try softmax(scores, axis: -1).matmul(v)                            // [B, H, T, d]
        return try output(attended.transposed([0, 2, 1, 3]).reshaped([b, t, width]))
    }
}

/// A pre-LN transformer block (GPT-2's): x + attention(norm(x)), then x + mlp(norm(x)) with a
/// GELU MLP 4 times as wide.
public final class TransformerBlock: Module {
    public let attentionNorm: LayerNorm
    public let attention: MultiHeadAttention
    public let mlpNorm: LayerNorm
    public let expand: Linear
    public let contract: Linear

    /// - Parameters:
    ///   - weightInit: the projections' weights (default: nn.Linear's); biases then start at 0.
    ///   - residualInit: the weights of the projections that end in the residual stream.
    public init(width: Int, heads: Int, causal: Bool = false, context: Int = 0, dtype: DType = .float32,
                weightInit: Initializer? = nil, residualInit: Initializer? = nil) throws {
        let bias: Initializer? = weightInit == nil ? nil : .zeros
        attentionNorm = try LayerNorm(width, dtype: dtype)
        attention = try MultiHeadAttention(width: width, heads: heads, causal: causal, context: context, dtype: dtype,
                                           weightInit: weightInit, outputInit: residualInit)
        mlpNorm = try LayerNorm(width, dtype: dtype)
        expand = Linear(width, 4 * width, dtype: dtype, weightInit: weightInit, biasInit: bias)
        contract = Linear(4 * width, width, dtype: dtype, weightInit: residualInit ?? weightInit, biasInit: bias)
    }

    public func callAsFunction(_ x: Tensor, padding: Tensor? = nil) throws -> Tensor {
        let h = try x + attention(attentionNorm(x), padding: padding)
        return try h + contract(gelu(expand(mlpNorm(h))))
    }
}
