import KilnCompiler
import KilnGraph

/// unfold and fold over channels-last images (`[N, H, W, C]`, patches `[N, OH, OW, KH, KW,
/// C]`): a range of (channel, row), a row being a patch entry's position (unfold) or a pixel
/// (fold). Neighbouring work-items take neighbouring channels, which lie side by side in both
/// tensors: coalesced on a GPU. On CPU devices, where channels come in vectors (4, 8 or 16), a
/// work-item per pixel and vector of channels does its window in straight-line code instead:
/// PoCL ran the per-entry form 2-3x slower than that (the CNN's conv2: unfold 2.15 against
/// 1.09 ms, fold 3.3 against 1.1 ms).
extension OpenCLCodegen {
    /// The vector width a CPU device's window kernels take for `c` channels, if any.
    private func channelVector(_ c: Int) -> Int? { cpuForms ? [16, 8, 4].first { c % $0 == 0 } : nil }

    /// unfold: each entry the pixel it reads (the pad value in the padding).
    mutating func emitUnfoldChannelsLast(_ k: Kernel, window w: Window2D, padValue: Double, index: Int) {
        guard k.outputs[0].shape.count > 0 else { return }                 // no images, or no channels
        let (params, bufferArgs) = parameters(k)
        let (h, wd, c) = (k.inputs[0].shape[1], k.inputs[0].shape[2], k.inputs[0].shape[3])
        let (oh, ow, kh, kw) = (k.outputs[0].shape[1], k.outputs[0].shape[2], w.kernel[0], w.kernel[1])
        if let v = channelVector(c) {
            let blocks = c / v, items = k.outputs[0].shape.count / (kh * kw * v), t = "float\(v)"
            var copies: [String] = []
            for p in 0..<kh {
                for q in 0..<kw {
                    let r = "(r0 + \(p * w.dilation[0]))", col = "(c0 + \(q * w.dilation[1]))"
                    let ok = w.padding == [0, 0] ? "1" : "\(r) >= 0 && \(r) < \(h) && \(col) >= 0 && \(col) < \(wd)"
                    let to = "out + \((p * kw + q) * c)"
                    copies.append("if (\(ok)) vstore\(v)(vload\(v)(0, x + (\(r) * \(wd) + \(col)) * \(c)), 0, \(to)); else vstore\(v)(pad, 0, \(to));")
                }
            }
            generated.append("""
            __kernel void \(k.name)(\(params)int n) {
                const int gid = get_global_id(0);
                if (gid >= n) return;
                const int block = gid % \(blocks), pixel = gid / \(blocks);
                const int j = pixel % \(ow), i = (pixel / \(ow)) % \(oh), b = pixel / \(ow * oh);
                const int r0 = i * \(w.stride[0]) - \(w.padding[0]), c0 = j * \(w.stride[1]) - \(w.padding[1]);
                __global const real* x = \(pointer(k.inputs[0])) + b * \(h * wd * c) + block * \(v);
                __global real* out = \(pointer(k.outputs[0])) + pixel * \(kh * kw * c) + block * \(v);
                const \(t) pad = (\(t))(\(Self.literal(padValue)));
                \(copies.joined(separator: "\n    "))
            }
            """)
            launch(k.name, bufferArgs + [.int(items)], items: items, local: min(64, maxWorkGroupSize), kernel: index)
            return
        }
        let rows = k.outputs[0].shape.count / c, range = rowRange(inner: c, rows: rows)
        let inside = w.padding == [0, 0] ? "1" : "r >= 0 && r < \(h) && col >= 0 && col < \(wd)"
        generated.append("""
        __kernel void \(k.name)(\(params)int n) {
            const int ch = get_global_id(0), row = get_global_id(1);
            \(range.checked ? "if (ch >= \(c)) return;" : "")
            const int q = row % \(kw), p = (row / \(kw)) % \(kh), j = (row / \(kw * kh)) % \(ow), i = (row / \(kw * kh * ow)) % \(oh);
            const int b = row / \(kw * kh * ow * oh);
            const int r = i * \(w.stride[0]) + p * \(w.dilation[0]) - \(w.padding[0]), col = j * \(w.stride[1]) + q * \(w.dilation[1]) - \(w.padding[1]);
            \(pointer(k.outputs[0]))[row * \(c) + ch] = (\(inside)) ? \(pointer(k.inputs[0]))[((b * \(h) + r) * \(wd) + col) * \(c) + ch] : \(Self.literal(padValue));
        }
        """)
        launch(k.name, bufferArgs + [.int(rows)], range: range, kernel: index)
    }

