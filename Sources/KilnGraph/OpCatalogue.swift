// The op catalogue: every op's definition (its case, its OpenCL C where it is elementwise, the
// inputs its tests draw), its entry in `OpKind` (fusion class and the checks it owes) and how
// to make it generically. Shape rules are in Graph.swift, gradient rules in Gradients.swift,
// CPU kernels in KilnCPU (FusedEvaluator, CPUStep), OpenCL kernels in OpenCLCodegen and
// Kernels/, and the cases that check each op in Kiln/Checks/OpCases.swift; README's
// "Adding an op" lists them.

/// Elementwise functions of one tensor.
///
/// Each function is defined here once for OpenCL (`openCL`, from which the generated kernels'
/// `k_<name>` functions are written) and once for the CPU backend (`FusedEvaluator`), with its
/// gradient in `Graph.gradientRule` and the inputs its checks draw (`testDomain`).
public enum UnaryOp: String, Sendable, Hashable, CaseIterable {
    case neg, exp, log, sqrt, tanh, sigmoid, relu
    /// GELU's tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    case gelu
    /// GELU's derivative (of the tanh approximation), gelu'(x): its gradient is one op, not the
    /// twenty of its chain rule, as PyTorch's gelu_backward.
    case geluDerivative
    /// The error function (GELU's exact form is 0.5·x·(1 + erf(x/√2))).
    case erf

    /// The OpenCL C expression of `x` (of type `real`) that computes the op, matching the CPU
    /// backend: relu(0) = 0; tanh in float is the CPU backend's rational approximation.
    public var openCL: String {
        switch self {
        case .neg: "-x"
        case .exp: "exp(x)"
        case .log: "log(x)"
        case .sqrt: "sqrt(x)"
        case .tanh: "kiln_tanh(x)"
        case .sigmoid: "(real)1 / ((real)1 + exp(-x))"
        case .relu: "x > (real)0 ? x : (real)0"
        case .gelu: "kiln_gelu(x)"
        case .geluDerivative: "kiln_gelu_derivative(x)"
        case .erf: "erf(x)"
        }
    }

    /// Where tests draw inputs: inside the op's domain and away from points where the
    /// derivative jumps by more than finite differences resolve.
    public var testDomain: ClosedRange<Double> {
        switch self {
        case .log, .sqrt: 0.5...2
        case .neg, .exp, .tanh, .sigmoid, .relu: -1...1
        case .gelu, .geluDerivative, .erf: -2...2
        }
    }
}

/// Elementwise functions of two tensors, with NumPy broadcasting.
///
/// `greater` and `equal` give 1 where the comparison holds and 0 elsewhere (in the inputs'
/// float type); autodiff uses them as masks and they pass no gradient.
public enum BinaryOp: String, Sendable, Hashable, CaseIterable {
    case add, sub, mul, div, maximum, minimum, greater, equal
    /// `select(m, x)`: x where the mask m is nonzero, exactly 0 elsewhere (whatever x holds
    /// there, infinities and NaN included). `Graph.where` is built from it; the gradient flows
    /// to x alone.
    case select

    /// The OpenCL C expression of `a` and `b` (of type `real`), matching the CPU backend:
    /// maximum and minimum keep the first input on ties, comparisons give 1 or 0.
    public var openCL: String {
        switch self {
        case .add: "a + b"
        case .sub: "a - b"
        case .mul: "a * b"
        case .div: "a / b"
        case .maximum: "a >= b ? a : b"
        case .minimum: "a <= b ? a : b"
        case .greater: "a > b ? (real)1 : (real)0"
        case .equal: "a == b ? (real)1 : (real)0"
        case .select: "a != (real)0 ? b : (real)0"
        }
    }

