extension Graph {
    /// The gradient rules: for a node and the gradient `g` of the loss with respect to its
    /// output, the gradients with respect to each of its inputs (nil where none flows).
    /// Every derivative stands beside its op; `y` is the node's own output.
    func gradientRule(_ node: Node, upstream g: Tensor) throws -> [Tensor?] {
        let x = node.inputs.map { tensor($0) }
        let y = tensor(node.id)
        switch node.op {
        case .input, .constant:
            return []

        case .unary(let op):
            switch op {
            case .neg: return [try -g]
            case .exp: return [try g * y]                                  // (e^x)' = e^x
            case .log: return [try g / x[0]]                               // (ln x)' = 1/x
            case .sqrt: return [try g * 0.5 / y]                           // (√x)' = 1/(2√x)
            case .tanh: return [try g * (1 - y * y)]                       // tanh' = 1 - tanh²
            case .sigmoid: return [try g * y * (1 - y)]                    // σ' = σ(1 - σ)
            case .relu:
                if let routed = try reluGradientThroughMaxPool(y, upstream: g) { return [routed] }
                return [try g * binary(.greater, y, y.scalar(0))]     // y > 0 iff x > 0; 0 at x = 0, as PyTorch
            case .gelu: return [try g * unary(.geluDerivative, x[0])]
            case .geluDerivative:
                // With u = c·(x + a·x³), t = tanh(u): gelu' = 0.5·(1 + t) + 0.5·x·(1 − t²)·u', and
                // gelu'' = (1 − t²)·(u' + 0.5·x·(u'' − 2t·u'²)), u' = c·(1 + 3a·x²), u'' = 6ac·x.
                let (a, c) = (0.044715, (2 / Double.pi).squareRoot()), v = x[0]
                let t = try ((v + v * v * v * a) * c).tanh()
                let du = try (v * v * (3 * a) + 1) * c
                return [try g * ((1 - t * t) * (du + v * 0.5 * (v * (6 * a * c) - t * du * du * 2)))]
            case .erf: return [try g * (2 / Double.pi.squareRoot()) * (-(x[0] * x[0])).exp()]   // erf' = 2/√π·e^(−x²)
            }

        case .binary(let op):
            let (a, b) = (x[0], x[1])
            let ga: Tensor?, gb: Tensor?
            switch op {
            case .add: (ga, gb) = (g, g)
            case .sub: (ga, gb) = (g, try -g)
            case .mul where a == b:
                // x · x: one product, doubled (exactly, as the sum of the two would be), not two
                // equal products for autodiff to add (batch norm's variance of centered values).
                return [try unbroadcast(g * a * 2, to: a.shape), nil]
            case .mul: (ga, gb) = (try g * b, try g * a)
            case .div: (ga, gb) = (try g / b, try -(g * y) / b)            // d(a/b)/db = -(a/b)/b
            case .maximum, .minimum:
                // The gradient goes to the larger (maximum) or smaller (minimum) input. On a tie
                // it is split evenly, half to each, as PyTorch does.
                let (win, lose) = op == .maximum ? (a, b) : (b, a)
                let share = try binary(.greater, win, lose) + binary(.equal, a, b) * 0.5
                let toA = try g * share
                (ga, gb) = (toA, try g - toA)
            case .greater, .equal:
                return [nil, nil]                                          // piecewise constant
            case .select: (ga, gb) = (nil, try binary(.select, a, g))      // the mask passes the gradient where it passed x
            }
            return [try ga.map { try unbroadcast($0, to: a.shape) }, try gb.map { try unbroadcast($0, to: b.shape) }]

        case let .reduce(op, axes, _):
            let keptShape = Shape(x[0].shape.dims.enumerated().map { axes.contains($0.offset) ? 1 : $0.element })
            let spread = { (t: Tensor) throws -> Tensor in
                try self.broadcast(self.reshape(t, keptShape), to: x[0].shape)
            }
            switch op {
            case .sum: return [try spread(g)]
            case .mean:
                let n = axes.reduce(1) { $0 * x[0].shape[$1] }
                return [try spread(g * (1.0 / Double(n)))]
            case .max:
                // Like PyTorch's amax: the gradient is shared evenly by all elements equal to the max.
                let mask = try binary(.equal, x[0], spread(y))
                let count = try reduce(.sum, mask, axes: axes, keepDims: true)
                return [try mask * spread(g) / broadcast(count, to: x[0].shape)]
            }

        case let .matmul(ta, tb):
            // C = op(A) op(B): dA and dB are products of dC with the other operand, transposed to fit.
            // dB is made first: kernels run in the order of their nodes, so dA (a layer's input
            // gradient, as activations come first) runs right before what reads it next, such
            // as a convolution's fold, which the CPU backend runs with it chunk by chunk.
            let (a, b) = (x[0], x[1])
            switch (ta, tb) {
            case (false, false):
                let db = try matmul(a, g, transposeA: true)
                return [try matmul(g, b, transposeB: true), db]
            case (false, true):
                let db = try matmul(g, a, transposeA: true)
                return [try matmul(g, b), db]
            case (true, false):
                let db = try matmul(a, g)
                return [try matmul(b, g, transposeB: true), db]
            case (true, true):
                let db = try matmul(g, a, transposeA: true, transposeB: true)
                return [try matmul(b, g, transposeA: true, transposeB: true), db]
            }

        case .transpose(let perm):
            var inverse = perm
            for (i, p) in perm.enumerated() { inverse[p] = i }
            return [try transpose(g, perm: inverse)]

        case .reshape:
            return [try reshape(g, x[0].shape)]

        case .broadcastTo:
            return [try unbroadcast(g, to: x[0].shape)]

        case .gather:
            // Each looked-up row receives the gradient of every position that read it.
            return [nil, try scatterAdd(g, ids: x[0], rows: x[1].shape[0])]

        case .scatterAdd:
            return [nil, try gather(g, ids: x[0])]

        case .oneHot, .uniform:
            return [nil]                                                   // its input is int32 (labels, a counter)

        case let .unfold(w, _):
            // Each pixel receives the gradient of every patch entry that read it; padding has no pixel.
            return [try fold(g, window: w, height: x[0].shape[w.axes.height], width: x[0].shape[w.axes.width])]

        case let .maxPool(w):
            return [try maxPoolGrad(x[0], upstream: g, window: w)]

        case let .layerNorm(eps, rms):
            return [try layerNormGrad(x[0], upstream: g, epsilon: eps, rms: rms)]

        case let .softmax(axis, log):
            // From the output alone: softmax y·(g − Σ g·y), log-softmax g − e^y·Σ g.
            return [try softmaxGrad(y, upstream: g, axis: axis, log: log)]

        case let .fold(w, _, _):
            // fold is linear and unfold (with zero padding) is its adjoint.
            return [try unfold(g, window: w)]

        case .softmaxCrossEntropy:
            // d/dlogits = (softmax(logits) - onehot(labels)) / B, times the upstream scalar.
            return [try softmaxCrossEntropyGrad(logits: x[0], labels: x[1], upstream: g), nil]

        case .allReduce:
            // y = Σ_r x_r: every process's x reaches every y, so dL/dx_r = Σ_r' dL/dy_r'.
            return [try allReduce(g)]

        case let .slice(starts, steps):
            // The adjoint spreads g back to the places it was read from, zeros between.
            let inDims = x[0].shape.dims, outDims = y.shape.dims
            let high = inDims.indices.map { k in
                inDims[k] - (outDims[k] == 0 ? starts[k] : starts[k] + steps[k] * (outDims[k] - 1) + 1)
            }
            return [try pad(g, low: starts, high: high, interior: steps.map { $0 - 1 })]

        case let .pad(low, interior, _):
            // Only the input's own elements depend on it: read them back out of g.
            let inDims = x[0].shape.dims
            let ends = inDims.indices.map { k in inDims[k] == 0 ? low[k] : low[k] + (inDims[k] - 1) * (interior[k] + 1) + 1 }
            return [try slice(g, starts: low, ends: ends, steps: interior.map { $0 + 1 })]

        case .concat(let axis):
            var start = 0
            return try x.map { part in
                defer { start += part.shape[axis] }
                return try slice(g, axis: axis, from: start, to: start + part.shape[axis])
            }

        case .softmaxCrossEntropyGrad, .argmax, .accuracy, .maxPoolGrad, .softmaxGrad, .layerNormGrad:
            throw KilnError.notDifferentiable("\(node.label): \(node.op.name) has no gradient; it cannot lie between the loss and a parameter")
        }
    }

    /// ReLU's gradient where the upstream is max pooling's of the ReLU's output y (conv, ReLU,
    /// max pool): the mask y > 0 is applied to the pooled gradient before it is routed, where
    /// the routed element is the window's maximum, so its mask is maxPool(y) > 0. The same
    /// values, and a pass over the pooled tensor instead of one over y. Nil where the pattern
    /// does not hold.
    func reluGradientThroughMaxPool(_ y: Tensor, upstream g: Tensor) throws -> Tensor? {
        let routed = node(g)
        guard case let .maxPoolGrad(w) = routed.op, routed.inputs[0] == y.id,
              let pooled = nodes.first(where: { $0.op == .maxPool(w) && $0.inputs == [y.id] }) else { return nil }
        let pooledY = tensor(pooled.id), upstream = tensor(routed.inputs[1])
        return try maxPoolGrad(y, upstream: upstream * binary(.greater, pooledY, pooledY.scalar(0)), window: w)
    }
}
