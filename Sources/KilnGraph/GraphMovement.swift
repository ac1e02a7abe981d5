// Movement ops that change which elements a tensor holds: slice, pad and concat (shape rules;
// their gradients are in Gradients.swift), and the API built on them (split, where).

extension Graph {
    /// The elements of `x` from `starts` up to `ends` (exclusive) by `steps` along each axis:
    /// `x[s0:e0:k0, s1:e1:k1, ...]` in NumPy's terms, with `0 <= start <= end <= size` and steps
    /// of at least 1 (default 1). One kernel that copies the window.
    public func slice(_ x: Tensor, starts: [Int], ends: [Int], steps: [Int]? = nil) throws -> Tensor {
        try requireFloat("slice", x)
        let rank = x.shape.rank, steps = steps ?? Array(repeating: 1, count: rank)
        guard starts.count == rank, ends.count == rank, steps.count == rank else {
            throw KilnError.invalidArgument(op: "slice", message: "needs a start, end and step per axis of \(x.shape), got starts \(starts), ends \(ends), steps \(steps)")
        }
        var dims: [Int] = []
        for k in 0..<rank {
            guard 0 <= starts[k], starts[k] <= ends[k], ends[k] <= x.shape[k], steps[k] >= 1 else {
                throw KilnError.invalidArgument(op: "slice", message: "axis \(k) of \(x.shape): \(starts[k])..<\(ends[k]) by \(steps[k]) is not a range within 0..<\(x.shape[k]) with a step of at least 1")
            }
            dims.append((ends[k] - starts[k] + steps[k] - 1) / steps[k])
        }
        if dims == x.shape.dims { return x }
        return try append(.slice(starts: starts, steps: steps), [x], Shape(dims), x.dtype)
    }

    /// `x` along one axis (negative counts from the end) from `start` up to `end` (exclusive)
    /// by `step`, the other axes whole.
    public func slice(_ x: Tensor, axis: Int, from start: Int, to end: Int, step: Int = 1) throws -> Tensor {
        let a = try normalizedAxis("slice", axis, x.shape)
        var starts = Array(repeating: 0, count: x.shape.rank), ends = x.shape.dims, steps = Array(repeating: 1, count: x.shape.rank)
        (starts[a], ends[a], steps[a]) = (start, end, step)
        return try slice(x, starts: starts, ends: ends, steps: steps)
    }

    /// `x` padded with `value`: `low[k]` values before axis k, `high[k]` after, and
    /// `interior[k]` between neighbours (default 0; PyTorch's constant pad, XLA's pad), all at
    /// least 0.
    public func pad(_ x: Tensor, low: [Int], high: [Int], interior: [Int]? = nil, value: Double = 0) throws -> Tensor {
        try requireFloat("pad", x)
        let rank = x.shape.rank, interior = interior ?? Array(repeating: 0, count: rank)
        guard low.count == rank, high.count == rank, interior.count == rank else {
            throw KilnError.invalidArgument(op: "pad", message: "needs low, high and interior padding per axis of \(x.shape), got low \(low), high \(high), interior \(interior)")
        }
        guard (low + high + interior).allSatisfy({ $0 >= 0 }) else {
            throw KilnError.invalidArgument(op: "pad", message: "padding of \(x.shape) must be at least 0, got low \(low), high \(high), interior \(interior) (slice to crop)")
        }
        let dims = (0..<rank).map { k in low[k] + high[k] + (x.shape[k] == 0 ? 0 : (x.shape[k] - 1) * (interior[k] + 1) + 1) }
        if dims == x.shape.dims { return x }
        return try append(.pad(low: low, interior: interior, value: value), [x], Shape(dims), x.dtype)
    }

    /// `parts` joined along `axis` (negative counts from the end): all of one dtype and rank,
    /// equal on every other axis. One kernel.
    public func concat(_ parts: [Tensor], axis: Int) throws -> Tensor {
        guard let first = parts.first else {
            throw KilnError.invalidArgument(op: "concat", message: "needs at least one tensor")
        }
        for p in parts { try requireFloat("concat", p) }
        let a = try normalizedAxis("concat", axis, first.shape)
        var total = 0
        for p in parts {
            var (dims, firstDims) = (p.shape.dims, first.shape.dims)
            if p.shape.rank == first.shape.rank { (dims[a], firstDims[a]) = (0, 0) }
            guard p.dtype == first.dtype, dims == firstDims else {
                throw KilnError.shapeMismatch(op: "concat", message: "along axis \(a), every part must match but on that axis: \(parts.map { "\($0.dtype) \($0.shape)" }.joined(separator: ", "))")
            }
            total += p.shape[a]
        }
        if parts.count == 1 { return first }
        var dims = first.shape.dims
        dims[a] = total
        return try append(.concat(axis: a), parts, Shape(dims), first.dtype)
    }

    /// `x` cut along `axis` into consecutive parts of the given sizes (which sum to the axis's
    /// size): one slice each.
    public func split(_ x: Tensor, sizes: [Int], axis: Int) throws -> [Tensor] {
        let a = try normalizedAxis("split", axis, x.shape)
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == x.shape[a] else {
            throw KilnError.invalidArgument(op: "split", message: "sizes \(sizes) do not add up to axis \(a) of \(x.shape) (\(x.shape[a]))")
        }
        var start = 0
        return try sizes.map { size in
            defer { start += size }
            return try slice(x, axis: a, from: start, to: start + size)
        }
    }

    /// `a` where `mask` is nonzero, `b` elsewhere (NumPy's and PyTorch's `where`, with
    /// broadcasting): exact, whatever the unchosen side holds (an infinite or NaN value there
    /// does not leak). The gradient flows to `a` and `b`, none to the mask.
    public func `where`(_ mask: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let chosen = try binary(.select, mask, a)
        let other = try binary(.select, binary(.equal, mask, mask.scalar(0)), b)
        return try chosen + other
    }

    /// `axis` counted from the front (negative counts from the end), or an error naming `op`.
    func normalizedAxis(_ op: String, _ axis: Int, _ shape: Shape) throws -> Int {
        let a = axis < 0 ? axis + shape.rank : axis
        guard a >= 0, a < shape.rank else {
            throw KilnError.invalidArgument(op: op, message: "axis \(axis) is outside shape \(shape)")
        }
        return a
    }
}

extension Tensor {
    /// This tensor along `axis` from `start` up to `end` (exclusive) by `step` (see `Graph.slice`).
    public func slice(axis: Int, from start: Int, to end: Int, step: Int = 1) throws -> Tensor {
        try graph.slice(self, axis: axis, from: start, to: end, step: step)
    }

    /// This tensor padded with `value`: a (before, after) pair per axis (see `Graph.pad`).
    public func padded(_ padding: [(Int, Int)], value: Double = 0) throws -> Tensor {
        try graph.pad(self, low: padding.map(\.0), high: padding.map(\.1), value: value)
    }

    /// This tensor cut along `axis` into parts of the given sizes (see `Graph.split`).
    public func split(_ sizes: [Int], axis: Int) throws -> [Tensor] { try graph.split(self, sizes: sizes, axis: axis) }

    /// This tensor where `mask` is nonzero, `other` elsewhere (see `Graph.where`).
    public func `where`(_ mask: Tensor, else other: Tensor) throws -> Tensor { try graph.where(mask, self, other) }
}
