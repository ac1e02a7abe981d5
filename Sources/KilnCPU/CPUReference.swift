import KilnGraph

/// The reference backend: interprets a graph node by node in topological order, computing
/// every float tensor in `T` (Float, or Double for the oracle) whatever its declared dtype.
///
/// It is the oracle every other execution path is tested against, so it favours plain loops
/// over speed.
public struct CPUReference<T: KilnFloat>: Sendable {
    enum Value {
        case float([T])
        case int([Int32])
    }

    public init() {}

    /// Evaluates `fetch` given a value for every input (feeds and parameters) they depend on.
    /// Only the nodes the fetched tensors need are computed.
    public func run(_ graph: Graph, feeds: [Tensor: HostTensor], fetch: [Tensor]) throws -> [HostTensor] {
        let nodes = graph.nodes
        var needed = [Bool](repeating: false, count: nodes.count)
        for t in fetch {
            guard t.graph === graph else {
                throw KilnError.invalidArgument(op: "run", message: "fetched tensor \(t) belongs to another graph")
            }
            needed[t.id] = true
        }
        for id in stride(from: nodes.count - 1, through: 0, by: -1) where needed[id] {
            for i in nodes[id].inputs { needed[i] = true }
        }
        var values = [Value?](repeating: nil, count: nodes.count)
        for node in nodes where needed[node.id] {
            values[node.id] = try evaluate(node, graph: graph, feeds: feeds, values: values)
        }
        return fetch.map { t in
            let node = nodes[t.id]
            switch values[t.id]! {
            case .int(let v): return try! HostTensor(v, shape: node.shape)
            case .float(let v):
                if T.self == Double.self { return try! HostTensor(v.map { Double($0) }, shape: node.shape) }
                return try! HostTensor(v.map { Float($0) }, shape: node.shape)
            }
        }
    }

    private func evaluate(_ node: Node, graph: Graph, feeds: [Tensor: HostTensor], values: [Value?]) throws -> Value {
        let inputs = node.inputs.map { graph.nodes[$0] }
        func float(_ i: Int) -> [T] {
            guard case .float(let v) = values[node.inputs[i]]! else { fatalError("dtype checked when the node was made") }
            return v
        }
        func int(_ i: Int) -> [Int32] {
            guard case .int(let v) = values[node.inputs[i]]! else { fatalError("dtype checked when the node was made") }
            return v
        }
        typealias K = CPUKernels<T>
        switch node.op {
        case .input:
            return try feed(node, feeds[graph.tensor(node.id)])
        case .constant(let v):
            return .float([T(v)])
        case .unary(let op):
            return .float(K.unary(op, float(0)))
        case .binary(let op):
            return .float(K.binary(op, float(0), inputs[0].shape, float(1), inputs[1].shape, out: node.shape))
        case let .reduce(op, axes, _):
            return .float(K.reduce(op, float(0), inputs[0].shape, axes: axes))
        case let .matmul(ta, tb):
            return .float(K.matmul(float(0), inputs[0].shape, float(1), inputs[1].shape, ta: ta, tb: tb))
        case .transpose(let perm):
            return .float(K.transpose(float(0), inputs[0].shape, perm: perm))
        case .reshape:
            return values[node.inputs[0]]!
        case .broadcastTo:
            return .float(K.broadcast(float(0), inputs[0].shape, to: node.shape))
        case .gather:
            return .float(try K.gather(int(0), float(1), rows: inputs[1].shape[0], dim: inputs[1].shape[1]))
        case .scatterAdd(let rows):
            return .float(try K.scatterAdd(int(0), float(1), rows: rows, dim: node.shape[1]))
        case .softmaxCrossEntropy:
            return .float([try K.softmaxCrossEntropy(float(0), int(1), classes: inputs[0].shape[1])])
        case .softmaxCrossEntropyGrad:
            return .float(try K.softmaxCrossEntropyGrad(float(0), int(1), upstream: float(2)[0], classes: inputs[0].shape[1]))
        case .argmax(let axis):
            return .int(K.argmax(float(0), inputs[0].shape, axis: axis))
        case .accuracy:
            return .float([try K.accuracy(float(0), inputs[0].shape, int(1))])
        }
    }

    private func feed(_ node: Node, _ value: HostTensor?) throws -> Value {
        let what = node.op == .input(.parameter) ? "parameter" : "feed"
        guard let value else {
            throw KilnError.invalidValue(op: "run", message: "no value given for \(what) '\(node.label)' \(node.dtype) \(node.shape)")
        }
        guard value.shape == node.shape else {
            throw KilnError.invalidValue(op: "run", message: "\(what) '\(node.label)' expects shape \(node.shape), got \(value.shape)")
        }
        switch value.storage {
        case .int32(let v) where node.dtype == .int32: return .int(v)
        case .float32(let v) where node.dtype.isFloatingPoint: return .float(v.map { T($0) })
        case .float64(let v) where node.dtype.isFloatingPoint: return .float(v.map { T($0) })
        default:
            throw KilnError.invalidValue(op: "run", message: "\(what) '\(node.label)' expects \(node.dtype), got \(value.dtype)")
        }
    }
}
