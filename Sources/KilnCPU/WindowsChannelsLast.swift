import CVectorMath

/// unfold and fold of channels-last images (`[N, H, W, C]`, patches `[N, OH, OW, KH, KW, C]`)
/// for `CPUStep`: a window position's channels are one contiguous run of both, copied (unfold)
/// or added (fold) whole. Float goes to C (`kiln_unfold_nhwc_f32`), which runs these loops
/// with vector copies and adds: the same values, and fold's sums in the same order.
enum WindowsChannelsLast {
    /// Images b0 <= b < b1 (`range`) of `x` unfolded into `out` (`pad` outside the image);
    /// `fast` false: the general loops only (the oracle's).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func unfold<T: KilnFloat>(_ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, images range: Range<Int>,
                                     _ g: kiln_window, pad: T, fast: Bool) {
        if T.self == Float.self && fast {
            withUnsafePointer(to: g) {
                kiln_unfold_nhwc_f32(floats(x), floats(out), $0, range.lowerBound, range.upperBound, Float(pad))
            }
            return
        }
        let c = g.c
        var o = out + range.lowerBound * g.oh * g.ow * g.kh * g.kw * c
        for b in range {
            for i in 0..<g.oh {
                for j in 0..<g.ow {
                    for p in 0..<g.kh {
                        let r = i * g.sh - g.ph + p * g.dh
                        for q in 0..<g.kw {
                            let col = j * g.sw - g.pw + q * g.dw
                            if r >= 0 && r < g.h && col >= 0 && col < g.w {
                                o.update(from: x + ((b * g.h + r) * g.w + col) * c, count: c)
                            } else {
                                o.update(repeating: pad, count: c)
                            }
                            o += c
                        }
                    }
                }
            }
        }
    }

    /// Images `range` of `x` written from their patches `cols`: each pixel the sum of the
    /// entries that read it, added in window order (output position, then kernel offset).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func fold<T: KilnFloat>(_ cols: UnsafePointer<T>, _ x: UnsafeMutablePointer<T>, images range: Range<Int>,
                                   _ g: kiln_window, fast: Bool) {
        if T.self == Float.self && fast {
            withUnsafePointer(to: g) {
                kiln_fold_nhwc_f32(floats(cols), floats(x), $0, range.lowerBound, range.upperBound)
            }
            return
        }
        let c = g.c
        (x + range.lowerBound * g.h * g.w * c).update(repeating: 0, count: range.count * g.h * g.w * c)
        var o = cols + range.lowerBound * g.oh * g.ow * g.kh * g.kw * c
        for b in range {
            for i in 0..<g.oh {
                for j in 0..<g.ow {
                    for p in 0..<g.kh {
                        let r = i * g.sh - g.ph + p * g.dh
                        for q in 0..<g.kw {
                            let col = j * g.sw - g.pw + q * g.dw
                            if r >= 0 && r < g.h && col >= 0 && col < g.w {
                                let pixel = x + ((b * g.h + r) * g.w + col) * c
                                for e in 0..<c { pixel[e] += o[e] }
                            }
                            o += c
                        }
                    }
                }
            }
        }
    }

}
