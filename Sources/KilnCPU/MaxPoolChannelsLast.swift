import CVectorMath

/// Max pooling of channels-last images (`[N, H, W, C]`), for `CPUStep`: the same windows and
/// the same first largest element per channel as `MaxPoolPlanes`. The usual 2 x 2 of Float
/// goes to C, which compares a pixel's channels as vectors (Swift's SIMD masks compiled to a
/// loop over lanes here, 1.2 GB/s).
extension MaxPoolPlanes {
    /// Pools images `range` of `x` into `out`; `kernel` nil: the general loops only (the oracle's).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func forwardChannelsLast<T: KilnFloat>(_ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, images range: Range<Int>,
                                                  _ g: Geometry, channels c: Int, kernel: (Int, Int)?) {
        if T.self == Float.self, let kernel, kernel == (2, 2) && tiles(g, kernel: kernel) {
            kiln_maxpool2x2_nhwc_f32(floats(x), floats(out), g.h, g.w, c, range.lowerBound, range.upperBound)
            return
        }
        g.rows.withUnsafeBufferPointer { rows in
            g.columns.withUnsafeBufferPointer { cols in
                for n in range {
                    let image = x + n * g.h * g.w * c, o = out + n * g.oh * g.ow * c
                    for i in 0..<g.oh {
                        for j in 0..<g.ow {
                            for ch in 0..<c {
                                let f = first(image + ch, i, j, g, rows.baseAddress!, cols.baseAddress!, pixel: c)
                                o[(i * g.ow + j) * c + ch] = f < 0 ? -T.infinity : image[f * c + ch]
                            }
                        }
                    }
                }
            }
        }
    }

    /// Routes the upstream values of images `range` to their windows' first largest elements.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func backwardChannelsLast<T: KilnFloat>(_ x: UnsafePointer<T>, _ upstream: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>,
                                                   images range: Range<Int>, _ g: Geometry, channels c: Int, kernel: (Int, Int)?) {
        if T.self == Float.self, let kernel, kernel == (2, 2) && tiles(g, kernel: kernel) {
            kiln_maxpool2x2_nhwc_grad_f32(floats(x), floats(upstream), floats(out), g.h, g.w, c, range.lowerBound, range.upperBound)
            return
        }
        g.rows.withUnsafeBufferPointer { rows in
            g.columns.withUnsafeBufferPointer { cols in
                for n in range {
                    let image = x + n * g.h * g.w * c, o = out + n * g.h * g.w * c, up = upstream + n * g.oh * g.ow * c
                    o.update(repeating: 0, count: g.h * g.w * c)
                    for i in 0..<g.oh {
                        for j in 0..<g.ow {
                            for ch in 0..<c {
                                let f = first(image + ch, i, j, g, rows.baseAddress!, cols.baseAddress!, pixel: c)
                                if f >= 0 { o[f * c + ch] += up[(i * g.ow + j) * c + ch] }
                            }
                        }
                    }
                }
            }
        }
    }
}
