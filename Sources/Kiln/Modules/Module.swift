/// A trainable tensor's declaration: its shape, float type and first value's initializer, apart
/// from any graph. A model compiled for several batch sizes has one graph per size; each
/// holds a node for the parameter, and the compiled steps keep their values the same.
///
/// A parameter used twice (a tied embedding and output projection) is one node in each graph,
/// so autodiff sums the gradients of both uses.
public final class Parameter: @unchecked Sendable {
    public let shape: Shape
    public let dtype: DType
    public let initializer: Initializer
    /// The path of properties that leads to it from the model (`encoder.fc1.weight`), set when
    /// the model's parameters are collected, or given when it is made.
    public internal(set) var name: String?
    private var nodes = NodePerGraph()

    public init(_ shape: Shape, dtype: DType = .float32, initializer: Initializer, name: String? = nil) {
        self.shape = shape
        self.dtype = dtype
        self.initializer = initializer
        self.name = name
    }

    /// Its node in `graph`, made on first use.
    public func tensor(in graph: Graph) throws -> Tensor {
        try nodes.node(in: graph, name: name, what: "Parameter \(shape)", collectedBy: "Module.namedParameters") {
            try graph.parameter($0, shape, dtype)
        }
    }
}

/// The node a model's declaration (parameter, state buffer) has in each graph built from it.
struct NodePerGraph {
    private var nodes: [ObjectIdentifier: Tensor] = [:]

    /// The node in `graph`, made by `make` from the declaration's name on first use; an
    /// unnamed declaration (one not collected from its model) is an error naming `what`.
    mutating func node(in graph: Graph, name: String?, what: String, collectedBy: String,
                       make: (String) throws -> Tensor) throws -> Tensor {
        if let t = nodes[ObjectIdentifier(graph)] { return t }
        guard let name else {
            throw KilnError.invalidArgument(op: what, message: "has no name: a model's declarations are named by collecting them (\(collectedBy)) before its graph is built")
        }
        let t = try make(name)
        nodes[ObjectIdentifier(graph)] = t
        return t
    }
}

/// A non-trainable tensor a module keeps between steps and updates inside the compiled step
/// (batch norm's running statistics): saved with the optimizer's state, the same in every
/// program of a `ModelStep`, and starting at `initialValue` everywhere.
public final class StateBuffer: @unchecked Sendable {
    public let shape: Shape
    public let dtype: DType
    public let initialValue: Double
    /// Its path from the model (`bn1.runningMean`), set when the model's state is collected.
    public internal(set) var name: String?
    private var nodes = NodePerGraph()

    /// Values to start from instead of `initialValue` everywhere (an attention mask).
    private let initialValues: [Double]?

    public init(_ shape: Shape, dtype: DType = .float32, initialValue: Double = 0, name: String? = nil) {
        self.shape = shape
        self.dtype = dtype
        self.initialValue = initialValue
        self.initialValues = nil
        self.name = name
    }

    /// A buffer that starts at `values` (row-major, `shape.count` of them): a constant the
    /// model reads, such as a causal attention mask, kept with the device's other state.
    public init(_ shape: Shape, values: [Double], dtype: DType = .float32, name: String? = nil) throws {
        guard values.count == shape.count else {
            throw KilnError.shapeMismatch(op: "StateBuffer", message: "\(values.count) values do not fill shape \(shape) (\(shape.count))")
        }
        self.shape = shape
        self.dtype = dtype
        self.initialValue = 0
        self.initialValues = values
        self.name = name
    }

    /// Its node in `graph` (a state tensor), made on first use.
    public func tensor(in graph: Graph) throws -> Tensor {
        try nodes.node(in: graph, name: name, what: "StateBuffer \(shape)", collectedBy: "Module.namedBuffers") {
            try graph.state($0, shape, dtype)
        }
    }

    /// Its first value.
    public var initialTensor: HostTensor {
        get throws {
            let values = initialValues ?? [Double](repeating: initialValue, count: shape.count)
            return dtype == .float64 ? try HostTensor(values, shape: shape) : try HostTensor(values.map { Float($0) }, shape: shape)
        }
    }
}

/// A piece of a model that owns parameters: a user's model is a type of their own whose stored
/// properties are parameters, modules, arrays or optionals of them. The parameters are found
/// (and named by their property paths) by reflection; nothing has to list them.
public protocol Module: AnyObject {}

/// A module that maps one tensor to one tensor, so that modules compose (`Sequential`).
public protocol Layer: Module {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

extension Module {
    /// Every parameter reachable through stored properties, each once, in declaration order,
    /// with its path (`fc1.weight`, `blocks.0.attention.query.weight`). A parameter without a
    /// name is given its path; one named already (made with a name, or reached before by
    /// another path) keeps its name.
    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        collect().parameters
    }

