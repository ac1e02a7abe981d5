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

    public func matmul(_ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        try graph.matmul(self, b, transposeA: transposeA, transposeB: transposeB)
    }
    public func transposed(_ perm: [Int]? = nil) throws -> Tensor { try graph.transpose(self, perm: perm) }
    public func reshaped(_ shape: Shape) throws -> Tensor { try graph.reshape(self, shape) }
    public func broadcast(to shape: Shape) throws -> Tensor { try graph.broadcast(self, to: shape) }

    /// These int32 labels as a float one-hot tensor `shape + [classes]` (see `Graph.oneHot`).
    public func oneHot(classes: Int, ignoreIndex: Int? = nil, dtype: DType = .float32) throws -> Tensor {
        try graph.oneHot(self, classes: classes, ignoreIndex: ignoreIndex, dtype: dtype)
    }
}
