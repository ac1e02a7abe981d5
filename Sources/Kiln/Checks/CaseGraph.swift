/// The graph of one or more op cases: seeded inputs, labelled outputs, and the checks that run
/// on them: a device against the oracle (`compare`), autodiff against finite differences
/// (`gradientCheck`). `kiln selftest` and the test suite build their cases on it.
public final class CaseGraph {
    public let graph = Graph()
    /// The float type of the inputs (float32 for devices, float64 for gradient checks).
    public let dtype: DType
    private var rng: SeededGenerator
    public private(set) var values: [Tensor: HostTensor] = [:]
    /// The float inputs gradients are taken against.
    public private(set) var floatInputs: [Tensor] = []
    public private(set) var outputs: [(label: String, tensor: Tensor, differentiable: Bool)] = []
    /// Prepended to output labels (the case's name when several cases share a graph).
    var prefix = ""
    /// Whether new outputs join the gradient (off for cases that check the forward pass only).
    var gradients = true

    public init(seed: UInt64, dtype: DType = .float32) {
        rng = SeededGenerator(seed: seed)
        self.dtype = dtype
    }

    /// One case built on a fresh graph, or every case of `cases` on one graph (so a device
    /// builds one program for all of them), each with its own seed.
    public convenience init(_ cases: [OpCase], dtype: DType = .float32) throws {
        self.init(seed: cases.first?.seed ?? 0, dtype: dtype)
        for c in cases {
            rng = SeededGenerator(seed: c.seed)
            prefix = cases.count > 1 ? c.name + ": " : ""
            gradients = c.gradients
            try c.build(self)
        }
        prefix = ""
    }

    /// A float placeholder with values uniform in `range`; gradients are taken against it.
    public func input(_ name: String, _ shape: Shape, _ range: ClosedRange<Double> = -1...1) throws -> Tensor {
        let t = try constantInput(prefix + name, shape, range)
        floatInputs.append(t)
        return t
    }

    /// A float placeholder with values uniform in `range` that gradients leave alone.
    public func constantInput(_ name: String, _ shape: Shape, _ range: ClosedRange<Double> = -1...1) throws -> Tensor {
        let t = try graph.placeholder(name, shape, dtype)
        let v = rng.uniform(shape.count, in: range)
        values[t] = dtype == .float64 ? try HostTensor(v, shape: shape) : try HostTensor(v.map(Float.init), shape: shape)
        return t
    }

    /// An int32 placeholder with values uniform in [0, below).
    public func ids(_ name: String, _ shape: Shape, below: Int) throws -> Tensor {
        let t = try graph.placeholder(prefix + name, shape, .int32)
        values[t] = try HostTensor((0..<shape.count).map { _ in Int32.random(in: 0..<Int32(below), using: &rng) }, shape: shape)
        return t
    }

    /// An int32 placeholder with the given values.
    public func ids(_ name: String, _ shape: Shape, values v: [Int32]) throws -> Tensor {
        let t = try graph.placeholder(prefix + name, shape, .int32)
        values[t] = try HostTensor(v, shape: shape)
        return t
    }

    /// An output to compare; a differentiable one also feeds the loss whose gradients are checked.
    public func output(_ label: String, _ t: Tensor, differentiable: Bool = true) {
        outputs.append((prefix + label, t, gradients && differentiable && t.dtype.isFloatingPoint))
    }

    /// The loss whose gradients the checks compare: the sum of every differentiable output
    /// times a fixed random weight of its shape, so every output element's gradient counts.
    public func weightedLoss() throws -> Tensor? {
        var loss: Tensor?
        for o in outputs where o.differentiable {
            let weight = try constantInput("weight of \(o.label)", o.tensor.shape)
            let term = try (o.tensor * weight).sum()
            loss = try loss.map { try $0 + term } ?? term
        }
        return loss
    }

    /// The tensors a comparison fetches, with labels: the outputs and, when asked and any
    /// output is differentiable, the gradients of `weightedLoss` with respect to every float input.
    public func fetches(gradients: Bool) throws -> [(label: String, tensor: Tensor)] {
        var out = outputs.map { ($0.label, $0.tensor) }
        if gradients, let loss = try weightedLoss() {
            let grads = try graph.gradients(of: loss, wrt: floatInputs)
            out += zip(floatInputs, grads).map { ("d/d \($0.node.label)", $1) }
        }
        return out
    }

    /// Runs the outputs (and gradients) on a device's executable, which `load` makes from the
    /// compiled program, and on the oracle (the CPU backend in Double, plain loops, unfused):
    /// labelled pairs (device, oracle).
    public func compare(gradients: Bool = true, fusion: Bool? = nil, realType: DType? = nil,
                        load: (Program) throws -> Executable) throws -> [(label: String, device: HostTensor, oracle: HostTensor)] {
        let fetch = try fetches(gradients: gradients)
        let (got, want) = try DeviceCheck.compare(graph, fetch: fetch.map(\.tensor), values: values, fusion: fusion,
                                                  realType: realType, load: load)
        return zip(fetch, zip(got, want)).map { ($0.label, $1.0, $1.1) }
    }

    /// Autodiff against central finite differences in Double (the graph must be float64), for
    /// the gradient of `weightedLoss` with respect to every float input.
    public func gradientCheck() throws -> [GradientCheck.Result] {
        guard dtype == .float64 else {
            throw KilnError.invalidArgument(op: "gradientCheck", message: "needs a float64 case graph, got \(dtype)")
        }
        guard let loss = try weightedLoss() else { return [] }
        return try GradientCheck.run(graph, loss: loss, wrt: floatInputs, values: values)
    }
}

/// A named graph fragment that exercises some ops, built on a `CaseGraph` from a seed.
public struct OpCase: Sendable {
    public let name: String
    public let seed: UInt64
    /// Whether its outputs' gradients are checked too.
    public let gradients: Bool
    public let build: @Sendable (CaseGraph) throws -> Void

    public init(_ name: String, seed: UInt64, gradients: Bool = true, _ build: @escaping @Sendable (CaseGraph) throws -> Void) {
        self.name = name
        self.seed = seed
        self.gradients = gradients
        self.build = build
    }

    /// The ops its graph holds once gradients are added: what a comparison of it exercises.
    public func kinds(dtype: DType = .float32) throws -> Set<OpKind> {
        let g = try CaseGraph([self], dtype: dtype)
        _ = try g.fetches(gradients: gradients)
        return Set(g.graph.nodes.map(\.op.kind))
    }

    /// The ops whose gradient rules a gradient check of it exercises: those on the path from
    /// an input to a differentiable output.
    public func differentiatedKinds() throws -> Set<OpKind> {
        let g = try CaseGraph([self], dtype: .float64)
        let nodes = g.graph.nodes
        var fromInput = [Bool](repeating: false, count: nodes.count), toOutput = fromInput
        for t in g.floatInputs { fromInput[t.id] = true }
        for n in nodes where n.inputs.contains(where: { fromInput[$0] }) { fromInput[n.id] = true }
        for o in g.outputs where o.differentiable { toOutput[o.tensor.id] = true }
        for n in nodes.reversed() where toOutput[n.id] { for i in n.inputs { toOutput[i] = true } }
        return Set(nodes.filter { fromInput[$0.id] && toOutput[$0.id] && $0.op.kind.traits.fusion != .leaf }.map(\.op.kind))
    }
}