    /// Where tests draw the second input (the first from -1...1).
    public var testDomainOfRight: ClosedRange<Double> {
        switch self {
        case .div: 0.5...2
        case .add, .sub, .mul, .maximum, .minimum, .greater, .equal, .select: -1...1
        }
    }
}

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
    /// `op(A) @ op(B)` of matrices, or of batches of them with the same leading axes, where
    /// `op` transposes the last two axes when asked.
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
    /// Int32 labels `S` give a float `S + [classes]`: 1 at the label, 0 elsewhere; a label equal
    /// to `ignoreIndex` gives a row of zeros (PyTorch's ignore_index), any other label outside
    /// `[0, classes)` is an error when run.
    case oneHot(classes: Int, ignoreIndex: Int?)
    /// A sliding window's patches (im2col): `[N, C, H, W]` gives `[N, OH, OW, C, KH, KW]`, the
    /// window at output position (oh, ow) over channel c; positions in the padding read
    /// `padValue`. Convolution is a matmul of its rows with the weights, pooling a reduction
    /// over its last two axes. A channels-last window takes `[N, H, W, C]` to `[N, OH, OW, KH,
    /// KW, C]`.
    case unfold(Window2D, padValue: Double)
    /// The gradient of `unfold` (col2im): `[N, OH, OW, C, KH, KW]` gives `[N, C, height,
    /// width]`, each pixel the sum of the patch entries that read it (the padding's dropped); a
    /// channels-last window, `[N, OH, OW, KH, KW, C]` to `[N, height, width, C]`.
    case fold(Window2D, height: Int, width: Int)
    /// Max pooling: `[N, C, H, W]` gives `[N, C, OH, OW]`, each window's largest value; the
    /// padding never wins (it reads as -infinity). A channels-last window pools `[N, H, W, C]`.
    case maxPool(Window2D)
    /// The gradient of `maxPool`: inputs (x `[N, C, H, W]`, upstream `[N, C, OH, OW]`) give
    /// `[N, C, H, W]`, each window's upstream value added at the window's first largest element
    /// of x in row-major order (PyTorch's routing); other elements get 0.
    case maxPoolGrad(Window2D)
    /// Uniform random values in [0, 1) of the node's shape, from the int32 scalar input (a step
    /// counter): Philox4x32-10 with key (seed, stream) and counter (b, counter, 0, 0) gives
    /// elements b, B + b, 2B + b and 3B + b (B = ceil(count / 4)) its four words' top 24 bits
    /// over 2^24, so every backend draws the same values and a run is repeatable from its
    /// counter alone.
    case uniform(seed: UInt32, stream: UInt32)
    /// softmax along `axis` (`log`: log-softmax), each slice shifted by its maximum so that any
    /// finite input gives a finite output: one kernel, not a chain of reductions.
    case softmax(axis: Int, log: Bool)
    /// The gradient of `softmax`: inputs (its output y, upstream g) give y·(g − Σ g·y) along
    /// `axis` (log-softmax: g − exp(y)·Σ g).
    case softmaxGrad(axis: Int, log: Bool)
    /// Layer normalization over the last axis without the affine part: (x − mean) / √(var + ε)
    /// with the biased variance; `rms`: RMS norm, x / √(mean(x²) + ε). One kernel.
    case layerNorm(epsilon: Double, rms: Bool)
    /// The gradient of `layerNorm`: inputs (x, upstream g) give r·(g − mean(g) − x̂·mean(g·x̂))
    /// along the last axis (RMS: without mean(g)), r = 1/√(var + ε), recomputed from x.
    case layerNormGrad(epsilon: Double, rms: Bool)
    /// A strided window of the input, the node's shape: output element i (per axis) is input
    /// element `starts + steps·i`, every step at least 1.
    case slice(starts: [Int], steps: [Int])
    /// The input spread over a tensor of `value` of the node's shape: input element i (per axis)
    /// lands at `low + (interior + 1)·i`, with `interior` values between neighbours (XLA's pad;
    /// PyTorch's constant pad where `interior` is 0). The adjoint of `slice`.
    case pad(low: [Int], interior: [Int], value: Double)
    /// The inputs, of one shape but along `axis`, joined in order along `axis`.
    case concat(axis: Int)

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
        case let .oneHot(classes, ignoreIndex):
            return "oneHot(classes: \(classes)\(ignoreIndex.map { ", ignoreIndex: \($0)" } ?? ""))"
        case let .unfold(w, padValue): return "unfold(\(w)\(padValue == 0 ? "" : ", pad value \(padValue)"))"
        case let .fold(w, height, width): return "fold(\(w), to \(height)x\(width))"
        case .maxPool(let w): return "maxPool(\(w))"
        case .maxPoolGrad(let w): return "maxPoolGrad(\(w))"
        case let .uniform(seed, stream): return "uniform(seed: \(seed), stream: \(stream))"
        case let .softmax(axis, log): return "\(log ? "logSoftmax" : "softmax")(axis: \(axis))"
        case let .softmaxGrad(axis, log): return "\(log ? "logSoftmax" : "softmax")Grad(axis: \(axis))"
        case let .layerNorm(eps, rms): return "\(rms ? "rmsNorm" : "layerNorm")(epsilon: \(eps))"
        case let .layerNormGrad(eps, rms): return "\(rms ? "rmsNorm" : "layerNorm")Grad(epsilon: \(eps))"
        case let .slice(starts, steps):
            return "slice(from \(starts)\(steps.allSatisfy { $0 == 1 } ? "" : " by \(steps)"))"
        case let .pad(low, interior, value):
            return "pad(low \(low)\(interior.allSatisfy { $0 == 0 } ? "" : ", interior \(interior)")\(value == 0 ? "" : ", value \(value)"))"
        case .concat(let axis): return "concat(axis: \(axis))"
        }
    }
}