    /// fold: each pixel the sum of the entries that read it (kh, then kw ascending), in
    /// straight-line code: no atomics, and a fixed order.
    mutating func emitFoldChannelsLast(_ k: Kernel, window w: Window2D, index: Int) {
        guard k.outputs[0].shape.count > 0 else { return }                 // no images, or no channels
        let (params, bufferArgs) = parameters(k)
        let (oh, ow, kh, kw, c) = (k.inputs[0].shape[1], k.inputs[0].shape[2], w.kernel[0], w.kernel[1], k.inputs[0].shape[5])
        let (h, wd) = (k.outputs[0].shape[1], k.outputs[0].shape[2])
        let (sh, sw) = (w.stride[0], w.stride[1])
        let vector = channelVector(c)
        var terms: [String] = []
        for p in 0..<kh {
            for q in 0..<kw {
                // The window (t / sh, u / sw) reads this pixel at kernel offset (p, q).
                let t = "(r + \(w.padding[0] - p * w.dilation[0]))", u = "(col + \(w.padding[1] - q * w.dilation[1]))"
                let okT = sh == 1 ? "\(t) >= 0 && \(t) < \(oh)" : "\(t) >= 0 && \(t) % \(sh) == 0 && \(t) / \(sh) < \(oh)"
                let okU = sw == 1 ? "\(u) >= 0 && \(u) < \(ow)" : "\(u) >= 0 && \(u) % \(sw) == 0 && \(u) / \(sw) < \(ow)"
                let at = "((\(sh == 1 ? t : "\(t) / \(sh)") * \(ow) + \(sw == 1 ? u : "\(u) / \(sw)")) * \(kh * kw) + \(p * kw + q)) * \(c)"
                terms.append("if (\(okT) && \(okU)) sum += \(vector.map { "vload\($0)(0, cols + \(at))" } ?? "cols[\(at)]");")
            }
        }
        if let v = vector {
            let blocks = c / v, items = k.outputs[0].shape.count / v, t = "float\(v)"
            generated.append("""
            __kernel void \(k.name)(\(params)int n) {
                const int gid = get_global_id(0);
                if (gid >= n) return;
                const int block = gid % \(blocks), pixel = gid / \(blocks);
                const int col = pixel % \(wd), r = (pixel / \(wd)) % \(h), b = pixel / \(wd * h);
                __global const real* cols = \(pointer(k.inputs[0])) + b * \(oh * ow * kh * kw * c) + block * \(v);
                \(t) sum = (\(t))(0);
                \(terms.joined(separator: "\n    "))
                vstore\(v)(sum, 0, \(pointer(k.outputs[0])) + pixel * \(c) + block * \(v));
            }
            """)
            launch(k.name, bufferArgs + [.int(items)], items: items, local: min(64, maxWorkGroupSize), kernel: index)
            return
        }
        let rows = k.outputs[0].shape.count / c, range = rowRange(inner: c, rows: rows)
        generated.append("""
        __kernel void \(k.name)(\(params)int n) {
            const int ch = get_global_id(0), row = get_global_id(1);
            \(range.checked ? "if (ch >= \(c)) return;" : "")
            const int col = row % \(wd), r = (row / \(wd)) % \(h), b = row / \(wd * h);
            __global const real* cols = \(pointer(k.inputs[0])) + b * \(oh * ow * kh * kw * c) + ch;
            real sum = (real)0;
            \(terms.joined(separator: "\n    "))
            \(pointer(k.outputs[0]))[row * \(c) + ch] = sum;
        }
        """)
        launch(k.name, bufferArgs + [.int(rows)], range: range, kernel: index)
    }
}
