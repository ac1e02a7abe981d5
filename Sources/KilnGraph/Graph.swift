/// A graph of tensor operations. Making a node checks its shapes and dtypes at once, so a
/// graph that exists is well-formed.
///
/// Graphs are built on one thread; hand the finished graph to a backend.
public final class Graph: @unchecked Sendable {
    /// All nodes, in a topological order (inputs before the nodes that use them).
    public private(set) var nodes: [Node] = []
    /// The role given to new nodes; autodiff switches it to `.backward`.
    var role: Role = .forward
    /// What a run writes back into persistent tensors: after the run, `target` holds `value`.
    /// Optimizers record their updates here.
    public private(set) var updates: [(target: Tensor, value: Tensor)] = []
    /// For each gradient tensor autodiff made: the forward node it is the gradient of (what a
    /// drawing of the graph labels ∂loss/∂node).
    public internal(set) var gradientOf: [Int: Int] = [:]
    /// The nodes made by `stopGradient`: autodiff passes no gradient through them.
    public private(set) var detached: Set<Int> = []
    /// Whether this graph is a training step: layers that act differently while training (batch
    /// statistics and their running averages, dropout) read it. Default false (evaluation and
    /// inference); `ModelStep` sets it for the programs that train.
    public var training = false

    public init() {}

    /// A handle to the node with this id.
    public func tensor(_ id: Int) -> Tensor { Tensor(graph: self, id: id) }

    /// The node behind a tensor handle.
    public func node(_ t: Tensor) -> Node { nodes[t.id] }

    /// All input nodes of a kind (feeds or parameters), in creation order.
    public func inputs(_ kind: InputKind) -> [Tensor] {
        nodes.filter { $0.op == .input(kind) }.map { tensor($0.id) }
    }

    func append(_ op: Op, _ inputs: [Tensor], _ shape: Shape, _ dtype: DType, name: String? = nil) throws -> Tensor {
        if let foreign = inputs.first(where: { $0.graph !== self }) {
            throw KilnError.invalidArgument(op: op.name, message: "input \(foreign) belongs to another graph")
        }
        return appendLeaf(op, inputs, shape, dtype, name: name)
    }

    /// Appends a node whose inputs are known to be this graph's.
    private func appendLeaf(_ op: Op, _ inputs: [Tensor], _ shape: Shape, _ dtype: DType, name: String? = nil) -> Tensor {
        let id = nodes.count
        nodes.append(Node(id: id, op: op, inputs: inputs.map(\.id), shape: shape, dtype: dtype, name: name, role: role))
        return Tensor(graph: self, id: id)
    }

    // MARK: Leaves

    /// A tensor fed on every run (a batch of data or labels).
    public func placeholder(_ name: String, _ shape: Shape, _ dtype: DType = .float32) throws -> Tensor {
        try checkDims("placeholder '\(name)'", shape)
        return try append(.input(.feed), [], shape, dtype, name: name)
    }

    /// A trainable tensor whose value lives with the backend between runs.
    public func parameter(_ name: String, _ shape: Shape, _ dtype: DType = .float32) throws -> Tensor {
        try checkDims("parameter '\(name)'", shape)
        guard dtype.isFloatingPoint else {
            throw KilnError.invalidArgument(op: "parameter '\(name)'", message: "parameters must be float32 or float64, got \(dtype)")
        }
        return try append(.input(.parameter), [], shape, dtype, name: name)
    }

    /// Non-trainable persistent state (an optimizer's moments), zero until written.
    public func state(_ name: String, _ shape: Shape, _ dtype: DType = .float32) throws -> Tensor {
        try checkDims("state '\(name)'", shape)
        return try append(.input(.state), [], shape, dtype, name: name)
    }

    /// Records that a run ends by writing `value` into the parameter or state `target`. All
    /// reads of `target` in the run see its old value.
    public func assign(_ target: Tensor, _ value: Tensor) throws {
        let op = target.node.op
        guard op == .input(.parameter) || op == .input(.state) else {
            throw KilnError.invalidArgument(op: "assign", message: "target \(target.node.label) is not a parameter or state tensor")
        }
        guard value.shape == target.shape, value.dtype == target.dtype else {
            throw KilnError.shapeMismatch(op: "assign", message: "value \(value.dtype) \(value.shape) does not fit \(target.node.label) \(target.dtype) \(target.shape)")
        }
        guard !updates.contains(where: { $0.target == target }) else {
            throw KilnError.invalidArgument(op: "assign", message: "\(target.node.label) is assigned twice")
        }
        updates.append((target, value))
    }