/// Every op Kiln has, one case each (the functions of `UnaryOp`, `BinaryOp` and `ReduceOp`
/// flattened), and what the compiler and the tests must know of each without a node: its
/// fusion class and which checks it owes. The raw value is the name golden fixtures use.
///
/// Adding an op starts here: a case added to `Op` (or to `UnaryOp`/`BinaryOp`/`ReduceOp`)
/// does not compile until `Op.kind` and `OpKind.traits` name it, and the catalogue tests then
/// fail until it has a gradient-check case, a parity case, a golden case and an OpenCL kernel.
public enum OpKind: String, CaseIterable, Sendable, Hashable {
    case feed, parameter, state, constant
    case neg, exp, log, sqrt, tanh, sigmoid, relu, gelu, geluDerivative, erf
    case add, sub, mul, div, maximum, minimum, greater, equal, select
    case sum, mean, max
    case matmul, transpose, reshape, broadcastTo
    case gather, scatterAdd
    case softmaxCrossEntropy, softmaxCrossEntropyGrad, argmax, accuracy
    case allReduce
    case oneHot
    case unfold, fold
    case maxPool, maxPoolGrad
    case uniform
    case softmax, logSoftmax, softmaxGrad
    case layerNorm, rmsNorm, layerNormGrad
    case slice, pad, concat

    /// How the compiler places an op's nodes into kernels.
    public enum Fusion: Sendable, Hashable {
        /// Inputs of a program (feeds, parameters, state, constants): no kernel.
        case leaf
        /// One value per output element from the same element of its (broadcast) inputs: joins
        /// its consumers' fused kernel (a broadcastTo is read in place by its consumers).
        case elementwise
        /// The same elements under another shape: aliases its input, no kernel.
        case view
        /// A reduction: owns a kernel whose prologue computes its input.
        case reduction
        /// A matmul: owns a kernel whose epilogue may be its consumers' elementwise group.
        case matmul
        /// A kernel of its own (a kernel family under Kernels/ or generated code).
        case kernel
        /// Host work between kernels (data-parallel sums).
        case collective
    }

    /// What autodiff knows of an op.
    public enum Gradient: Sendable, Hashable {
        /// A rule in `Graph.gradientRule`, checked against finite differences.
        case rule
        /// Piecewise constant (comparisons, ids): no gradient flows.
        case none
        /// Not differentiable at all (metrics, internal gradient ops): an error between a
        /// loss and a parameter.
        case error
    }

    /// What an op is and which checks it owes.
    public struct Traits: Sendable, Hashable {
        public let fusion: Fusion
        public let gradient: Gradient
        /// Whether PyTorch golden values must exist (Tests/Fixtures/ops.json).
        public let golden: Bool
        /// Whether a device-vs-oracle case must run it (`kiln selftest`, OpenCL tests).
        public let parity: Bool
    }

