extension Graph {
    /// Appends the backward pass of `loss` and returns its gradient with respect to each of
    /// `wrt`, in order.
    ///
    /// Reverse-mode autodiff as a graph transformation: nodes are visited in reverse
    /// topological order; each node's upstream gradient is the sum of the contributions of its
    /// users (a node used twice gets two), and its rule in `gradientRule` turns it into the
    /// downstream gradients of its inputs (upstream x local). A tensor the loss does not depend
    /// on gets a zero gradient; none flows through `stopGradient`.
    public func gradients(of loss: Tensor, wrt: [Tensor]) throws -> [Tensor] {
        guard loss.graph === self, wrt.allSatisfy({ $0.graph === self }) else {
            throw KilnError.invalidArgument(op: "gradients", message: "loss and parameters must belong to this graph")
        }
        guard loss.shape.count == 1 else {
            throw KilnError.notDifferentiable("gradients(of:): the loss must be a scalar, got \(loss.node.label) with shape \(loss.shape)")
        }
        guard loss.dtype.isFloatingPoint else {
            throw KilnError.notDifferentiable("gradients(of:): the loss must be float, got \(loss.dtype)")
        }
        if let bad = wrt.first(where: { !$0.dtype.isFloatingPoint }) {
            throw KilnError.notDifferentiable("gradients(wrt:): \(bad.node.label) is \(bad.dtype) and has no gradient")
        }

        // Only nodes that lie on a path from some `wrt` tensor to the loss need gradients.
        var fromWrt = [Bool](repeating: false, count: nodes.count)
        for t in wrt { fromWrt[t.id] = true }
        for n in nodes where !fromWrt[n.id] && !detached.contains(n.id) && n.inputs.contains(where: { fromWrt[$0] }) {
            fromWrt[n.id] = true
        }
        var toLoss = [Bool](repeating: false, count: nodes.count)
        toLoss[loss.id] = true
        for id in stride(from: loss.id, through: 0, by: -1) where toLoss[id] {
            for i in nodes[id].inputs { toLoss[i] = true }
        }
        let needed = (0..<nodes.count).map { fromWrt[$0] && toLoss[$0] && nodes[$0].dtype.isFloatingPoint }

        let saved = role
        role = .backward
        defer { role = saved }

        var pending: [Int: [Tensor]] = [:]
        var seed = constant(1, loss.dtype)
        if loss.shape != .scalar { seed = try broadcast(seed, to: loss.shape) }
        pending[loss.id] = [seed]

        var grads: [Int: Tensor] = [:]
        for id in stride(from: loss.id, through: 0, by: -1) where needed[id] {
            guard let parts = pending.removeValue(forKey: id) else { continue }
            var g = parts[0]
            for p in parts.dropFirst() { g = try g + p }  // fan-out: contributions are summed
            grads[id] = g
            if gradientOf[g.id] == nil { gradientOf[g.id] = id }
            let node = nodes[id]
            if node.inputs.isEmpty || !node.inputs.contains(where: { needed[$0] }) { continue }
            let downstream = try gradientRule(node, upstream: g)
            for (input, d) in zip(node.inputs, downstream) where needed[input] {
                if let d { pending[input, default: []].append(d) }
            }
        }
        return try wrt.map { t in
            if let g = grads[t.id] { return g }
            return try broadcast(constant(0, t.dtype), to: t.shape)
        }
    }

    /// Sums a gradient of a broadcast result back to the shape of the input that was broadcast.
    func unbroadcast(_ g: Tensor, to shape: Shape) throws -> Tensor {
        if g.shape == shape { return g }
        let lead = g.shape.rank - shape.rank
        var axes = Array(0..<lead)
        for i in 0..<shape.rank where shape[i] == 1 && g.shape[i + lead] != 1 { axes.append(i + lead) }
        let summed = axes.isEmpty ? g : try reduce(.sum, g, axes: axes, keepDims: false)
        return summed.shape == shape ? summed : try reshape(summed, shape)
    }
}
