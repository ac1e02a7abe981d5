/// Transposes sink through the ops that do not care about layout, as the graph is built.
///
/// A convolution's product comes out channels last (`[N, H, W, C]`, one row of channels per
/// pixel) and is moved to `[N, C, H, W]` by a transpose. Batch norm, ReLU and max pooling read
/// it there; without sinking, the transpose is a full pass over the activation in each
/// direction. So an elementwise op, a reduction or a max pooling of a transpose is made on the
/// transpose's input instead (small operands, such as batch norm's per-channel `[1, C, 1, 1]`
/// values, permuted to match; pooling with a channels-last window), and the transpose is
/// applied to the result: it moves past them until it meets an op that needs the layout (the
/// next convolution's unfold, a flatten), a quarter of the size after a 2 x 2 pooling. The
/// values are the same up to the order of a reduction's sums; the transpose made first is left
/// unread, and compiling drops it.
extension Graph {
    /// The input and permutation of `x` when a transpose made it.
    public func transposeSource(_ x: Tensor) -> (input: Tensor, perm: [Int])? {
        guard case .transpose(let perm) = x.node.op else { return nil }
        return (tensor(x.node.inputs[0]), perm)
    }

    /// `x` permuted (output axis i is axis `perm[i]`): a reshape where only axes of size 1 move,
    /// which costs no kernel.
    func permuted(_ x: Tensor, _ perm: [Int]) throws -> Tensor {
        let moving = perm.filter { x.shape[$0] != 1 }
        if moving == moving.sorted() { return try reshape(x, Shape(perm.map { x.shape[$0] })) }
        return try transpose(x, perm: perm)
    }

    /// An operand `b` that broadcasts against a transpose by `perm`, laid out as that
    /// transpose's input instead.
    private func matchingInput(_ b: Tensor, perm: [Int]) throws -> Tensor {
        if b.shape.rank == 0 { return b }   // a scalar broadcasts in any layout
        let r = perm.count
        let aligned = b.shape.rank < r ? try reshape(b, Shape([Int](repeating: 1, count: r - b.shape.rank) + b.shape.dims)) : b
        var inverse = perm
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return try permuted(aligned, inverse)
    }

    /// `op(a, b)` made before the transpose that `a` or `b` (of the result's shape) comes from;
    /// the other operand must be that transpose's too, or smaller (broadcast). Nil where
    /// neither holds.
    func sunkBinary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: Shape) throws -> Tensor? {
        let ta = a.shape == shape ? transposeSource(a) : nil, tb = b.shape == shape ? transposeSource(b) : nil
        if let ta, let tb, ta.perm == tb.perm {
            return try transpose(binary(op, ta.input, tb.input), perm: ta.perm)
        }
        if let ta, b.shape.count < shape.count {
            return try transpose(binary(op, ta.input, matchingInput(b, perm: ta.perm)), perm: ta.perm)
        }
        if let tb, a.shape.count < shape.count {
            return try transpose(binary(op, matchingInput(a, perm: tb.perm), tb.input), perm: tb.perm)
        }
        return nil
    }

    /// A reduction of a transpose made on its input: the same axes by their input numbers, and
    /// the result permuted to the order the transpose would have given it.
    func sunkReduce(_ op: ReduceOp, _ x: Tensor, axes: [Int], keepDims: Bool) throws -> Tensor? {
        guard let (input, perm) = transposeSource(x) else { return nil }
        let reduced = try reduce(op, input, axes: axes.map { perm[$0] }, keepDims: keepDims)
        if keepDims { return try permuted(reduced, perm) }
        // The kept axes of the input, in its order, and where each lies in the result.
        let kept = perm.indices.filter { !axes.contains($0) }.map { perm[$0] }
        let order = kept.sorted()
        return try permuted(reduced, kept.map { order.firstIndex(of: $0)! })
    }
}
