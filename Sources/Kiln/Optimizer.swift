import Foundation

/// An optimizer's update rule, appended to the step's graph as update nodes so that it is
/// compiled into the step (one fused kernel per parameter).
///
/// The learning rate (and Adam's bias corrections) are scalar feeds, so a schedule changes
/// them every step without recompiling.
public struct Optimizer: Sendable {
    public enum Rule: Sendable, Hashable {
        /// p ← p − lr·g
        case sgd
        /// PyTorch's: v ← μ·v + g; p ← p − lr·v
        case momentum(Double)
        /// PyTorch's: v ← μ·v + g; p ← p − lr·(g + μ·v)
        case nesterov(Double)
        /// Adam with bias correction; `decoupled` gives AdamW (decay applied to p, not to g).
        case adam(beta1: Double, beta2: Double, epsilon: Double, decoupled: Bool)
    }

    /// Which parameters weight decay applies to: PyTorch's parameter groups, chosen by name
    /// or by shape.
    public enum DecayGroup: Sendable, Hashable {
        /// Every parameter.
        case all
        /// Parameters of rank 2 and more (weights and embeddings), not biases or the gains and
        /// biases of norms: what nanoGPT and most transformer recipes decay.
        case matrices
        /// The parameters with these names (`blocks.0.mlp.fc.weight`).
        case named(Set<String>)

        func contains(name: String, shape: Shape) -> Bool {
            switch self {
            case .all: return true
            case .matrices: return shape.rank >= 2
            case .named(let names): return names.contains(name)
            }
        }
    }

    public var rule: Rule
    /// L2 weight decay (added to the gradient; decoupled for AdamW).
    public var weightDecay: Double
    /// The parameters `weightDecay` applies to.
    public var decayGroup: DecayGroup
    /// Clips the gradients by their global norm (PyTorch's clip_grad_norm_): when the L2 norm
    /// of all gradients together exceeds it, every gradient is scaled by clip / (norm + 1e-6).
    /// Computed inside the compiled step; nil: no clipping.
    public var clipNorm: Double?

    public init(_ rule: Rule, weightDecay: Double = 0, decayGroup: DecayGroup = .all, clipNorm: Double? = nil) {
        self.rule = rule
        self.weightDecay = weightDecay
        self.decayGroup = decayGroup
        self.clipNorm = clipNorm
    }

    public static func adam(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0,
                            clipNorm: Double? = nil) -> Optimizer {
        Optimizer(.adam(beta1: beta1, beta2: beta2, epsilon: epsilon, decoupled: false), weightDecay: weightDecay, clipNorm: clipNorm)
    }

    public static func adamW(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01,
                             decayGroup: DecayGroup = .all, clipNorm: Double? = nil) -> Optimizer {
        Optimizer(.adam(beta1: beta1, beta2: beta2, epsilon: epsilon, decoupled: true), weightDecay: weightDecay,
                  decayGroup: decayGroup, clipNorm: clipNorm)
    }

    /// The scalar feeds an applied optimizer reads every step.
    public struct Feeds: Sendable {
        public let learningRate: Tensor
        /// Adam only: lr / (1 − β1ᵗ) and 1 / sqrt(1 − β2ᵗ).
        public let adamStep: Tensor?
        public let adamCorrection: Tensor?
        let rule: Rule

        /// Values for step `t` (counting from 1) at learning rate `lr`.
        public func values(step t: Int, learningRate lr: Double) throws -> [Tensor: HostTensor] {
            guard t >= 1 else {
                // Adam's bias correction divides by 1 − βᵗ: step 0 would make every parameter NaN.
                throw KilnError.invalidArgument(op: "Optimizer", message: "steps count from 1, got step \(t)")
            }
            let dtype = learningRate.dtype
            func scalar(_ v: Double) throws -> HostTensor {
                dtype == .float64 ? try HostTensor([v], shape: .scalar) : try HostTensor([Float(v)], shape: .scalar)
            }
            var out = [learningRate: try scalar(lr)]
            if case let .adam(b1, b2, _, _) = rule, let a = adamStep, let c = adamCorrection {
                out[a] = try scalar(lr / (1 - pow(b1, Double(t))))
                out[c] = try scalar(1 / (1 - pow(b2, Double(t))).squareRoot())
            }
            return out
        }
    }

    /// Appends the update of every parameter given its gradient; state tensors (moments) are
    /// created as `<name>.m` / `<name>.v`.
    public func apply(to graph: Graph, parameters: [Tensor], gradients: [Tensor]) throws -> Feeds {
        guard let first = parameters.first else {
            throw KilnError.invalidArgument(op: "Optimizer", message: "no parameters to update")
        }
        let dtype = first.dtype
        let lr = try graph.placeholder("learning_rate", .scalar, dtype)
        var adamStep: Tensor?, adamCorrection: Tensor?
        if case .adam = rule {
            adamStep = try graph.placeholder("adam_step_size", .scalar, dtype)
            adamCorrection = try graph.placeholder("adam_correction", .scalar, dtype)
        }
        var gradients = gradients
        if let clip = clipNorm {
            guard clip > 0, clip.isFinite else {
                throw KilnError.invalidArgument(op: "Optimizer", message: "clipNorm must be a positive number, got \(clip)")
            }
            // Every update waits for the norm of all gradients: scale = min(1, clip / (norm + 1e-6)).
            let squares = try gradients.map { try ($0 * $0).sum() }
            let norm = try squares.dropFirst().reduce(squares[0]) { try $0 + $1 }.sqrt()
            let scale = try (try clip / (norm + 1e-6)).minimum(graph.constant(1, dtype))
            gradients = try gradients.map { try $0 * scale }
        }
        for (p, g0) in zip(parameters, gradients) {
            let name = p.node.label
            var g = g0
            let decay = decayGroup.contains(name: name, shape: p.shape) ? weightDecay : 0
            if decay != 0, !isDecoupled { g = try g + p * decay }
            switch rule {
            case .sgd:
                try graph.assign(p, p - lr * g)
            case .momentum(let mu):
                let v = try graph.state("\(name).v", p.shape, dtype)
                let vNew = try v * mu + g
                try graph.assign(v, vNew)
                try graph.assign(p, p - lr * vNew)
            case .nesterov(let mu):
                let v = try graph.state("\(name).v", p.shape, dtype)
                let vNew = try v * mu + g
                try graph.assign(v, vNew)
                try graph.assign(p, p - lr * (g + vNew * mu))
            case let .adam(b1, b2, eps, decoupled):
                let m = try graph.state("\(name).m", p.shape, dtype)
                let v = try graph.state("\(name).v", p.shape, dtype)
                let mNew = try m * b1 + g * (1 - b1)
                let vNew = try v * b2 + g * g * (1 - b2)
                try graph.assign(m, mNew)
                try graph.assign(v, vNew)
                let base = decoupled && decay != 0 ? try p - lr * decay * p : p
                try graph.assign(p, base - adamStep! * mNew / (vNew.sqrt() * adamCorrection! + eps))
            }
        }
        return Feeds(learningRate: lr, adamStep: adamStep, adamCorrection: adamCorrection, rule: rule)
    }

    private var isDecoupled: Bool {
        if case .adam(_, _, _, true) = rule { return true }
        return false
    }
}
