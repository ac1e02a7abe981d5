import KilnCompiler
import KilnGraph

extension OpenCLCodegen {
    /// Max pooling and its gradient. Each window's first largest element (row-major; NaN
    /// wins, as PyTorch's) is found by straight-line code over the window, the same forward
    /// and backward, so that the gradient goes where the value came from and PoCL's vectorizer
    /// takes the loop over work-items.
    ///
    /// Forward: a work-item per output. Backward, where windows do not overlap (pooling's usual
    /// stride): a work-item per window writes its pixels (the upstream value at the first
    /// largest, 0 elsewhere), after a fill with 0 where windows leave pixels uncovered. Where
    /// they overlap: a work-item per pixel sums the upstream values of the windows whose first
    /// largest element it is (no atomics, a fixed order). Channels-last images (`[N, H, W, C]`)
    /// take the same code on the flat range, neighbouring work-items on neighbouring channels,
    /// each reading its channel's pixels `C` elements apart.
    mutating func emitMaxPool(_ k: Kernel, window w: Window2D, index: Int) throws {
        let name = k.name, ins = k.inputs, outs = k.outputs
        let forward = k.kind == .node(.maxPool(w))
        let (params, bufferArgs) = parameters(k)
        let (ah, aw, ac) = w.axes, last = w.channelsLast
        let (h, wd, c) = (ins[0].shape[ah], ins[0].shape[aw], ins[0].shape[ac])
        guard let oh = w.outputSize(h, axis: 0), let ow = w.outputSize(wd, axis: 1) else {
            throw KilnError.shapeMismatch(op: name, message: "window (\(w)) does not fit \(ins[0].shape)")
        }
        // A plane: an image's channel. Channels last, its pixels lie `c` apart (`px`).
        let planes = ins[0].shape[0] * c, px = last ? " * \(c)" : ""
        let x = pointer(ins[0])
        let padded = w.padding != [0, 0]
        // Statements leaving in `best` the plane index of window (i, j)'s first largest element
        // (-1 if the window lies wholly in the padding) and in `m` its value; `s` names them.
        func first(_ s: String, _ i: String, _ j: String) -> String {
            var lines = ["int best\(s) = -1; real m\(s) = (real)(-INFINITY);"]
            for p in 0..<w.kernel[0] {
                for q in 0..<w.kernel[1] {
                    let r = "(\(i) * \(w.stride[0]) + \(p * w.dilation[0] - w.padding[0]))"
                    let col = "(\(j) * \(w.stride[1]) + \(q * w.dilation[1] - w.padding[1]))"
                    let ok = padded ? "\(r) >= 0 && \(r) < \(h) && \(col) >= 0 && \(col) < \(wd)" : "1"
                    lines.append("""
                    { const int at = \(r) * \(wd) + \(col); const int ok = \(ok); const real v = x[(ok ? at : 0)\(px)]; \
                    if (ok && (best\(s) < 0 || v > m\(s) || isnan(v))) { m\(s) = v; best\(s) = at; } }
                    """)
                }
            }
            return lines.joined(separator: "\n    ")
        }
        let local = min(256, maxWorkGroupSize)
        // A work-item per window (i, j) of a plane, and the plane of x it reads, on a range of
        // (j, row of windows) where rows are long: no divisions per window, and work-groups that
        // divide the row need no bounds check (PoCL vectorizes neither).
        // Rows shorter than two of PoCL's vectors ran slower so (the CNN's 14 and 7 windows a
        // row): a flat range there.
        // Channels last: a range of (channel, window), neighbouring work-items on neighbouring
        // channels, so that PoCL's vectors load them together (a flat range with divisions
        // ran at 6 GB/s).
        let rows = ow >= 32 && !last
        let range = last ? rowRange(inner: c, rows: ins[0].shape[0] * oh * ow) : rowRange(inner: ow, rows: planes * oh)
        let window = last ? """
            const int ch = get_global_id(0), row = get_global_id(1);
            \(range.checked ? "if (ch >= \(c)) return;" : "")
            const int gid = row * \(c) + ch, j = row % \(ow), i = (row / \(ow)) % \(oh), image = row / \(ow * oh);
            __global const real* x = \(x) + image * \(h * wd * c) + ch;
            """ : rows ? """
            const int j = get_global_id(0), row = get_global_id(1);
            \(range.checked ? "if (j >= \(ow)) return;" : "")
            const int i = row % \(oh), plane = row / \(oh), gid = row * \(ow) + j;
            __global const real* x = \(x) + plane * \(h * wd);
            """ : """
            const int gid = get_global_id(0);
            if (gid >= n) return;
            const int j = gid % \(ow), i = (gid / \(ow)) % \(oh), plane = gid / \(oh * ow);
            __global const real* x = \(x) + plane * \(h * wd);
            """
        func launchWindows(_ function: String, _ args: [LaunchSpec.Arg]) {
            if rows || last { launch(function, args, range: range, kernel: index) }
            else { launch(function, args, items: planes * oh * ow, local: local, kernel: index) }
        }
        if forward && !last && poolRows(w, input: ins[0].shape) { emitMaxPoolRows(k, window: w, forward: true, index: index); return }
        if forward {
            let count = outs[0].shape.count
            generated.append("""
            __kernel void \(name)(\(params)int n) {
            \(window)
                \(first("", "i", "j"))
                \(pointer(outs[0]))[gid] = m;
            }
            """)
            launchWindows(name, bufferArgs + [.int(count)])
            return
        }
        let g = pointer(ins[1]), dx = pointer(outs[0])
        let overlap = (0..<2).contains { w.stride[$0] < w.dilation[$0] * (w.kernel[$0] - 1) + 1 }
        if !overlap {
            // Pixels no window reads (between windows, past the last) stay 0.
            let covers = !padded && (0..<2).allSatisfy { w.stride[$0] == w.kernel[$0] && w.dilation[$0] == 1 }
                && oh * w.kernel[0] == h && ow * w.kernel[1] == wd
            if !covers {
                generated.append("""
                __kernel void \(name)_zero(__global real* dx, int n) {
                    const int gid = get_global_id(0);
                    if (gid < n) (dx + \(offset(outs[0])))[gid] = (real)0;
                }
                """)
                launch(name + "_zero", [.buffer(outs[0].location.buffer), .int(outs[0].shape.count)], items: outs[0].shape.count,
                       local: local, kernel: index)
            }
            if !last && poolRows(w, input: ins[0].shape) { emitMaxPoolRows(k, window: w, forward: false, index: index); return }
            if last && covers && w.kernel == [2, 2], cpuForms, let v = [16, 8, 4].first(where: { c % $0 == 0 }) {
                emitMaxPoolGradChannelsLast(k, height: h, width: wd, channels: c, vector: v, index: index)
                return
            }
            var writes: [String] = []
            for p in 0..<w.kernel[0] {
                for q in 0..<w.kernel[1] {
                    let r = "(i * \(w.stride[0]) + \(p * w.dilation[0] - w.padding[0]))"
                    let col = "(j * \(w.stride[1]) + \(q * w.dilation[1] - w.padding[1]))"
                    let ok = padded ? "if (\(r) >= 0 && \(r) < \(h) && \(col) >= 0 && \(col) < \(wd)) " : ""
                    writes.append("{ const int at = \(r) * \(wd) + \(col); \(ok)out[at\(px)] = at == best ? up : (real)0; }")
                }
            }
            let count = planes * oh * ow
            generated.append("""
            __kernel void \(name)(\(params)int n) {
            \(window)
                __global real* out = \(dx) + \(last ? "image * \(h * wd * c) + ch" : "plane * \(h * wd)");
                const real up = (\(g))[gid];
                \(first("", "i", "j"))
                \(writes.joined(separator: "\n    "))
            }
            """)
            launchWindows(name, bufferArgs + [.int(count)])
            return
        }
        var gathers: [String] = []
        for p in 0..<w.kernel[0] {
            for q in 0..<w.kernel[1] {
                let s = "\(p)_\(q)"
                gathers.append("""
                { const int t = r + \(w.padding[0] - p * w.dilation[0]), u = col + \(w.padding[1] - q * w.dilation[1]);
                  if (t >= 0 && t % \(w.stride[0]) == 0 && t / \(w.stride[0]) < \(oh) && u >= 0 && u % \(w.stride[1]) == 0 && u / \(w.stride[1]) < \(ow)) {
                    const int i = t / \(w.stride[0]), j = u / \(w.stride[1]);
                    \(first(s, "i", "j"))
                    if (best\(s) == self) sum += g[(i * \(ow) + j)\(px)];
                  } }
                """)
            }
        }
        let count = outs[0].shape.count
        let pixels = rowRange(inner: c, rows: ins[0].shape[0] * h * wd)
        generated.append("""
        __kernel void \(name)(\(params)int n) {
            \(last ? """
            const int ch = get_global_id(0), pixel = get_global_id(1);
            \(pixels.checked ? "if (ch >= \(c)) return;" : "")
            const int gid = pixel * \(c) + ch, col = pixel % \(wd), r = (pixel / \(wd)) % \(h), image = pixel / \(wd * h);
            __global const real* x = \(x) + image * \(h * wd * c) + ch;
            __global const real* g = \(g) + image * \(oh * ow * c) + ch;
            """ : """
            const int gid = get_global_id(0);
            if (gid >= n) return;
            const int col = gid % \(wd), r = (gid / \(wd)) % \(h), plane = gid / \(h * wd);
            __global const real* x = \(x) + plane * \(h * wd);
            __global const real* g = \(g) + plane * \(oh * ow);
            """)
            const int self = r * \(wd) + col;
            real sum = (real)0;
            \(gathers.joined(separator: "\n    "))
            (\(dx))[gid] = sum;
        }
        """)
        if last { launch(name, bufferArgs + [.int(count)], range: pixels, kernel: index) }
        else { launch(name, bufferArgs + [.int(count)], items: count, local: local, kernel: index) }
    }

