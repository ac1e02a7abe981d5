import Foundation

/// How a parameter's first value is drawn. Every initializer is seeded.
public enum Initializer: Sendable, Hashable {
    case zeros
    /// Uniform in ±bound.
    case uniform(Double)
    /// Xavier/Glorot uniform: ±sqrt(6 / (fanIn + fanOut)).
    case xavierUniform
    /// He (Kaiming) normal: N(0, 2 / fanIn).
    case heNormal
    /// PyTorch's default for Linear weights and biases: uniform in ±1/sqrt(fanIn).
    case pytorchDefault(fanIn: Int)
    /// Normal with this standard deviation.
    case normal(Double)
    /// Every value the same (batch norm's scale 1 and shift 0).
    case constant(Double)

    /// `count` values for a tensor of `shape` (fan-in is `shape[0]`, fan-out `shape[1]` for
    /// our `[in, out]` weights).
    public func values(shape: Shape, rng: inout SeededGenerator) -> [Float] {
        let n = shape.count
        let fanIn = Double(shape.rank > 0 ? shape[0] : 1)
        let fanOut = Double(shape.rank > 1 ? shape[1] : 1)
        func uniform(_ b: Double) -> [Float] { (0..<n).map { _ in Float(Double.random(in: -b...b, using: &rng)) } }
        func normal(_ sd: Double) -> [Float] {
            (0..<n).map { _ in
                // Box–Muller.
                let u1 = Double.random(in: Double.ulpOfOne...1, using: &rng), u2 = Double.random(in: 0..<1, using: &rng)
                return Float(sd * (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
            }
        }
        switch self {
        case .zeros: return [Float](repeating: 0, count: n)
        case .uniform(let b): return uniform(b)
        case .xavierUniform: return uniform((6 / (fanIn + fanOut)).squareRoot())
        case .heNormal: return normal((2 / fanIn).squareRoot())
        case .pytorchDefault(let f): return uniform(1 / Double(max(f, 1)).squareRoot())
        case .normal(let sd): return normal(sd)
        case .constant(let v): return [Float](repeating: Float(v), count: n)
        }
    }
}

/// The trainable parameters of a model, each with its initializer, in creation order.
public final class ParameterSet {
    public let graph: Graph
    /// The float type of the parameters (float32 to train; float64 for gradient checks).
    public let dtype: DType
    public private(set) var entries: [(tensor: Tensor, initializer: Initializer)] = []

    public init(graph: Graph, dtype: DType = .float32) {
        self.graph = graph
        self.dtype = dtype
    }

    /// Makes a parameter in the graph.
    public func make(_ name: String, _ shape: Shape, _ initializer: Initializer) throws -> Tensor {
        let t = try graph.parameter(name, shape, dtype)
        entries.append((t, initializer))
        return t
    }

    /// Adds every parameter of `module` (named by `Module.namedParameters`), in its order.
    public func add(_ module: Module) throws {
        for (_, p) in module.namedParameters() {
            guard p.dtype == dtype else {
                throw KilnError.invalidArgument(op: "ParameterSet", message: "parameter \(p.name ?? "?") is \(p.dtype); the set holds \(dtype)")
            }
            entries.append((try p.tensor(in: graph), p.initializer))
        }
    }

    public var tensors: [Tensor] { entries.map(\.tensor) }

    /// Seeded first values: entry i draws from a generator seeded by (seed, i), so adding a
    /// parameter does not change the others.
    public func initialValues(seed: UInt64) throws -> [Tensor: HostTensor] {
        var out: [Tensor: HostTensor] = [:]
        for (i, e) in entries.enumerated() {
            var rng = SeededGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(i))
            out[e.tensor] = try HostTensor(e.initializer.values(shape: e.tensor.shape, rng: &rng), shape: e.tensor.shape).converted(to: dtype)
        }
        return out
    }
}
