import Foundation

/// How a transformer tells positions apart.
public enum PositionEncoding: String, Sendable, Hashable, Codable, CaseIterable {
    /// A trained table `[context, width]` (GPT's).
    case learned
    /// The fixed sines and cosines of "Attention Is All You Need": position p, column 2i holds
    /// sin(p / 10000^(2i/width)) and column 2i+1 its cosine. Nothing to train.
    case sinusoidal

    /// The sinusoidal table `[positions, width]`, row-major.
    public static func sinusoids(positions: Int, width: Int) -> [Double] {
        (0..<positions * width).map { i in
            let (p, c) = (i / width, i % width)
            let angle = Double(p) / pow(10000, Double(c - c % 2) / Double(width))
            return c % 2 == 0 ? sin(angle) : cos(angle)
        }
    }
}

/// The shape of a GPT-style language model.
public struct TransformerConfig: Sendable, Hashable, Codable {
    public var vocabulary: Int
    /// Positions per sequence (the causal mask's and the position table's size).
    public var context = 128
    public var width = 128
    public var layers = 4
    public var heads = 4
    /// The output projection is the token table, transposed (one parameter used twice).
    public var tied = false
    public var positions = PositionEncoding.learned

    public init(vocabulary: Int, context: Int = 128, width: Int = 128, layers: Int = 4, heads: Int = 4, tied: Bool = false,
                positions: PositionEncoding = .learned) {
        (self.vocabulary, self.context, self.width, self.layers, self.heads, self.tied) = (vocabulary, context, width, layers, heads, tied)
        self.positions = positions
    }

    enum CodingKeys: String, CodingKey { case vocabulary, context, width, layers, heads, tied, positions }

    /// Decodes a configuration; one saved before position encodings could be chosen has learned ones.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(vocabulary: c.decode(Int.self, forKey: .vocabulary), context: c.decode(Int.self, forKey: .context),
                      width: c.decode(Int.self, forKey: .width), layers: c.decode(Int.self, forKey: .layers),
                      heads: c.decode(Int.self, forKey: .heads), tied: c.decodeIfPresent(Bool.self, forKey: .tied) ?? false,
                      positions: c.decodeIfPresent(PositionEncoding.self, forKey: .positions) ?? .learned)
    }

    /// The error naming what does not fit, or nil.
    func validate() throws {
        guard vocabulary >= 1, context >= 1, width >= 1, layers >= 1, heads >= 1 else {
            throw KilnError.invalidArgument(op: "TransformerConfig", message: "vocabulary \(vocabulary), context \(context), width \(width), layers \(layers) and heads \(heads) must all be at least 1")
        }
        guard width % heads == 0 else {
            throw KilnError.invalidArgument(op: "TransformerConfig", message: "\(heads) heads do not divide the width \(width)")
        }
    }
}

/// A GPT (nanoGPT's): token and position embeddings (learned, or fixed sinusoids), pre-LN causal transformer
/// blocks, a final layer norm and a projection to the vocabulary without bias. Weights start
/// as GPT-2's: N(0, 0.02), the projections into the residual stream N(0, 0.02/√(2·layers)),
/// biases 0.
public final class TransformerLanguageModel: Module {
    public let config: TransformerConfig
    public let tokens: Embedding
    /// The learned position table; absent with sinusoidal positions.
    public let positions: Parameter?
    /// The sinusoidal position table, a constant kept with the model's state.
    public let sinusoids: StateBuffer?
    public let blocks: [TransformerBlock]
    public let norm: LayerNorm
    /// Absent when tied to the token table.
    public let head: Linear?

    public init(_ config: TransformerConfig, dtype: DType = .float32) throws {
        try config.validate()
        self.config = config
        let std = Initializer.normal(0.02)
        let residual = Initializer.normal(0.02 / Double(2 * config.layers).squareRoot())
        tokens = Embedding(vocabulary: config.vocabulary, dim: config.width, dtype: dtype, initializer: std)
        switch config.positions {
        case .learned:
            (positions, sinusoids) = (Parameter([config.context, config.width], dtype: dtype, initializer: std), nil)
        case .sinusoidal:
            (positions, sinusoids) = (nil, try StateBuffer([config.context, config.width],
                                                           values: PositionEncoding.sinusoids(positions: config.context, width: config.width), dtype: dtype))
        }
        blocks = try (0..<config.layers).map { _ in
            try TransformerBlock(width: config.width, heads: config.heads, causal: true, context: config.context, dtype: dtype,
                                 weightInit: std, residualInit: residual)
        }
        norm = try LayerNorm(config.width, dtype: dtype)
        head = config.tied ? nil : Linear(config.width, config.vocabulary, bias: false, dtype: dtype, weightInit: std)
    }

    /// Logits `[B, T, vocabulary]` for int32 ids `[B, T]`, T the context.
    public func callAsFunction(_ ids: Tensor) throws -> Tensor {
        guard ids.shape.rank == 2, ids.dtype == .int32 else {
            throw KilnError.shapeMismatch(op: "TransformerLanguageModel", message: "ids must be int32 [batch, time], got \(ids.dtype) \(ids.shape)")
        }
        guard ids.shape[1] == config.context else {
            throw KilnError.shapeMismatch(op: "TransformerLanguageModel", message: "a sequence of \(ids.shape[1]) positions does not fit the context of \(config.context)")
        }
        let table = try positions?.tensor(in: ids.graph) ?? sinusoids!.tensor(in: ids.graph)
        var x = try tokens(ids) + table
        for block in blocks { x = try block(x) }
        x = try norm(x)
        if let head { return try head(x) }
        return try x.matmul(tokens.table.tensor(in: ids.graph), transposeB: true)
    }
}