    public var traits: Traits {
        func t(_ f: Fusion, _ g: Gradient, golden: Bool = true, parity: Bool = true) -> Traits {
            Traits(fusion: f, gradient: g, golden: golden, parity: parity)
        }
        switch self {
        case .feed, .parameter, .state, .constant: return t(.leaf, .none, golden: false, parity: false)
        case .neg, .exp, .log, .sqrt, .tanh, .sigmoid, .relu, .gelu, .geluDerivative, .erf, .add, .sub, .mul, .div, .maximum, .minimum, .select:
            return t(.elementwise, .rule)
        // Comparisons make masks inside gradient rules; PyTorch's give booleans.
        case .greater, .equal: return t(.elementwise, .none, golden: false)
        case .sum, .mean, .max: return t(.reduction, .rule)
        case .matmul: return t(.matmul, .rule)
        case .transpose: return t(.kernel, .rule)
        case .reshape: return t(.view, .rule)
        case .broadcastTo: return t(.elementwise, .rule)
        case .gather, .scatterAdd: return t(.kernel, .rule)
        case .softmaxCrossEntropy: return t(.kernel, .rule)
        // Made only by softmaxCrossEntropy's gradient rule, and checked through it.
        case .softmaxCrossEntropyGrad: return t(.kernel, .error, golden: false)
        case .argmax, .accuracy: return t(.kernel, .error)
        // The sum over processes: the identity in one process; DataParallelTests check it.
        case .allReduce: return t(.collective, .rule, golden: false, parity: false)
        // Its only input is int32 labels: no gradient flows.
        case .oneHot: return t(.kernel, .none)
        case .unfold, .fold: return t(.kernel, .rule)
        case .maxPool: return t(.kernel, .rule)
        // Made only by maxPool's gradient rule, and checked through it.
        case .maxPoolGrad: return t(.kernel, .error, golden: false)
        // Its input is an int32 counter. PyTorch draws other numbers: Philox's published
        // answers check it instead (PhiloxTests).
        case .uniform: return t(.kernel, .none, golden: false)
        case .softmax, .logSoftmax: return t(.kernel, .rule)
        // Made only by softmax's gradient rule, and checked through it.
        case .softmaxGrad: return t(.kernel, .error, golden: false)
        case .layerNorm, .rmsNorm: return t(.kernel, .rule)
        // Made only by layerNorm's gradient rule, and checked through it.
        case .layerNormGrad: return t(.kernel, .error, golden: false)
        case .slice, .pad, .concat: return t(.kernel, .rule)
        }
    }
}

extension UnaryOp {
    public var kind: OpKind {
        switch self {
        case .neg: .neg
        case .exp: .exp
        case .log: .log
        case .sqrt: .sqrt
        case .tanh: .tanh
        case .sigmoid: .sigmoid
        case .relu: .relu
        case .gelu: .gelu
        case .geluDerivative: .geluDerivative
        case .erf: .erf
        }
    }
}

extension BinaryOp {
    public var kind: OpKind {
        switch self {
        case .add: .add
        case .sub: .sub
        case .mul: .mul
        case .div: .div
        case .maximum: .maximum
        case .minimum: .minimum
        case .greater: .greater
        case .equal: .equal
        case .select: .select
        }
    }
}

extension ReduceOp {
    public var kind: OpKind {
        switch self {
        case .sum: .sum
        case .mean: .mean
        case .max: .max
        }
    }
}

extension Op {
    /// The op's entry in the catalogue.
    public var kind: OpKind {
        switch self {
        case .input(let k):
            switch k {
            case .feed: return .feed
            case .parameter: return .parameter
            case .state: return .state
            }
        case .constant: return .constant
        case .unary(let u): return u.kind
        case .binary(let b): return b.kind
        case .reduce(let r, _, _): return r.kind
        case .matmul: return .matmul
        case .transpose: return .transpose
        case .reshape: return .reshape
        case .broadcastTo: return .broadcastTo
        case .gather: return .gather
        case .scatterAdd: return .scatterAdd
        case .softmaxCrossEntropy: return .softmaxCrossEntropy
        case .softmaxCrossEntropyGrad: return .softmaxCrossEntropyGrad
        case .argmax: return .argmax
        case .accuracy: return .accuracy
        case .allReduce: return .allReduce
        case .oneHot: return .oneHot
        case .unfold: return .unfold
        case .fold: return .fold
        case .maxPool: return .maxPool
        case .maxPoolGrad: return .maxPoolGrad
        case .uniform: return .uniform
        case .softmax(_, let log): return log ? .logSoftmax : .softmax
        case .softmaxGrad: return .softmaxGrad
        case .layerNorm(_, let rms): return rms ? .rmsNorm : .layerNorm
        case .layerNormGrad: return .layerNormGrad
        case .slice: return .slice
        case .pad: return .pad
        case .concat: return .concat
        }
    }
}

/// A value of an op's attribute, as golden fixtures and other generic callers give it.
public enum OpAttribute: Sendable, Hashable, Decodable {
    case int(Int), bool(Bool), ints([Int])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else { self = .ints(try c.decode([Int].self)) }
    }
}

