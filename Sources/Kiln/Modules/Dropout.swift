/// Dropout (nn.Dropout): while training (`Graph.training`), each value is kept with probability
/// 1 - p and scaled by 1 / (1 - p), else zeroed; otherwise the identity. The mask comes from
/// `Graph.uniform` keyed by `seed` and the step counter, so the CPU backend and OpenCL draw the
/// same masks, every step draws new ones, and a resumed run draws what it would have drawn.
public final class Dropout: Layer {
    public let probability: Double
    public let seed: UInt32

    public init(_ probability: Double, seed: UInt32 = 0) throws {
        guard probability >= 0, probability < 1 else {
            throw KilnError.invalidArgument(op: "Dropout", message: "probability \(probability) must be in [0, 1)")
        }
        self.probability = probability
        self.seed = seed
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let g = x.graph
        guard g.training, probability > 0 else { return x }
        let u = try g.uniform(x.shape, counter: g.stepCounter(), seed: seed, dtype: x.dtype)
        // u ≥ p with probability 1 - p.
        let keep = try g.binary(.greater, u, u.scalar(probability)) + g.binary(.equal, u, u.scalar(probability))
        return try x * keep * (1 / (1 - probability))
    }
}
