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
        walk(range, g) { at, pixel in
            if let pixel { (out + at).update(from: x + pixel, count: c) } else { (out + at).update(repeating: pad, count: c) }
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
        walk(range, g) { at, pixel in
            if let pixel { for e in 0..<c { x[pixel + e] += cols[at + e] } }
        }
    }

    /// Calls `body` for each window position of images `range` in patch order, with the offset
    /// of its run of C entries in the patches and of its pixel in the images (nil in the padding).
    private static func walk(_ range: Range<Int>, _ g: kiln_window, _ body: (_ at: Int, _ pixel: Int?) -> Void) {
        var at = range.lowerBound * g.oh * g.ow * g.kh * g.kw * g.c
        for b in range {
            for i in 0..<g.oh {
                for j in 0..<g.ow {
                    for p in 0..<g.kh {
                        let r = i * g.sh - g.ph + p * g.dh
                        for q in 0..<g.kw {
                            let col = j * g.sw - g.pw + q * g.dw
                            body(at, r >= 0 && r < g.h && col >= 0 && col < g.w ? ((b * g.h + r) * g.w + col) * g.c : nil)
                            at += g.c
                        }
                    }
                }
            }
        }
    }
}