extension OpKind {
    /// The inputs that are int32 (ids and labels).
    public var intInputs: Set<Int> {
        switch self {
        case .gather, .scatterAdd, .oneHot, .uniform: return [0]
        case .softmaxCrossEntropy, .softmaxCrossEntropyGrad, .accuracy: return [1]
        default: return []
        }
    }

    /// Makes this op's node from its inputs and named attributes (`axes`, `keepDims`, `perm`,
    /// `log` (softmaxGrad), `rms` (layerNormGrad; norms take epsilon 1e-5),
    /// `shape`, `axis`, `rows`, `transposeA`, `starts`/`ends`/`steps` (slice),
    /// `low`/`high`/`interior`/`value` (pad), `transposeB`, `value`, `classes`, `ignoreIndex`;
    /// for windows `kernel`, `stride`, `padding`, `dilation` (pairs), `height`, `width`):
    /// how golden fixtures, written by name, become graphs. A oneHot made here is float32.
    /// `dtype` is the float type of an op whose inputs do not fix it (oneHot).
    public func make(_ g: Graph, _ x: [Tensor], _ attrs: [String: OpAttribute] = [:], dtype: DType = .float32) throws -> Tensor {
        func attr<T>(_ key: String, _ get: (OpAttribute) -> T?) throws -> T {
            guard let a = attrs[key], let v = get(a) else {
                throw KilnError.invalidArgument(op: rawValue, message: "attribute '\(key)' is missing or of the wrong kind (have \(attrs))")
            }
            return v
        }
        func int(_ a: OpAttribute) -> Int? { if case .int(let v) = a { return v }; return nil }
        func bool(_ a: OpAttribute) -> Bool? { if case .bool(let v) = a { return v }; return nil }
        func ints(_ a: OpAttribute) -> [Int]? { if case .ints(let v) = a { return v }; return nil }
        let arity: Int
        switch self {
        case .feed, .parameter, .state, .constant: arity = 0
        case .neg, .exp, .log, .sqrt, .tanh, .sigmoid, .relu, .gelu, .geluDerivative, .erf, .sum, .mean, .max, .transpose, .reshape, .broadcastTo,
             .argmax, .allReduce, .oneHot, .unfold, .fold, .maxPool, .uniform, .softmax, .logSoftmax, .layerNorm, .rmsNorm,
             .slice, .pad: arity = 1
        case .concat: arity = Swift.max(x.count, 1)
        case .add, .sub, .mul, .div, .maximum, .minimum, .greater, .equal, .select, .matmul, .gather, .scatterAdd,
             .softmaxCrossEntropy, .accuracy, .maxPoolGrad, .softmaxGrad, .layerNormGrad: arity = 2
        case .softmaxCrossEntropyGrad: arity = 3
        }
        guard x.count == arity else {
            throw KilnError.invalidArgument(op: rawValue, message: "takes \(arity) inputs, got \(x.count)")
        }
        switch self {
        case .feed, .parameter, .state, .constant:
            throw KilnError.invalidArgument(op: rawValue, message: "a leaf is made by Graph.placeholder, parameter, state or constant")
        case .neg, .exp, .log, .sqrt, .tanh, .sigmoid, .relu, .gelu, .geluDerivative, .erf:
            return try g.unary(UnaryOp(rawValue: rawValue)!, x[0])
        case .add, .sub, .mul, .div, .maximum, .minimum, .greater, .equal, .select:
            return try g.binary(BinaryOp(rawValue: rawValue)!, x[0], x[1])
        case .sum, .mean, .max:
            return try g.reduce(ReduceOp(rawValue: rawValue)!, x[0], axes: attrs["axes"].flatMap(ints),
                                keepDims: attrs["keepDims"].flatMap(bool) ?? false)
        case .matmul:
            return try g.matmul(x[0], x[1], transposeA: attrs["transposeA"].flatMap(bool) ?? false,
                                transposeB: attrs["transposeB"].flatMap(bool) ?? false)
        case .transpose: return try g.transpose(x[0], perm: attrs["perm"].flatMap(ints))
        case .reshape: return try g.reshape(x[0], Shape(try attr("shape", ints)))
        case .broadcastTo: return try g.broadcast(x[0], to: Shape(try attr("shape", ints)))
        case .gather: return try g.gather(x[1], ids: x[0])
        case .scatterAdd: return try g.scatterAdd(x[1], ids: x[0], rows: try attr("rows", int))
        case .softmaxCrossEntropy: return try g.softmaxCrossEntropy(logits: x[0], labels: x[1])
        case .softmaxCrossEntropyGrad: return try g.softmaxCrossEntropyGrad(logits: x[0], labels: x[1], upstream: x[2])
        case .argmax: return try g.argmax(x[0], axis: attrs["axis"].flatMap(int) ?? -1)
        case .accuracy: return try g.accuracy(logits: x[0], labels: x[1])
        case .allReduce: return try g.allReduce(x[0])
        case .oneHot:
            return try g.oneHot(x[0], classes: try attr("classes", int), ignoreIndex: attrs["ignoreIndex"].flatMap(int), dtype: dtype)
        case .unfold, .fold, .maxPool, .maxPoolGrad:
            let w = try Window2D(kernel: try attr("kernel", ints), stride: attrs["stride"].flatMap(ints) ?? [1, 1],
                                 padding: attrs["padding"].flatMap(ints) ?? [0, 0], dilation: attrs["dilation"].flatMap(ints) ?? [1, 1])
                .channelsLast(attrs["channelsLast"].flatMap(bool) ?? false)
            switch self {
            case .unfold: return try g.unfold(x[0], window: w)
            case .maxPool: return try g.maxPool(x[0], window: w)
            case .maxPoolGrad: return try g.maxPoolGrad(x[0], upstream: x[1], window: w)
            default: return try g.fold(x[0], window: w, height: try attr("height", int), width: try attr("width", int))
            }
        case .softmax, .logSoftmax:
            return try g.softmax(x[0], axis: attrs["axis"].flatMap(int) ?? -1, log: self == .logSoftmax)
        case .softmaxGrad:
            return try g.softmaxGrad(x[0], upstream: x[1], axis: attrs["axis"].flatMap(int) ?? -1, log: attrs["log"].flatMap(bool) ?? false)
        case .layerNorm, .rmsNorm:
            return try g.layerNorm(x[0], epsilon: 1e-5, rms: self == .rmsNorm)
        case .layerNormGrad:
            return try g.layerNormGrad(x[0], upstream: x[1], epsilon: 1e-5, rms: attrs["rms"].flatMap(bool) ?? false)
        case .slice:
            return try g.slice(x[0], starts: try attr("starts", ints), ends: try attr("ends", ints), steps: attrs["steps"].flatMap(ints))
        case .pad:
            return try g.pad(x[0], low: try attr("low", ints), high: try attr("high", ints), interior: attrs["interior"].flatMap(ints),
                             value: Double(attrs["value"].flatMap(int) ?? 0))
        case .concat:
            return try g.concat(x, axis: attrs["axis"].flatMap(int) ?? 0)
        case .uniform:
            return try g.uniform(Shape(try attr("shape", ints)), counter: x[0], seed: UInt32(truncatingIfNeeded: attrs["seed"].flatMap(int) ?? 0), dtype: dtype)
        }
    }
}

