/// Compares the gradients autodiff derives with central finite differences, in Double on the
/// CPU reference backend.
public enum GradientCheck {
    /// The outcome for one tensor.
    public struct Result: Sendable {
        /// The tensor's label.
        public let name: String
        /// Autodiff's gradient, row-major.
        public let analytic: [Double]
        /// The central-difference estimate, row-major.
        public let numeric: [Double]

        /// The largest `|a - n| / max(|a|, |n|, 1e-3)` over the elements: relative error,
        /// measured against 1e-3 where both gradients are smaller than that (so that tiny
        /// gradients are not judged by round-off alone).
        public var maxRelativeError: Double {
            zip(analytic, numeric).map { a, n in abs(a - n) / max(abs(a), abs(n), 1e-3) }.max() ?? 0
        }
    }

    /// Checks the gradient of the scalar `loss` with respect to each of `wrt`, where `values`
    /// holds every input the loss depends on. Appends the backward pass to the graph.
    /// - Parameter step: the finite-difference step `h` in `(f(x+h) - f(x-h)) / 2h`.
    public static func run(_ graph: Graph, loss: Tensor, wrt: [Tensor], values: [Tensor: HostTensor],
                           step: Double = 1e-5) throws -> [Result] {
        let grads = try graph.gradients(of: loss, wrt: wrt)
        let cpu = CPUReference<Double>()
        let analytic = try cpu.run(graph, feeds: values, fetch: grads).map(\.doubles)
        var results: [Result] = []
        for (t, a) in zip(wrt, analytic) {
            guard let base = values[t] else {
                throw KilnError.invalidValue(op: "GradientCheck", message: "no value given for \(t.node.label)")
            }
            var x = base.doubles
            var numeric = [Double](repeating: 0, count: x.count)
            var feeds = values
            func lossAt(_ x: [Double]) throws -> Double {
                feeds[t] = try HostTensor(x, shape: base.shape)
                return try cpu.run(graph, feeds: feeds, fetch: [loss])[0].scalarValue
            }
            for i in x.indices {
                let saved = x[i]
                x[i] = saved + step
                let up = try lossAt(x)
                x[i] = saved - step
                let down = try lossAt(x)
                x[i] = saved
                numeric[i] = (up - down) / (2 * step)
            }
            results.append(Result(name: t.node.label, analytic: a, numeric: numeric))
        }
        return results
    }
}
