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
    /// PyTorch's), or -1 for a window wholly in the padding. Pixels lie `pixel` elements apart
    /// (1, or the channels of a channels-last image).
    @inline(__always)
    static func first<T: KilnFloat>(_ plane: UnsafePointer<T>, _ i: Int, _ j: Int, _ g: Geometry,
                                    _ rows: UnsafePointer<Int>, _ cols: UnsafePointer<Int>, pixel: Int = 1) -> Int {
        let (q0, q1) = (cols[2 * j], cols[2 * j + 1]), (p0, p1) = (rows[2 * i], rows[2 * i + 1])
        guard p1 > p0 && q1 > q0 else { return -1 }
        let corner = (i * g.stride.0 - g.padding.0) * g.w + j * g.stride.1 - g.padding.1
        var best = corner + p0 * g.dilation.0 * g.w + q0 * g.dilation.1, m = plane[best * pixel]
        // Selects, not branches: which element wins is data, and random data mispredicts.
        for p in p0..<p1 {
            let line = corner + p * g.dilation.0 * g.w
            for q in q0..<q1 {
                let at = line + q * g.dilation.1, v = plane[at * pixel]
                let take = v > m || v != v
                m = take ? v : m
                best = take ? at : best
            }
        }
        return best
    }

    /// Whether the windows tile each plane exactly (pooling's usual kernel 2, stride 2 on an
    /// even plane): every pixel in one window, no padding, no dilation.
    /// `kernel` nil: the general loops only (the oracle's).
    static func tiles(_ g: Geometry, kernel: (Int, Int)?) -> Bool {
        guard let kernel else { return false }
        return g.stride == kernel && g.padding == (0, 0) && g.dilation == (1, 1) && g.oh * kernel.0 == g.h && g.ow * kernel.1 == g.w
    }

    /// The plane index of window (i, j)'s first largest element where windows tile the plane:
    /// the same comparisons as `first`, without its per-window bounds.
    @inline(__always)
    static func firstTiled<T: KilnFloat>(_ plane: UnsafePointer<T>, _ i: Int, _ j: Int, _ g: Geometry, kh: Int, kw: Int) -> Int {
        let corner = i * kh * g.w + j * kw
        var best = corner, m = plane[corner]
        for p in 0..<kh {
            for q in 0..<kw {
                let at = corner + p * g.w + q, v = plane[at]
                let take = v > m || v != v
                m = take ? v : m
                best = take ? at : best
            }
        }
        return best
    }

    /// Pools planes `range` of `x` into `out` with windows of `kernel` (rows, columns; nil:
    /// the general loops only).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func forward<T: KilnFloat>(_ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, planes range: Range<Int>, _ g: Geometry,
                                      kernel: (Int, Int)?) {
        if let kernel, kernel == (2, 2) && tiles(g, kernel: kernel) {
            // The usual 2 x 2: each window's four comparisons written out, so that the loop over
            // a row's windows has no inner loops and no index to carry.
            for p in range {
                let plane = x + p * g.h * g.w, o = out + p * g.oh * g.ow
                for i in 0..<g.oh {
                    let r0 = plane + 2 * i * g.w, r1 = r0 + g.w, row = o + i * g.ow
                    for j in 0..<g.ow {
                        let b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1]
                        var m = r0[2 * j]
                        m = b > m || b != b ? b : m
                        m = c > m || c != c ? c : m
                        m = d > m || d != d ? d : m
                        row[j] = m
                    }
                }
            }
            return
        }
        if let kernel, tiles(g, kernel: kernel) {
            for p in range {
                let plane = x + p * g.h * g.w, o = out + p * g.oh * g.ow
                for i in 0..<g.oh {
                    for j in 0..<g.ow { o[i * g.ow + j] = plane[firstTiled(plane, i, j, g, kh: kernel.0, kw: kernel.1)] }
                }
            }
            return
        }
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
                                       planes range: Range<Int>, _ g: Geometry, kernel: (Int, Int)?) {
        if let kernel, kernel == (2, 2) && tiles(g, kernel: kernel) {
            // The usual 2 x 2 written out, as in `forward`: which of the four is first largest
            // (0...3), then all four pixels written, the upstream value or 0.
            for p in range {
                let plane = x + p * g.h * g.w, o = out + p * g.h * g.w, up = upstream + p * g.oh * g.ow
                for i in 0..<g.oh {
                    let r0 = plane + 2 * i * g.w, r1 = r0 + g.w, o0 = o + 2 * i * g.w, o1 = o0 + g.w, u = up + i * g.ow
                    // Four windows at a time: their rows as vectors of 8, whose even and odd
                    // lanes are the windows' columns (scalar code ran at 3 GB/s). A row's last
                    // four windows overlap the four before where the row is not a multiple of
                    // four: their pixels are written again with the same values (the output
                    // never shares memory with x), so no window is left to the scalar code.
                    var j = 0, next = 0
                    while next < g.ow && g.ow >= 4 {
                        j = min(next, g.ow - 4)
                        next = j + 4
                        let a = UnsafeRawPointer(r0 + 2 * j).loadUnaligned(as: SIMD8<T>.self)
                        let b = UnsafeRawPointer(r1 + 2 * j).loadUnaligned(as: SIMD8<T>.self)
                        let (a0, a1, b0, b1) = (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
                        // take k: element k beats the largest before it (or is NaN); the last taken wins.
                        let take1 = a1 .> a0 .| a1 .!= a1
                        let m1 = a0.replacing(with: a1, where: take1)
                        let take2 = b0 .> m1 .| b0 .!= b0
                        let m2 = m1.replacing(with: b0, where: take2)
                        let take3 = b1 .> m2 .| b1 .!= b1
                        let v = UnsafeRawPointer(u + j).loadUnaligned(as: SIMD4<T>.self), zero = SIMD4<T>()
                        let w3 = zero.replacing(with: v, where: take3)
                        let w2 = zero.replacing(with: v, where: take2 .& .!take3)
                        let w1 = zero.replacing(with: v, where: take1 .& .!take2 .& .!take3)
                        let w0 = zero.replacing(with: v, where: .!take1 .& .!take2 .& .!take3)
                        UnsafeMutableRawPointer(o0 + 2 * j).storeBytes(of: SIMD8(w0[0], w1[0], w0[1], w1[1], w0[2], w1[2], w0[3], w1[3]), as: SIMD8<T>.self)
                        UnsafeMutableRawPointer(o1 + 2 * j).storeBytes(of: SIMD8(w2[0], w3[0], w2[1], w3[1], w2[2], w3[2], w2[3], w3[3]), as: SIMD8<T>.self)
                    }
                    for j in next..<g.ow {
                        let b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1]
                        var m = r0[2 * j], best = 0
                        var take = b > m || b != b
                        m = take ? b : m; best = take ? 1 : best
                        take = c > m || c != c
                        m = take ? c : m; best = take ? 2 : best
                        take = d > m || d != d
                        best = take ? 3 : best
                        let v = u[j]
                        o0[2 * j] = best == 0 ? v : 0
                        o0[2 * j + 1] = best == 1 ? v : 0
                        o1[2 * j] = best == 2 ? v : 0
                        o1[2 * j + 1] = best == 3 ? v : 0
                    }
                }
            }
            return
        }
        if let kernel, tiles(g, kernel: kernel) {
            // Each pixel is in one window: written once, the upstream value or 0.
            for p in range {
                let plane = x + p * g.h * g.w, o = out + p * g.h * g.w, up = upstream + p * g.oh * g.ow
                for i in 0..<g.oh {
                    for j in 0..<g.ow {
                        let f = firstTiled(plane, i, j, g, kh: kernel.0, kw: kernel.1), u = up[i * g.ow + j]
                        let corner = i * kernel.0 * g.w + j * kernel.1
                        for a in 0..<kernel.0 {
                            for b in 0..<kernel.1 {
                                let at = corner + a * g.w + b
                                o[at] = at == f ? u : 0
                            }
                        }
                    }
                }
            }
            return
        }
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
