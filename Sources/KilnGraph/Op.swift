/// Reductions over a set of axes.
public enum ReduceOp: String, Sendable, Hashable, CaseIterable {
    case sum, mean, max
}

/// Where an input's value comes from.
public enum InputKind: String, Sendable, Hashable {
    /// Fed anew on every run (a batch of data, labels).
    case feed
    /// Trainable state that lives with the backend between runs.
    case parameter
    /// Non-trainable state that lives with the backend between runs (optimizer moments).
    case state
}

/// What a node computes. The node's shape and dtype, fixed when it is made, complete it.
public enum Op: Sendable, Hashable {
    case input(InputKind)
    /// A scalar constant.
    case constant(Double)
    case unary(UnaryOp)
    case binary(BinaryOp)
    /// `axes` sorted ascending, each in `0..<rank` of the input.
    case reduce(ReduceOp, axes: [Int], keepDims: Bool)
    /// `op(A) @ op(B)` of 2-D tensors, where `op` transposes when asked.
    case matmul(transposeA: Bool, transposeB: Bool)
    /// Output axis `i` is input axis `perm[i]`.
    case transpose(perm: [Int])
    /// Same elements in row-major order, new shape (the node's).
    case reshape
    /// Repeats the input along broadcast axes to the node's shape.
    case broadcastTo
    /// Embedding lookup: inputs (ids int32 `S`, table `[V, D]`) give `S + [D]`.
    case gather
    /// The gradient of `gather`: inputs (ids int32 `S`, values `S + [D]`) give `[rows, D]`,
    /// where row `v` is the sum of the values whose id is `v` (repeated ids accumulate).
    case scatterAdd(rows: Int)
    /// Inputs (logits `[B, C]`, labels int32 `[B]`) give the mean over the batch of
    /// `logsumexp(logits[b]) - logits[b, labels[b]]`, a scalar.
    case softmaxCrossEntropy
    /// Inputs (logits, labels, upstream scalar) give `upstream * (softmax(logits) - onehot) / B`.
    case softmaxCrossEntropyGrad
    /// The int32 index of the largest value along `axis` (the first one on ties).
    case argmax(axis: Int)
    /// Inputs (logits `[B, C]`, labels `[B]`) give the fraction of rows whose argmax is the label.
    case accuracy
    /// The sum of the input over the processes of a data-parallel job (every process holds
    /// the same graph and gets the same result); the input itself in a single process.
    case allReduce

    /// A short name for messages, schedules and graph drawings.
    public var name: String {
        switch self {
        case .input(let kind): return kind.rawValue
        case .constant(let v): return "constant(\(v))"
        case .unary(let u): return u.rawValue
        case .binary(let b): return b.rawValue
        case let .reduce(r, axes, keepDims): return "\(r.rawValue)(axes: \(axes)\(keepDims ? ", keepDims" : ""))"
        case let .matmul(ta, tb): return "matmul" + (ta ? "(Aᵀ" : "(A") + (tb ? "·Bᵀ)" : "·B)")
        case .transpose(let perm): return "transpose(\(perm))"
        case .reshape: return "reshape"
        case .broadcastTo: return "broadcastTo"
        case .gather: return "gather"
        case .scatterAdd(let rows): return "scatterAdd(rows: \(rows))"
        case .softmaxCrossEntropy: return "softmaxCrossEntropy"
        case .softmaxCrossEntropyGrad: return "softmaxCrossEntropyGrad"
        case .argmax(let axis): return "argmax(axis: \(axis))"
        case .accuracy: return "accuracy"
        case .allReduce: return "allReduce"
        }
    }
}

/// Whether a node belongs to the forward pass or was appended by autodiff.
public enum Role: String, Sendable, Hashable {
    case forward, backward
}

/// One operation in a graph. Nodes are appended in a topological order: every input of a
/// node has a smaller id.
public struct Node: Sendable, Hashable {
    public let id: Int
    public let op: Op
    public let inputs: [Int]
    public let shape: Shape
    public let dtype: DType
    /// The user's name for inputs and parameters; optional elsewhere.
    public let name: String?
    public let role: Role

    /// `name` when given, else `op#id`: how messages refer to the node.
    public var label: String { name ?? "\(op.name)#\(id)" }
}
