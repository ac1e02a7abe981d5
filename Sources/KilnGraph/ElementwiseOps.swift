/// Elementwise functions of one tensor.
///
/// Each function is defined here once for OpenCL (`openCL`, from which the generated kernels'
/// `k_<name>` functions are written) and once for the CPU backend (`FusedEvaluator`), with its
/// gradient in `Graph.gradientRule` and the inputs its checks draw (`testDomain`).
public enum UnaryOp: String, Sendable, Hashable, CaseIterable {
    case neg, exp, log, sqrt, tanh, sigmoid, relu

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
        }
    }

    /// Where tests draw inputs: inside the op's domain and away from points where the
    /// derivative jumps by more than finite differences resolve.
    public var testDomain: ClosedRange<Double> {
        switch self {
        case .log, .sqrt: 0.5...2
        case .neg, .exp, .tanh, .sigmoid, .relu: -1...1
        }
    }
}

/// Elementwise functions of two tensors, with NumPy broadcasting.
///
/// `greater` and `equal` give 1 where the comparison holds and 0 elsewhere (in the inputs'
/// float type); autodiff uses them as masks and they pass no gradient.
public enum BinaryOp: String, Sendable, Hashable, CaseIterable {
    case add, sub, mul, div, maximum, minimum, greater, equal

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
        }
    }

    /// Where tests draw the second input (the first from -1...1).
    public var testDomainOfRight: ClosedRange<Double> {
        switch self {
        case .div: 0.5...2
        case .add, .sub, .mul, .maximum, .minimum, .greater, .equal: -1...1
        }
    }
}
