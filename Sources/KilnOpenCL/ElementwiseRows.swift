import KilnGraph

/// An elementwise kernel's iteration space as rows: the longest run of trailing axes along which
/// every load is either contiguous or constant (batch norm's `[N, C, H, W]` minus a `[1, C, 1, 1]`
/// mean is `N·C` rows of `H·W`; a bias added to `[B, T, D]` is `B·T` rows of `D`).
///
/// A broadcast load indexed per element (`(gid / 784) % 32`) is a gather PoCL cannot vectorize:
/// such a kernel ran at 26 GB/s. On a 2-D range of (element in row, row) the broadcast operand's
/// index is computed once per row and its value is the same for a row's work-items: 73 GB/s
/// (`scripts/pocl_kernel_forms.py`).
struct ElementwiseRows {
    let rows: Int, inner: Int
    /// Per load: the expression (in the row `r`) of the offset of its row's first element, and
    /// whether it advances along the row (else it is one value per row).
    let rowOffsets: [String], advances: [Bool]

    /// Nil where every load has the iteration's shape (no broadcast: a flat range is best) or
    /// where the rows would be too short to fill a vector.
    init?(shape: Shape, loads: [Shape]) {
        guard loads.contains(where: { $0 != shape }) else { return nil }
        let own = shape.strides, strides = loads.map { $0.broadcastStrides(to: shape) }
        // Whether load `j` is contiguous (1) or constant (0) along axes `p...`, or neither (nil).
        func kind(_ j: Int, from p: Int) -> Bool? {
            let axes = (p..<shape.rank).filter { shape[$0] != 1 }
            if axes.allSatisfy({ strides[j][$0] == 0 }) { return false }
            if axes.allSatisfy({ strides[j][$0] == own[$0] }) { return true }
            return nil
        }
        var split = shape.rank
        while split > 0, loads.indices.allSatisfy({ kind($0, from: split - 1) != nil }) { split -= 1 }
        let inner = shape.dims[split...].reduce(1, *)
        guard inner >= 16 else { return nil }
        self.inner = inner
        rows = shape.dims[..<split].reduce(1, *)
        advances = loads.indices.map { kind($0, from: split)! }
        // A row's start in each load: its coordinates along the outer axes from `r`.
        rowOffsets = strides.map { bs in
            // Along the outer axes like the iteration itself: row r starts at r·inner.
            if (0..<split).allSatisfy({ shape[$0] == 1 || bs[$0] == own[$0] }) { return "r * \(inner)" }
            var after = 1, terms: [String] = []
            for k in stride(from: split - 1, through: 0, by: -1) where shape[k] != 1 {
                defer { after *= shape[k] }
                guard bs[k] != 0 else { continue }
                var t = after == 1 ? "r" : "(r / \(after))"
                if k > 0 && shape.dims[..<k].contains(where: { $0 != 1 }) { t = "(\(t) % \(shape[k]))" }
                terms.append(bs[k] == 1 ? t : "\(t) * \(bs[k])")
            }
            return terms.isEmpty ? "0" : terms.joined(separator: " + ")
        }
    }

    /// The largest divisor of `n` no larger than `limit`, when it is at least `atLeast` (a
    /// work-group size that needs no bounds check, which costs PoCL its vectorization).
    static func divisor(of n: Int, limit: Int, atLeast: Int) -> Int? {
        guard n > 0 else { return nil }
        for d in stride(from: min(n, limit), through: max(atLeast, 1), by: -1) where n % d == 0 { return d }
        return nil
    }
}
