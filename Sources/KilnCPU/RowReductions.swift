import CVectorMath

/// Sums and maxima of contiguous rows in 8 independent accumulators, combined at the end: a sum
/// accumulated in one variable is a chain of dependent adds, which ran the CPU backend's
/// attention softmax at a fraction of its speed. The accumulators change the order of the
/// additions, not what is added.
enum RowReductions<T: KilnFloat> {
    /// The sum of `x[0..<n]`; for Float in C (`kiln_sum_f32`, the same order), where Swift's
    /// baseline SSE2 loop ran batch norm's per-channel sums at 19 GB/s.
    @inline(__always) static func sum(_ x: UnsafePointer<T>, _ n: Int) -> T {
        if T.self == Float.self { return T(kiln_sum_f32(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), n)) }
        return swiftSum(x, n)
    }

    /// `into[j] += rows[r * stride + j]` for `r < count`, `j < width`: each column's values added
    /// in row order. For Float in C (`kiln_add_rows_f32`, the same bits), each column's sum held
    /// in a register (added into memory row after row, every add waited on the last store).
    @inline(__always) static func addRows(into: UnsafeMutablePointer<T>, _ rows: UnsafePointer<T>, count: Int, width: Int, stride: Int) {
        if T.self == Float.self {
            return kiln_add_rows_f32(UnsafeMutableRawPointer(into).assumingMemoryBound(to: Float.self),
                                     UnsafeRawPointer(rows).assumingMemoryBound(to: Float.self), count, width, stride)
        }
        for r in 0..<count { let row = rows + r * stride; for j in 0..<width { into[j] += row[j] } }
    }

    /// The sum in Swift: eight accumulators, combined pairwise, then the tail.
    @inline(__always) static func swiftSum(_ x: UnsafePointer<T>, _ n: Int) -> T {
        var (a0, a1, a2, a3, a4, a5, a6, a7): (T, T, T, T, T, T, T, T) = (0, 0, 0, 0, 0, 0, 0, 0)
        let full = n & ~7
        var e = 0
        while e < full {
            a0 += x[e]; a1 += x[e + 1]; a2 += x[e + 2]; a3 += x[e + 3]
            a4 += x[e + 4]; a5 += x[e + 5]; a6 += x[e + 6]; a7 += x[e + 7]
            e += 8
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        for e in full..<n { s += x[e] }
        return s
    }

    /// The largest of `x[0..<n]` (n ≥ 1), NaN aside: a NaN in the row makes its exponentials'
    /// sum NaN, and with it the whole softmax row, as before.
    @inline(__always) static func max(_ x: UnsafePointer<T>, _ n: Int) -> T {
        var m = (x[0], x[0], x[0], x[0], x[0], x[0], x[0], x[0])
        let full = n & ~7
        var e = 0
        while e < full {
            if x[e] > m.0 { m.0 = x[e] }; if x[e + 1] > m.1 { m.1 = x[e + 1] }
            if x[e + 2] > m.2 { m.2 = x[e + 2] }; if x[e + 3] > m.3 { m.3 = x[e + 3] }
            if x[e + 4] > m.4 { m.4 = x[e + 4] }; if x[e + 5] > m.5 { m.5 = x[e + 5] }
            if x[e + 6] > m.6 { m.6 = x[e + 6] }; if x[e + 7] > m.7 { m.7 = x[e + 7] }
            e += 8
        }
        let a = m.0 > m.1 ? m.0 : m.1, b = m.2 > m.3 ? m.2 : m.3, c = m.4 > m.5 ? m.4 : m.5, d = m.6 > m.7 ? m.6 : m.7
        let ab = a > b ? a : b, cd = c > d ? c : d
        var best = ab > cd ? ab : cd
        for e in full..<n where x[e] > best { best = x[e] }
        return best
    }
}