    /// A scalar constant; broadcasting spreads it over any shape.
    public func constant(_ value: Double, _ dtype: DType = .float32) -> Tensor {
        appendLeaf(.constant(value), [], .scalar, dtype)
    }

    private func checkDims(_ what: String, _ shape: Shape) throws {
        if let d = shape.dims.first(where: { $0 < 0 }) {
            throw KilnError.invalidArgument(op: what, message: "dimension \(d) in shape \(shape) is negative")
        }
    }

    // MARK: Elementwise

    public func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor {
        try requireFloat(op.rawValue, x)
        // Made before a transpose it reads (see GraphLayout.swift).
        if let (input, perm) = transposeSource(x) { return try transpose(unary(op, input), perm: perm) }
        return try append(.unary(op), [x], x.shape, x.dtype)
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try requireFloat(op.rawValue, a, b)
        guard a.dtype == b.dtype else {
            throw KilnError.shapeMismatch(op: op.rawValue, message: "dtypes differ: \(a.dtype) \(a.shape) and \(b.dtype) \(b.shape)")
        }
        guard let shape = Shape.broadcast(a.shape, b.shape) else {
            throw KilnError.shapeMismatch(op: op.rawValue, message: "shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        if let sunk = try sunkBinary(op, a, b, shape: shape) { return sunk }
        return try append(.binary(op), [a, b], shape, a.dtype)
    }

    // MARK: Reductions

    /// Reduces `x` over `axes` (negative axes count from the end; empty means all axes).
    public func reduce(_ op: ReduceOp, _ x: Tensor, axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        let name = op.rawValue
        try requireFloat(name, x)
        let rank = x.shape.rank
        var norm: [Int] = []
        for a in axes ?? Array(0..<rank) {
            let n = a < 0 ? a + rank : a
            guard n >= 0 && n < rank else {
                throw KilnError.invalidArgument(op: name, message: "axis \(a) is out of range for shape \(x.shape)")
            }
            guard !norm.contains(n) else {
                throw KilnError.invalidArgument(op: name, message: "axis \(a) is given twice")
            }
            norm.append(n)
        }
        norm.sort()
        if op != .sum, let empty = norm.first(where: { x.shape[$0] == 0 }) {
            throw KilnError.invalidArgument(op: name, message: "axis \(empty) of shape \(x.shape) is empty")
        }
        if let sunk = try sunkReduce(op, x, axes: norm, keepDims: keepDims) { return sunk }
        let out = (0..<rank).compactMap { i -> Int? in
            norm.contains(i) ? (keepDims ? 1 : nil) : x.shape[i]
        }
        return try append(.reduce(op, axes: norm, keepDims: keepDims), [x], Shape(out), x.dtype)
    }

    /// softmax of `x` along `axis` (negative counts from the end), or log-softmax when `log`:
    /// one kernel (see `Op.softmax`).
    public func softmax(_ x: Tensor, axis: Int = -1, log: Bool = false) throws -> Tensor {
        let name = log ? "logSoftmax" : "softmax"
        try requireFloat(name, x)
        let a = try normalizedAxis(name, axis, x.shape)
        guard x.shape[a] > 0 else { throw KilnError.invalidArgument(op: name, message: "axis \(a) of shape \(x.shape) is empty") }
        return try append(.softmax(axis: a, log: log), [x], x.shape, x.dtype)
    }

    /// The gradient of `softmax` from its output `y` and the upstream gradient (see `Op.softmaxGrad`).
    public func softmaxGrad(_ y: Tensor, upstream: Tensor, axis: Int, log: Bool) throws -> Tensor {
        try requireFloat("softmaxGrad", y, upstream)
        let a = axis < 0 ? axis + y.shape.rank : axis
        guard a >= 0, a < y.shape.rank, upstream.shape == y.shape, upstream.dtype == y.dtype else {
            throw KilnError.shapeMismatch(op: "softmaxGrad", message: "output \(y.dtype) \(y.shape), upstream \(upstream.dtype) \(upstream.shape), axis \(axis): the upstream must match the output and the axis lie in it")
        }
        return try append(.softmaxGrad(axis: a, log: log), [y, upstream], y.shape, y.dtype)
    }

    /// Layer normalization of `x` over its last axis without the affine part, or RMS norm when
    /// `rms`: one kernel (see `Op.layerNorm`).
    public func layerNorm(_ x: Tensor, epsilon: Double = 1e-5, rms: Bool = false) throws -> Tensor {
        let name = rms ? "rmsNorm" : "layerNorm"
        try requireFloat(name, x)
        guard x.shape.rank >= 1, x.shape[x.shape.rank - 1] > 0 else {
            throw KilnError.invalidArgument(op: name, message: "needs a last axis to normalize over, got shape \(x.shape)")
        }
        guard epsilon > 0, epsilon.isFinite else {
            throw KilnError.invalidArgument(op: name, message: "epsilon must be a positive number, got \(epsilon)")
        }
        return try append(.layerNorm(epsilon: epsilon, rms: rms), [x], x.shape, x.dtype)
    }

    /// The gradient of `layerNorm` from its input and the upstream gradient (see `Op.layerNormGrad`).
    public func layerNormGrad(_ x: Tensor, upstream: Tensor, epsilon: Double, rms: Bool) throws -> Tensor {
        try requireFloat("layerNormGrad", x, upstream)
        guard x.shape.rank >= 1, upstream.shape == x.shape, upstream.dtype == x.dtype else {
            throw KilnError.shapeMismatch(op: "layerNormGrad", message: "input \(x.dtype) \(x.shape) and upstream \(upstream.dtype) \(upstream.shape) must match")
        }
        return try append(.layerNormGrad(epsilon: epsilon, rms: rms), [x, upstream], x.shape, x.dtype)
    }

    // MARK: Linear algebra and layout

    /// `op(a) @ op(b)`, where `op` transposes the last two axes when asked: 2-D tensors, or a
    /// batch of matrices (`[..., m, k]` and `[..., k, n]` with the same leading axes give
    /// `[..., m, n]`, each matrix of the batch on its own). `Tensor.matmul` broadcasts leading
    /// axes on top of this.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        try requireFloat("matmul", a, b)
        let rank = a.shape.rank
        guard rank >= 2, b.shape.rank == rank, a.dtype == b.dtype else {
            throw KilnError.shapeMismatch(op: "matmul", message: "needs two tensors of one dtype and one rank of at least 2 (matrices, or batches of them), got \(a.dtype) \(a.shape) and \(b.dtype) \(b.shape)")
        }
        let batch = Array(a.shape.dims.prefix(rank - 2))
        guard Array(b.shape.dims.prefix(rank - 2)) == batch else {
            throw KilnError.shapeMismatch(op: "matmul", message: "batch axes differ: A \(a.shape) and B \(b.shape) (\(batch) vs \(Array(b.shape.dims.prefix(rank - 2))))")
        }
        let (a0, a1, b0, b1) = (a.shape[rank - 2], a.shape[rank - 1], b.shape[rank - 2], b.shape[rank - 1])
        let (m, k1) = transposeA ? (a1, a0) : (a0, a1)
        let (k2, n) = transposeB ? (b1, b0) : (b0, b1)
        guard k1 == k2 else {
            let ta = transposeA ? "ᵀ" : "", tb = transposeB ? "ᵀ" : ""
            throw KilnError.shapeMismatch(op: "matmul", message: "inner dimensions differ: A\(ta) \(a.shape) and B\(tb) \(b.shape) (\(k1) vs \(k2))")
        }
        return try append(.matmul(transposeA: transposeA, transposeB: transposeB), [a, b], Shape(batch + [m, n]), a.dtype)
    }

    /// Permutes axes: output axis `i` is input axis `perm[i]`. Without `perm`, reverses them.
    public func transpose(_ x: Tensor, perm: [Int]? = nil) throws -> Tensor {
        let rank = x.shape.rank
        let p = perm ?? Array((0..<rank).reversed())
        guard p.count == rank, p.sorted() == Array(0..<rank) else {
            throw KilnError.invalidArgument(op: "transpose", message: "\(p) is not a permutation of the axes of shape \(x.shape)")
        }
        // A transpose of a transpose is one (none where they cancel): sinking meets the
        // gradient's transposes on the way back.
        if let (input, inner) = transposeSource(x) {
            let composed = p.map { inner[$0] }
            if composed == Array(0..<rank) { return input }
            return try append(.transpose(perm: composed), [input], Shape(p.map { x.shape[$0] }), x.dtype)
        }
        return try append(.transpose(perm: p), [x], Shape(p.map { x.shape[$0] }), x.dtype)
    }

    /// The same elements in row-major order under a new shape; one dimension may be -1.
    public func reshape(_ x: Tensor, _ shape: Shape) throws -> Tensor {
        var dims = shape.dims
        let unknown = dims.indices.filter { dims[$0] == -1 }
        if unknown.count == 1 {
            let known = dims.filter { $0 != -1 }.reduce(1, *)
            if known > 0 && x.shape.count % known == 0 { dims[unknown[0]] = x.shape.count / known }
        }
        guard dims.allSatisfy({ $0 >= 0 }), Shape(dims).count == x.shape.count else {
            throw KilnError.shapeMismatch(op: "reshape", message: "cannot reshape \(x.shape) (\(x.shape.count) elements) to \(shape)")
        }
        return try append(.reshape, [x], Shape(dims), x.dtype)
    }

    /// `x` itself, through which autodiff passes no gradient (PyTorch's `detach`, JAX's
    /// `stop_gradient`): a reshape to its own shape, so it costs no kernel.
    public func stopGradient(_ x: Tensor) throws -> Tensor {
        let t = try append(.reshape, [x], x.shape, x.dtype, name: "stopGradient")
        detached.insert(t.id)
        return t
    }

    /// Repeats `x` along broadcast axes to `shape` (NumPy rules).
    public func broadcast(_ x: Tensor, to shape: Shape) throws -> Tensor {
        guard x.shape.broadcasts(to: shape) else {
            throw KilnError.shapeMismatch(op: "broadcastTo", message: "shape \(x.shape) does not broadcast to \(shape)")
        }
        return try append(.broadcastTo, [x], shape, x.dtype)
    }

    // MARK: Embeddings

    /// Embedding lookup: int32 `ids` of shape `S` pick rows of `table` `[V, D]`, giving `S + [D]`.
    public func gather(_ table: Tensor, ids: Tensor) throws -> Tensor {
        guard ids.dtype == .int32 else {
            throw KilnError.shapeMismatch(op: "gather", message: "ids must be int32, got \(ids.dtype) \(ids.shape)")
        }
        guard table.shape.rank == 2, table.dtype.isFloatingPoint else {
            throw KilnError.shapeMismatch(op: "gather", message: "table must be a 2-D float tensor [V, D], got \(table.dtype) \(table.shape)")
        }
        return try append(.gather, [ids, table], Shape(ids.shape.dims + [table.shape[1]]), table.dtype)
    }

    /// Sums rows of `values` (`S + [D]`) into a `[rows, D]` tensor at the int32 `ids` (`S`).
    public func scatterAdd(_ values: Tensor, ids: Tensor, rows: Int) throws -> Tensor {
        guard ids.dtype == .int32, values.dtype.isFloatingPoint, values.shape.rank == ids.shape.rank + 1,
              Array(values.shape.dims.dropLast()) == ids.shape.dims else {
            throw KilnError.shapeMismatch(op: "scatterAdd", message: "values \(values.dtype) \(values.shape) must be float with shape ids \(ids.shape) + [D], ids int32 (got \(ids.dtype))")
        }
        guard rows >= 0 else { throw KilnError.invalidArgument(op: "scatterAdd", message: "rows \(rows) is negative") }
        return try append(.scatterAdd(rows: rows), [ids, values], [rows, values.shape.dims.last!], values.dtype)
    }

    // MARK: Labels

    /// Int32 `labels` of shape `S` as a float tensor `S + [classes]`: 1 at the label, 0
    /// elsewhere. A label equal to `ignoreIndex` gives a row of zeros (how losses implement
    /// PyTorch's ignore_index); any other label outside `[0, classes)` is an error when run.
    /// No gradient flows through it (its input is int32).
    public func oneHot(_ labels: Tensor, classes: Int, ignoreIndex: Int? = nil, dtype: DType = .float32) throws -> Tensor {
        guard labels.dtype == .int32 else {
            throw KilnError.shapeMismatch(op: "oneHot", message: "labels must be int32, got \(labels.dtype) \(labels.shape)")
        }
        guard dtype.isFloatingPoint else {
            throw KilnError.invalidArgument(op: "oneHot", message: "dtype must be float32 or float64, got \(dtype) (labels \(labels.shape))")
        }
        guard classes > 0 else {
            throw KilnError.invalidArgument(op: "oneHot", message: "classes must be positive, got \(classes) (labels \(labels.shape))")
        }
        if let i = ignoreIndex, Int32(exactly: i) == nil {
            throw KilnError.invalidArgument(op: "oneHot", message: "ignoreIndex \(i) is not an int32 value, so no label can equal it")
        }
        return try append(.oneHot(classes: classes, ignoreIndex: ignoreIndex), [labels], Shape(labels.shape.dims + [classes]), dtype)
    }

    // MARK: Data parallelism

    /// The sum of `x` over the processes of a data-parallel job: each process contributes its
    /// own value and all receive the total. In a single process (or on a backend loaded
    /// without a collective) it is `x`. Compiled steps place these between the gradients and
    /// the optimizer's update, grouped into buckets that travel together.
    public func allReduce(_ x: Tensor) throws -> Tensor {
        try requireFloat("allReduce", x)
        return try append(.allReduce, [x], x.shape, x.dtype)
    }

    // MARK: Losses and metrics

    /// Mean over the batch of the softmax cross-entropy of `logits` `[B, C]` against int32
    /// `labels` `[B]`; computed through log-sum-exp, so large logits stay finite.
    public func softmaxCrossEntropy(logits: Tensor, labels: Tensor) throws -> Tensor {
        try checkLogitsAndLabels("softmaxCrossEntropy", logits, labels)
        return try append(.softmaxCrossEntropy, [logits, labels], .scalar, logits.dtype)
    }

    func softmaxCrossEntropyGrad(logits: Tensor, labels: Tensor, upstream: Tensor) throws -> Tensor {
        try checkLogitsAndLabels("softmaxCrossEntropyGrad", logits, labels)
        return try append(.softmaxCrossEntropyGrad, [logits, labels, upstream], logits.shape, logits.dtype)
    }

    /// The int32 index of the largest value along `axis` (the first on ties).
    public func argmax(_ x: Tensor, axis: Int = -1) throws -> Tensor {
        try requireFloat("argmax", x)
        let a = axis < 0 ? axis + x.shape.rank : axis
        guard a >= 0 && a < x.shape.rank else {
            throw KilnError.invalidArgument(op: "argmax", message: "axis \(axis) is out of range for shape \(x.shape)")
        }
        guard x.shape[a] > 0 else {
            throw KilnError.invalidArgument(op: "argmax", message: "axis \(axis) of shape \(x.shape) is empty")
        }
        var dims = x.shape.dims
        dims.remove(at: a)
        return try append(.argmax(axis: a), [x], Shape(dims), .int32)
    }

    /// The fraction of rows of `logits` `[B, C]` whose argmax equals the int32 label.
    public func accuracy(logits: Tensor, labels: Tensor) throws -> Tensor {
        try checkLogitsAndLabels("accuracy", logits, labels)
        return try append(.accuracy, [logits, labels], .scalar, logits.dtype)
    }

    private func checkLogitsAndLabels(_ op: String, _ logits: Tensor, _ labels: Tensor) throws {
        guard logits.dtype.isFloatingPoint, logits.shape.rank == 2, labels.dtype == .int32,
              labels.shape.rank == 1, labels.shape[0] == logits.shape[0] else {
            throw KilnError.shapeMismatch(op: op, message: "needs float logits [B, C] and int32 labels [B], got \(logits.dtype) \(logits.shape) and \(labels.dtype) \(labels.shape)")
        }
        guard logits.shape[0] > 0 else {
            throw KilnError.invalidArgument(op: op, message: "empty batch: logits have shape \(logits.shape)")
        }
        guard logits.shape[1] > 0 else {
            throw KilnError.invalidArgument(op: op, message: "no classes: logits have shape \(logits.shape)")
        }
    }

    func requireFloat(_ op: String, _ ts: Tensor...) throws {
        for t in ts where !t.dtype.isFloatingPoint {
            throw KilnError.shapeMismatch(op: op, message: "needs float tensors, got \(t.dtype) \(t.shape)")
        }
    }
}
