import KilnGraph

/// A compiled step: a topologically ordered schedule of kernels and the buffers they address.
/// It is independent of the backend: the CPU and OpenCL backends both run it.
public struct Program: @unchecked Sendable {
    /// The graph this was compiled from (for names in messages and listings).
    public let graph: Graph
    /// Every kernel, in the order they run.
    public let kernels: [Kernel]
    /// Buffer 0 is the arena of transient tensors; then one buffer per feed, parameter and
    /// state tensor, and one for scalar constants.
    public let buffers: [BufferDecl]
    /// Where each fetched tensor lives after a run, in the order given to `compile`.
    public let fetches: [Operand]
    /// The scalar constants to write into the constants buffer when the program is loaded.
    public let constants: [(location: Location, value: Double)]
    /// The float type every float tensor is computed in.
    public let realType: DType
    /// What the memory plan achieved.
    public let memory: MemoryStats
    /// Whether elementwise fusion was on.
    public let fused: Bool
    /// The all-reduce buckets: tensors summed across processes together, in one transfer.
    public let buckets: [AllReduceBucket]

    /// The buffer holding an input (feed, parameter or state) node's value.
    public func buffer(for node: Int) -> Int? {
        buffers.firstIndex { $0.node == node }
    }
}

/// A device buffer the program needs.
public struct BufferDecl: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case arena, feed, parameter, state, constants
    }
    public let kind: Kind
    /// The input node it holds, for feeds, parameters and state.
    public let node: Int?
    public let name: String
    public let bytes: Int
}

/// A place in a buffer: the buffer's index and a byte offset (a multiple of 64, so any element
/// type can address it).
public struct Location: Sendable, Hashable {
    public let buffer: Int
    public let byteOffset: Int

    public init(buffer: Int, byteOffset: Int) {
        self.buffer = buffer
        self.byteOffset = byteOffset
    }
}

/// A tensor as a kernel sees it: where it lives, its shape and type, and the node it holds.
public struct Operand: Sendable, Hashable {
    public let location: Location
    public let shape: Shape
    public let dtype: DType
    public let node: Int
    /// Element strides per axis where the tensor is a strided view of another's memory (a
    /// transpose that a matmul reads in place); nil: row-major and contiguous.
    public let strides: [Int]?

    public init(location: Location, shape: Shape, dtype: DType, node: Int, strides: [Int]? = nil) {
        self.location = location
        self.shape = shape
        self.dtype = dtype
        self.node = node
        self.strides = strides
    }

    /// How a matmul reads this operand as a batch of matrices, `transposed` as the matmul asks
    /// (see `MatrixLayout`).
    public func matrixLayout(transposed: Bool) -> MatrixLayout {
        Self.matrixLayout(shape: shape, strides: strides, transposed: transposed)!
    }

    /// The layout of a `shape` with `strides` (nil: contiguous), or nil where its matrices are
    /// stored neither by rows nor by columns with a leading dimension BLAS accepts.
    public static func matrixLayout(shape: Shape, strides: [Int]?, transposed: Bool) -> MatrixLayout? {
        let r = shape.rank
        let s = strides ?? shape.strides
        let (rows, cols) = (shape[r - 2], shape[r - 1])
        // By rows (unit column stride) keeps the matmul's transpose; by columns flips it. A
        // leading dimension over an axis of size 1 is free: the smallest BLAS accepts.
        let byRows = (cols == 1 || s[r - 1] == 1) && (rows == 1 || s[r - 2] >= cols)
        let byColumns = (rows == 1 || s[r - 2] == 1) && (cols == 1 || s[r - 1] >= rows)
        guard byRows || byColumns else { return nil }
        let ld = byRows ? (rows == 1 ? max(cols, 1) : s[r - 2]) : (cols == 1 ? max(rows, 1) : s[r - 1])
        guard strides != nil, r > 2 else {
            return MatrixLayout(transposed: byRows ? transposed : !transposed, ld: ld, inner: 1,
                                outerStride: shape[r - 2] * shape[r - 1], innerStride: 0)
        }
        if r == 3 { return MatrixLayout(transposed: byRows ? transposed : !transposed, ld: ld, inner: 1, outerStride: s[0], innerStride: 0) }
        return MatrixLayout(transposed: byRows ? transposed : !transposed, ld: ld, inner: shape[1], outerStride: s[0], innerStride: s[1])
    }