    /// The gradient of 2 x 2 pooling of stride 2 over channels-last images on CPU devices: a
    /// work-item per window and vector of `v` channels, its four pixels' vectors compared as the
    /// per-window code compares them (first largest, NaN wins) and all four written. With a
    /// work-item per channel PoCL's vectors loaded and stored each pixel's channels apart (0.93
    /// against 0.64 ms channels first for conv1's).
    mutating func emitMaxPoolGradChannelsLast(_ k: Kernel, height h: Int, width wd: Int, channels c: Int, vector v: Int, index: Int) {
        let (params, bufferArgs) = parameters(k)
        let (oh, ow, blocks) = (h / 2, wd / 2, c / v), items = k.inputs[0].shape[0] * oh * ow * blocks
        let x = pointer(k.inputs[0]), g = pointer(k.inputs[1]), dx = pointer(k.outputs[0]), t = "float\(v)", m = "int\(v)"
        generated.append("""
        __kernel void \(k.name)(\(params)int n) {
            const int gid = get_global_id(0);
            if (gid >= n) return;
            const int block = gid % \(blocks), window = gid / \(blocks);
            const int j = window % \(ow), i = (window / \(ow)) % \(oh), image = window / \(ow * oh);
            const int at = image * \(h * wd * c) + (2 * i * \(wd) + 2 * j) * \(c) + block * \(v);
            const \(t) v0 = vload\(v)(0, \(x) + at), v1 = vload\(v)(0, \(x) + at + \(c));
            const \(t) v2 = vload\(v)(0, \(x) + at + \(wd * c)), v3 = vload\(v)(0, \(x) + at + \(wd * c + c));
            const \(m) t1 = (v1 > v0) | isnan(v1);
            const \(t) m1 = select(v0, v1, t1);
            const \(m) t2 = (v2 > m1) | isnan(v2);
            const \(t) m2 = select(m1, v2, t2);
            const \(m) t3 = (v3 > m2) | isnan(v3);
            const \(t) up = vload\(v)(0, \(g) + window * \(c) + block * \(v)), zero = (\(t))(0);
            vstore\(v)(select(zero, up, t3), 0, \(dx) + at + \(wd * c + c));
            vstore\(v)(select(zero, up, t2 & ~t3), 0, \(dx) + at + \(wd * c));
            vstore\(v)(select(zero, up, t1 & ~t2 & ~t3), 0, \(dx) + at + \(c));
            vstore\(v)(select(zero, up, ~t1 & ~t2 & ~t3), 0, \(dx) + at);
        }
        """)
        launch(k.name, bufferArgs + [.int(items)], items: items, local: min(64, maxWorkGroupSize), kernel: index)
    }
}