/// An int32 input of an op that holds indices (ids, labels): values must lie in
/// `0..<limit`, or equal `ignore`.
public struct IndexInput: Sendable, Hashable {
    /// Which input of the node.
    public let input: Int
    public let limit: Int
    public let ignore: Int?
    /// What a value is called in messages ("id", "label").
    public let what: String
}

extension Op {
    /// The node's inputs that hold indices, with their bounds, from its input shapes and its own
    /// shape: backends that cannot raise errors inside kernels check fed values against these
    /// on the host before a run.
    public func indexInputs(inputs: [Shape], output: Shape) -> [IndexInput] {
        switch self {
        case .gather: return [IndexInput(input: 0, limit: inputs[1][0], ignore: nil, what: "id")]
        case .scatterAdd: return [IndexInput(input: 0, limit: output[0], ignore: nil, what: "id")]
        case .softmaxCrossEntropy, .softmaxCrossEntropyGrad, .accuracy:
            return [IndexInput(input: 1, limit: inputs[0][1], ignore: nil, what: "label")]
        case let .oneHot(classes, ignoreIndex): return [IndexInput(input: 0, limit: classes, ignore: ignoreIndex, what: "label")]
        case .input, .constant, .unary, .binary, .reduce, .matmul, .transpose, .reshape, .broadcastTo, .argmax, .allReduce,
             .unfold, .fold, .maxPool, .maxPoolGrad, .uniform, .softmax, .softmaxGrad, .layerNorm, .layerNormGrad,
             .slice, .pad, .concat:
            return []
        }
    }
}