    /// Every state buffer reachable through stored properties (batch norm's running
    /// statistics), named by path as parameters are.
    public func namedBuffers() -> [(name: String, buffer: StateBuffer)] {
        collect().buffers
    }

    private func collect() -> (parameters: [(name: String, parameter: Parameter)], buffers: [(name: String, buffer: StateBuffer)]) {
        var seen = Set<ObjectIdentifier>(), out: [(String, Parameter)] = [], buffers: [(String, StateBuffer)] = []
        var visited = Set<ObjectIdentifier>()
        func walk(_ value: Any, _ path: String) {
            switch value {
            case let p as Parameter:
                guard seen.insert(ObjectIdentifier(p)).inserted else { return }
                if p.name == nil { p.name = path }
                out.append((p.name!, p))
            case let b as StateBuffer:
                guard seen.insert(ObjectIdentifier(b)).inserted else { return }
                if b.name == nil { b.name = path }
                buffers.append((b.name!, b))
            case let m as Module:
                guard visited.insert(ObjectIdentifier(m)).inserted else { return }
                for child in Mirror(reflecting: m).children {
                    guard let label = child.label else { continue }
                    walk(child.value, path.isEmpty ? label : "\(path).\(label)")
                }
            default:
                let mirror = Mirror(reflecting: value)
                switch mirror.displayStyle {
                case .optional:
                    if let some = mirror.children.first { walk(some.value, path) }
                case .collection:
                    for (i, child) in mirror.children.enumerated() { walk(child.value, "\(path).\(i)") }
                default: break
                }
            }
        }
        walk(self, "")
        return (out, buffers)
    }

    /// The parameters, in the order of `namedParameters`.
    public var parameters: [Parameter] { namedParameters().map(\.parameter) }
}

/// `x · W + b` with W `[in, out]`, initialized as PyTorch's nn.Linear (uniform ±1/√in); `x` is
/// `[batch, in]` or has more leading axes (`[B, T, in]`), as nn.Linear's.
public final class Linear: Layer {
    public let weight: Parameter
    public let bias: Parameter?

    /// - Parameter name: a fixed name prefix (`fc1`) for its parameters instead of their path.
    public init(_ inputs: Int, _ outputs: Int, bias: Bool = true, dtype: DType = .float32, name: String? = nil,
                weightInit: Initializer? = nil, biasInit: Initializer? = nil) {
        weight = Parameter([inputs, outputs], dtype: dtype, initializer: weightInit ?? .pytorchDefault(fanIn: inputs),
                           name: name.map { "\($0).weight" })
        self.bias = bias ? Parameter([outputs], dtype: dtype, initializer: biasInit ?? .pytorchDefault(fanIn: inputs),
                                     name: name.map { "\($0).bias" }) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let w = try weight.tensor(in: x.graph)
        guard x.shape.rank >= 2, x.shape[x.shape.rank - 1] == w.shape[0] else {
            throw KilnError.shapeMismatch(op: "Linear", message: "input \(x.shape) does not fit weight \(w.shape): expected [batch, \(w.shape[0])] or [..., \(w.shape[0])]")
        }
        let y = try x.matmul(w)
        return try bias.map { try y + $0.tensor(in: x.graph) } ?? y
    }
}

/// An elementwise activation, as a layer.
public final class Activation: Layer {
    public let op: UnaryOp
    public init(_ op: UnaryOp) { self.op = op }
    public static var relu: Activation { Activation(.relu) }
    public static var tanh: Activation { Activation(.tanh) }
    public static var sigmoid: Activation { Activation(.sigmoid) }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.graph.unary(op, x) }
}

/// Layers applied in order; their parameters are named `layers.<i>.<name>`.
public final class Sequential: Layer {
    public let layers: [any Layer]
    public init(_ layers: [any Layer]) { self.layers = layers }
    public convenience init(_ layers: any Layer...) { self.init(layers) }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try layers.reduce(x) { try $1($0) }
    }
}

/// A table of trainable vectors looked up by int32 ids: ids `S` give `S + [dim]`.
public final class Embedding: Module {
    public let table: Parameter

    public init(vocabulary: Int, dim: Int, dtype: DType = .float32, name: String? = nil, initializer: Initializer = .normal(1)) {
        table = Parameter([vocabulary, dim], dtype: dtype, initializer: initializer, name: name.map { "\($0).table" })
    }

    public func callAsFunction(_ ids: Tensor) throws -> Tensor { try ids.graph.gather(table.tensor(in: ids.graph), ids: ids) }
}