    /// The offset in elements of `elementSize` bytes.
    public func offset(elementSize: Int) -> Int { location.byteOffset / elementSize }
}

/// Where a matmul finds each matrix of a batched operand: matrix `batch` starts at
/// `(batch / inner)·outerStride + (batch % inner)·innerStride` elements in, its rows `ld` apart
/// (its columns when `transposed`, which already folds in how the operand is stored). At most
/// two batch axes: the outer and the inner.
public struct MatrixLayout: Sendable, Hashable {
    public let transposed: Bool
    public let ld: Int
    public let inner: Int
    public let outerStride: Int
    public let innerStride: Int

    /// The element offset of matrix `batch`.
    public func offset(batch: Int) -> Int { (batch / inner) * outerStride + (batch % inner) * innerStride }
}

/// One instruction of a fused elementwise computation, in static single assignment form: its
/// value is referred to by its index in the code.
public enum Instr: Sendable, Hashable {
    /// The kernel input with this index, read at the current element (with broadcasting).
    case load(Int)
    /// The matmul's accumulated value at the current element (epilogues only).
    case accumulator
    case constant(Double)
    case unary(UnaryOp, Int)
    case binary(BinaryOp, Int, Int)
}

/// A fused elementwise computation over an iteration shape.
public struct FusedCode: Sendable, Hashable {
    /// The shape iterated over; every input broadcasts to it.
    public var shape: Shape
    public var code: [Instr]
    /// The instructions whose values are written to the kernel's outputs, in order.
    public var results: [Int]
    /// The graph node each instruction computes (nil for loads and constants).
    public var nodes: [Int?]

    public init(shape: Shape, code: [Instr], results: [Int], nodes: [Int?]) {
        self.shape = shape
        self.code = code
        self.results = results
        self.nodes = nodes
    }

    /// The code of result `k` alone: the instructions it needs, in their order (loads keep their
    /// input indices).
    public func only(result k: Int) -> FusedCode {
        var keep = [Bool](repeating: false, count: code.count)
        keep[results[k]] = true
        for i in stride(from: results[k], through: 0, by: -1) where keep[i] {
            switch code[i] {
            case .unary(_, let a): keep[a] = true
            case let .binary(_, a, b): keep[a] = true; keep[b] = true
            case .load, .accumulator, .constant: break
            }
        }
        var index = [Int](repeating: -1, count: code.count), kept: [Instr] = [], keptNodes: [Int?] = []
        for i in code.indices where keep[i] {
            index[i] = kept.count
            switch code[i] {
            case let .unary(op, a): kept.append(.unary(op, index[a]))
            case let .binary(op, a, b): kept.append(.binary(op, index[a], index[b]))
            case let other: kept.append(other)
            }
            keptNodes.append(nodes[i])
        }
        return FusedCode(shape: shape, code: kept, results: [index[results[k]]], nodes: keptNodes)
    }
}

/// One launch of the schedule.
public struct Kernel: Sendable {
    public enum Kind: Sendable, Hashable {
        /// Fused elementwise code; writes one output per result.
        case elementwise(FusedCode)
        /// Reduces each result of `input` (over its shape) along `axes` into the output of the
        /// same index: reductions of one space share a pass over their inputs.
        case reduce(ReduceOp, axes: [Int], input: FusedCode)
        /// `op(inputs[0]) @ op(inputs[1])`, then the epilogue (which may load `inputs[2...]`).
        case matmul(transposeA: Bool, transposeB: Bool, epilogue: FusedCode?)
        /// One node computed by a kernel of its own: an op of fusion class `.kernel`
        /// (transpose, gather, scatterAdd, softmaxCrossEntropy and its gradient, argmax,
        /// accuracy, oneHot). Backends switch on the op.
        case node(Op)
        /// Copies `inputs` into bucket `bucket`'s contiguous host space and starts their sum
        /// across the processes of a data-parallel job. Placed right after the last of them is
        /// computed, so the transfer overlaps the kernels that follow.
        case allReduceStart(bucket: Int)
        /// Waits for bucket `bucket`'s sum and writes it to `outputs` (in the start's order).
        /// Placed right before the first kernel that reads one of them.
        case allReduceFinish(bucket: Int)
    }

