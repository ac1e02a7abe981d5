/// Max pooling over whole planes, for `CPUStep`: a generic function of its own, specialized
/// for the two float types, so that the comparisons in the hot loop are not protocol calls.
enum MaxPoolPlanes {
    struct Geometry {
        let h, w, oh, ow: Int
        let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)
        /// For each output row (column), the first and past-the-last kernel offsets inside the image.
        let rows: [Int], columns: [Int]
    }

    /// The plane index of window (i, j)'s first largest element (row-major; NaN wins, as
    /// PyTorch's), or -1 for a window wholly in the padding.
    @inline(__always)
    static func first<T: KilnFloat>(_ plane: UnsafePointer<T>, _ i: Int, _ j: Int, _ g: Geometry,
                                    _ rows: UnsafePointer<Int>, _ cols: UnsafePointer<Int>) -> Int {
        let (q0, q1) = (cols[2 * j], cols[2 * j + 1]), (p0, p1) = (rows[2 * i], rows[2 * i + 1])
        guard p1 > p0 && q1 > q0 else { return -1 }
        let corner = (i * g.stride.0 - g.padding.0) * g.w + j * g.stride.1 - g.padding.1
        var best = corner + p0 * g.dilation.0 * g.w + q0 * g.dilation.1, m = plane[best]
        // Selects, not branches: which element wins is data, and random data mispredicts.
        for p in p0..<p1 {
            let line = corner + p * g.dilation.0 * g.w
            for q in q0..<q1 {
                let at = line + q * g.dilation.1, v = plane[at]
                let take = v > m || v != v
                m = take ? v : m
                best = take ? at : best
            }
        }
        return best
    }

    /// Pools planes `range` of `x` into `out`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func forward<T: KilnFloat>(_ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, planes range: Range<Int>, _ g: Geometry) {
        g.rows.withUnsafeBufferPointer { rows in
            g.columns.withUnsafeBufferPointer { cols in
                for p in range {
                    let plane = x + p * g.h * g.w, o = out + p * g.oh * g.ow
                    for i in 0..<g.oh {
                        for j in 0..<g.ow {
                            let f = first(plane, i, j, g, rows.baseAddress!, cols.baseAddress!)
                            o[i * g.ow + j] = f < 0 ? -T.infinity : plane[f]
                        }
                    }
                }
            }
        }
    }

    /// Routes the upstream values of planes `range` to their windows' first largest elements.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func backward<T: KilnFloat>(_ x: UnsafePointer<T>, _ upstream: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>,
                                       planes range: Range<Int>, _ g: Geometry) {
        g.rows.withUnsafeBufferPointer { rows in
            g.columns.withUnsafeBufferPointer { cols in
                for p in range {
                    let plane = x + p * g.h * g.w, o = out + p * g.h * g.w, up = upstream + p * g.oh * g.ow
                    o.update(repeating: 0, count: g.h * g.w)
                    for i in 0..<g.oh {
                        for j in 0..<g.ow {
                            let f = first(plane, i, j, g, rows.baseAddress!, cols.baseAddress!)
                            if f >= 0 { o[f] += up[i * g.ow + j] }
                        }
                    }
                }
            }
        }
    }
}
