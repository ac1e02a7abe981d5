/// Batch normalization over the channels of `[N, C, H, W]` images, as PyTorch's nn.BatchNorm2d:
/// while training (`Graph.training`), each channel is normalized by its batch mean and biased
/// variance, and the running mean and unbiased variance move toward them by `momentum` inside
/// the compiled step; otherwise the running statistics normalize. Then `weight · x̂ + bias`
/// (starting at 1 and 0).
public final class BatchNorm2d: Layer {
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: StateBuffer
    public let runningVar: StateBuffer
    public let epsilon: Double
    public let momentum: Double

    public init(_ channels: Int, epsilon: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true, dtype: DType = .float32,
                name: String? = nil) throws {
        guard channels >= 1 else { throw KilnError.invalidArgument(op: "BatchNorm2d", message: "channels \(channels) must be at least 1") }
        guard epsilon > 0, momentum >= 0, momentum <= 1 else {
            throw KilnError.invalidArgument(op: "BatchNorm2d", message: "epsilon \(epsilon) must be > 0 and momentum \(momentum) in [0, 1]")
        }
        self.epsilon = epsilon
        self.momentum = momentum
        weight = affine ? Parameter([channels], dtype: dtype, initializer: .constant(1), name: name.map { "\($0).weight" }) : nil
        bias = affine ? Parameter([channels], dtype: dtype, initializer: .constant(0), name: name.map { "\($0).bias" }) : nil
        runningMean = StateBuffer([channels], dtype: dtype, initialValue: 0, name: name.map { "\($0).runningMean" })
        runningVar = StateBuffer([channels], dtype: dtype, initialValue: 1, name: name.map { "\($0).runningVar" })
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let g = x.graph, c = runningMean.shape[0]
        guard x.shape.rank == 4, x.shape[1] == c else {
            throw KilnError.shapeMismatch(op: "BatchNorm2d", message: "input \(x.shape) does not fit \(c) channels: expected [N, \(c), H, W]")
        }
        let perChannel: Shape = [1, c, 1, 1]
        let mean = try runningMean.tensor(in: g), variance = try runningVar.tensor(in: g)
        let gamma = try weight.map { try $0.tensor(in: g).reshaped(perChannel) }
        let beta = try bias.map { try $0.tensor(in: g).reshaped(perChannel) }
        guard g.training else {
            var scale = try 1 / (variance.reshaped(perChannel) + epsilon).sqrt()
            if let gamma { scale = try scale * gamma }
            let y = try (x - mean.reshaped(perChannel)) * scale
            return try beta.map { try y + $0 } ?? y
        }
        let count = x.shape.count / c
        guard count > 1 else {
            throw KilnError.shapeMismatch(op: "BatchNorm2d", message: "input \(x.shape) has one value per channel: training needs more to compute a variance")
        }
        let batchMean = try x.mean(axes: [0, 2, 3], keepDims: true), fixedMean = try batchMean.detached()
        // Centered on the detached mean: the variance's derivative with respect to the mean
        // is zero (the centered values sum to zero), so only x's gradient flows through
        // here, and `fixedMean - batchMean` (zero: it adds nothing to the output) carries
        // the mean's own, -Σ upstream · scale per channel.
        let centered = try x - fixedMean
        let batchVar = try (centered * centered).mean(axes: [0, 2, 3], keepDims: true)
        // The per-channel factor `weight / deviation` is formed before it meets the images,
        // so the backward pass needs two sums over them (upstream, and upstream · centered)
        // and one elementwise pass, instead of a sum for every factor of the product.
        var scale = try 1 / (batchVar + epsilon).sqrt()
        if let gamma { scale = try scale * gamma }
        var shift = try (fixedMean - batchMean) * scale
        if let beta { shift = try shift + beta }
        // The running variance is the unbiased one, as PyTorch's.
        let unbiased = try batchVar.reshaped([c]) * (Double(count) / Double(count - 1))
        try g.assign(mean, try mean * (1 - momentum) + batchMean.reshaped([c]) * momentum)
        try g.assign(variance, try variance * (1 - momentum) + unbiased * momentum)
        return try centered * scale + shift
    }
}
