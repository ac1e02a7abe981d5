/// A symbolic tensor: a handle to one node of a `Graph`. Operators and methods append nodes.
public struct Tensor: Hashable, @unchecked Sendable, CustomStringConvertible {
    public let graph: Graph
    public let id: Int

    public var node: Node { graph.nodes[id] }
    public var shape: Shape { node.shape }
    public var dtype: DType { node.dtype }
    public var description: String { "\(node.label): \(dtype) \(shape)" }

    public static func == (a: Tensor, b: Tensor) -> Bool { a.graph === b.graph && a.id == b.id }
    public func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(graph)); h.combine(id) }

    /// A scalar constant of this tensor's dtype, in its graph.
    public func scalar(_ v: Double) -> Tensor { graph.constant(v, dtype) }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.graph.binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.graph.binary(.sub, a, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.graph.binary(.mul, a, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.graph.binary(.div, a, b) }
    public static func + (a: Tensor, b: Double) throws -> Tensor { try a + a.scalar(b) }
    public static func - (a: Tensor, b: Double) throws -> Tensor { try a - a.scalar(b) }
    public static func * (a: Tensor, b: Double) throws -> Tensor { try a * a.scalar(b) }
    public static func / (a: Tensor, b: Double) throws -> Tensor { try a / a.scalar(b) }
    public static func + (a: Double, b: Tensor) throws -> Tensor { try b.scalar(a) + b }
    public static func - (a: Double, b: Tensor) throws -> Tensor { try b.scalar(a) - b }
    public static func * (a: Double, b: Tensor) throws -> Tensor { try b.scalar(a) * b }
    public static func / (a: Double, b: Tensor) throws -> Tensor { try b.scalar(a) / b }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.graph.unary(.neg, a) }

    public func exp() throws -> Tensor { try graph.unary(.exp, self) }
    public func log() throws -> Tensor { try graph.unary(.log, self) }
    public func sqrt() throws -> Tensor { try graph.unary(.sqrt, self) }
    public func tanh() throws -> Tensor { try graph.unary(.tanh, self) }
    public func sigmoid() throws -> Tensor { try graph.unary(.sigmoid, self) }
    public func relu() throws -> Tensor { try graph.unary(.relu, self) }
    public func maximum(_ b: Tensor) throws -> Tensor { try graph.binary(.maximum, self, b) }
    public func minimum(_ b: Tensor) throws -> Tensor { try graph.binary(.minimum, self, b) }

    public func sum(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        try graph.reduce(.sum, self, axes: axes, keepDims: keepDims)
    }
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        try graph.reduce(.mean, self, axes: axes, keepDims: keepDims)
    }
    public func max(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        try graph.reduce(.max, self, axes: axes, keepDims: keepDims)
    }

    /// `op(self) @ op(b)` (`op` transposes the last two axes when asked), with NumPy's
    /// broadcasting of the leading axes: `[B, T, C] @ [C, D]` is one matmul of `[B·T, C]`
    /// rows, `[B, H, T, d] @ [B, H, d, T]` a batch of `B·H` matmuls, and a matrix against a
    /// batch is repeated over it.
    public func matmul(_ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        let (ra, rb) = (shape.rank, b.shape.rank)
        guard ra >= 2, rb >= 2, ra != rb || shape.dims.prefix(ra - 2) != b.shape.dims.prefix(rb - 2) else {
            return try graph.matmul(self, b, transposeA: transposeA, transposeB: transposeB)
        }
        let lead = Shape(Array(shape.dims.prefix(ra - 2))), bLead = Shape(Array(b.shape.dims.prefix(rb - 2)))
        if rb == 2 && !transposeA {
            // Every matrix of the batch times one B: one matmul of all their rows.
            let rows = try reshaped([-1, shape[ra - 1]]).matmul(b, transposeB: transposeB)
            return try rows.reshaped(Shape(lead.dims + [shape[ra - 2], rows.shape[1]]))
        }
        guard let batch = Shape.broadcast(lead, bLead) else {
            throw KilnError.shapeMismatch(op: "matmul", message: "batch axes of A \(shape) and B \(b.shape) do not broadcast (\(lead) vs \(bLead))")
        }
        let a2 = lead == batch ? self : try broadcast(to: Shape(batch.dims + shape.dims.suffix(2)))
        let b2 = bLead == batch ? b : try b.broadcast(to: Shape(batch.dims + b.shape.dims.suffix(2)))
        return try graph.matmul(a2, b2, transposeA: transposeA, transposeB: transposeB)
    }
    public func transposed(_ perm: [Int]? = nil) throws -> Tensor { try graph.transpose(self, perm: perm) }
    public func reshaped(_ shape: Shape) throws -> Tensor { try graph.reshape(self, shape) }
    public func broadcast(to shape: Shape) throws -> Tensor { try graph.broadcast(self, to: shape) }
    /// This tensor with no gradient flowing back through it (see `Graph.stopGradient`).
    public func detached() throws -> Tensor { try graph.stopGradient(self) }

    /// These int32 labels as a float one-hot tensor `shape + [classes]` (see `Graph.oneHot`).
    public func oneHot(classes: Int, ignoreIndex: Int? = nil, dtype: DType = .float32) throws -> Tensor {
        try graph.oneHot(self, classes: classes, ignoreIndex: ignoreIndex, dtype: dtype)
    }
}
