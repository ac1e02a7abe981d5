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
        let analytic = try CPUReference<Double>().run(graph, feeds: values, fetch: grads).map(\.doubles)
        // One program for the loss, run again for every perturbed element.
        let program = try Compiler.compile(graph, fetch: [loss], options: CompileOptions(fusion: false, realType: .float64))
        let exe = try CPUExecutable<Double>(program: program)
        if let missing = program.buffers.compactMap(\.node).map(graph.tensor).first(where: { values[$0] == nil }) {
            throw KilnError.invalidValue(op: "GradientCheck", message: "no value given for \(missing.node.label)")
        }
        let feeds = try exe.writeInputs(values)
        func lossWith(_ t: Tensor, _ value: HostTensor) throws -> Double {
            if t.node.op == .input(.feed) {
                var f = feeds
                f[t] = value
                return try exe.run(feeds: f)[0].scalarValue
            }
            try exe.write(t, value)
            return try exe.run(feeds: feeds)[0].scalarValue
        }
        var results: [Result] = []
        for (t, a) in zip(wrt, analytic) {
            guard let base = values[t] else {
                throw KilnError.invalidValue(op: "GradientCheck", message: "no value given for \(t.node.label)")
            }
            guard program.buffer(for: t.id) != nil else {
                // The loss does not read this tensor: its gradient is zero.
                results.append(Result(name: t.node.label, analytic: a, numeric: [Double](repeating: 0, count: a.count)))
                continue
            }
            var x = base.doubles
            var numeric = [Double](repeating: 0, count: x.count)
            for i in x.indices {
                let saved = x[i]
                x[i] = saved + step
                let up = try lossWith(t, HostTensor(x, shape: base.shape))
                x[i] = saved - step
                let down = try lossWith(t, HostTensor(x, shape: base.shape))
                x[i] = saved
                numeric[i] = (up - down) / (2 * step)
            }
            if t.node.op != .input(.feed) { try exe.write(t, base) }
            results.append(Result(name: t.node.label, analytic: a, numeric: numeric))
        }
        return results
    }
}