    /// A unique name: the kind and the index in the schedule.
    public let name: String
    public let kind: Kind
    public let inputs: [Operand]
    public let outputs: [Operand]
    /// The graph nodes this kernel computes.
    public let nodes: [Int]

    /// Floating-point operations, for profiling (matmul: 2mnk; others: about one per element).
    public var flops: Int {
        switch kind {
        case let .matmul(ta, _, _):
            let a = inputs[0].shape
            return 2 * outputs[0].shape.count * a[a.rank - (ta ? 2 : 1)]
        case .elementwise(let f): return f.shape.count * max(1, f.code.count - inputs.count)
        case .reduce(_, _, let f): return f.shape.count * max(1, f.code.count)
        default: return outputs.reduce(0) { $0 + $1.shape.count }
        }
    }

    /// A matmul kernel's product from its operands: the batch, m, n and k (its outputs may
    /// have another shape of as many elements: a reshape read by the epilogue).
    public var matmulDimensions: (batches: Int, m: Int, n: Int, k: Int)? {
        guard case let .matmul(ta, tb, _) = kind else { return nil }
        let a = inputs[0].shape, b = inputs[1].shape, r = a.rank
        return (a.dims.prefix(r - 2).reduce(1, *), ta ? a[r - 1] : a[r - 2], tb ? b[r - 2] : b[r - 1], ta ? a[r - 2] : a[r - 1])
    }

    /// A reduction of several results as one kernel per result, each reading the same inputs:
    /// for backends and forms that do not share a pass (the kernel itself where it has one).
    public func reductionsApart() -> [Kernel] {
        guard case let .reduce(op, axes, f) = kind, f.results.count > 1 else { return [self] }
        return f.results.indices.map { k in
            Kernel(name: k == 0 ? name : "\(name)_\(k)", kind: .reduce(op, axes: axes, input: f.only(result: k)), inputs: inputs,
                   outputs: [outputs[k]], nodes: nodes)
        }
    }

    /// Bytes read and written, for profiling.
    public func bytesMoved(realSize: Int) -> Int {
        (inputs + outputs).reduce(0) { $0 + $1.shape.count * ($1.dtype == .int32 ? 4 : realSize) }
    }
}

/// Tensors that an all-reduce sums together: they are copied side by side into one
/// contiguous space of `elements` values and cross the network as one message.
public struct AllReduceBucket: Sendable, Hashable {
    /// The `allReduce` nodes, in the order of the start kernel's inputs.
    public let nodes: [Int]
    /// Where each tensor starts in the bucket, in elements.
    public let offsets: [Int]
    /// The bucket's size in elements.
    public let elements: Int

    /// Where tensor `i` lies in the bucket, in elements.
    public func range(of i: Int) -> Range<Int> {
        offsets[i]..<(i + 1 < offsets.count ? offsets[i + 1] : elements)
    }
}

/// The memory plan's figures, in bytes.
public struct MemoryStats: Sendable, Hashable {
    /// The arena holding every transient tensor.
    public let arenaBytes: Int
    /// The sum of the sizes of all transient tensors (what the arena would be without reuse).
    public let transientBytes: Int
    /// The largest total size of transient tensors live at one point of the schedule: no
    /// arena can be smaller.
    public let liveLowerBound: Int
    /// Parameters, state, feeds and constants.
    public let persistentBytes: Int
}
