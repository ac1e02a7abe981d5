import KilnCompiler
import KilnGraph

/// Window kernels for CPU devices (the vector family): a work-item per row of the image, with
/// the row's windows in straight-line code. PoCL runs a work-group's items in a loop that it
/// vectorizes only when neighbouring items read neighbouring addresses; the windows' kernels of
/// a work-item per output gather instead (6-8 GB/s for the CNN's). A work-item per row reads
/// its rows whole and keeps partial results in registers: unfold, fold and 2 x 2 max pooling
/// 4-8x faster on PoCL (`scripts/pocl_kernel_forms.py --windows`). On GPU-like devices (rusticl
/// on llvmpipe) a work-item per output stays faster, so the GPU family keeps those kernels.
extension OpenCLCodegen {
    /// Rows at most this long take the row kernels (their registers hold a row).
    static let windowRowLimit = 64

    /// Whether this program's movement and window kernels take the CPU devices' forms (vector
    /// types of float): the vector matmul family's devices, float32 programs.
    var cpuForms: Bool { matmul == .vector && program.realType == .float32 }

    /// Whether the row kernels serve this window op: vector family, float32, rows that fit.
    func windowRows(image: Shape, patches: Shape) -> Bool {
        cpuForms && image.rank == 4 && patches.rank == 6
            && image[3] <= Self.windowRowLimit && patches[2] <= Self.windowRowLimit
    }

    /// Vector stores of `values` at `at` + 0, 1, …: 8, 4, 2 and 1 at a time.
    static func storeRun(_ values: [String], at pointer: String, from start: Int) -> [String] {
        var lines: [String] = [], i = 0
        while i < values.count {
            let n = [8, 4, 2, 1].first { $0 <= values.count - i }!
            let run = values[i..<(i + n)].joined(separator: ", ")
            lines.append(n == 1 ? "\(pointer)[\(start + i)] = \(run);" : "vstore\(n)((float\(n))(\(run)), 0, \(pointer) + \(start + i));")
            i += n
        }
        return lines
    }

    /// unfold: a work-item per (image, output row, channel) loads the kh input rows its windows
    /// read, then writes each window's kh x kw entries (contiguous in the patches) with vector
    /// stores. Neighbouring items take neighbouring channels, whose entries are neighbours.
    mutating func emitUnfoldRows(_ k: Kernel, window w: Window2D, padValue: Double, index: Int) {
        let ins = k.inputs, outs = k.outputs, (params, bufferArgs) = parameters(k)
        let (c, h, wd) = (ins[0].shape[1], ins[0].shape[2], ins[0].shape[3])
        let (oh, ow, kh, kw) = (outs[0].shape[1], outs[0].shape[2], w.kernel[0], w.kernel[1])
        let pad = Self.literal(padValue), entries = kh * kw
        func column(_ j: Int, _ q: Int) -> Int { j * w.stride[1] + q * w.dilation[1] - w.padding[1] }
        var lines: [String] = []
        for p in 0..<kh {
            // Rows inside the image for every output row need no check.
            let always = p * w.dilation[0] >= w.padding[0] && (oh - 1) * w.stride[0] + p * w.dilation[0] - w.padding[0] < h
            lines.append("const int r\(p) = i * \(w.stride[0]) + \(p * w.dilation[0] - w.padding[0]);")
            lines.append(always ? "__global const real* x\(p) = x + r\(p) * \(wd);"
                                : "const int ok\(p) = r\(p) >= 0 && r\(p) < \(h); __global const real* x\(p) = x + (ok\(p) ? r\(p) : 0) * \(wd);")
            let columns = Set((0..<ow).flatMap { j in (0..<kw).map { column(j, $0) } }).filter { $0 >= 0 && $0 < wd }.sorted()
            for col in columns {
                lines.append("const real v\(p)_\(col) = " + (always ? "x\(p)[\(col)];" : "ok\(p) ? x\(p)[\(col)] : \(pad);"))
            }
        }
        for j in 0..<ow {
            let values = (0..<kh).flatMap { p in (0..<kw).map { q in
                let col = column(j, q)
                return col >= 0 && col < wd ? "v\(p)_\(col)" : pad
            } }
            lines += Self.storeRun(values, at: "out", from: j * c * entries)
        }
        let count = ins[0].shape[0] * oh * c
        generated.append("""
        __kernel void \(k.name)(\(params)int n) {
            const int gid = get_global_id(0);
            if (gid >= n) return;
            const int ch = gid % \(c), i = (gid / \(c)) % \(oh), b = gid / \(c * oh);
            __global const real* x = \(pointer(ins[0])) + (b * \(c) + ch) * \(h * wd);
            __global real* out = \(pointer(outs[0])) + (b * \(oh) + i) * \(ow * c * entries) + ch * \(entries);
            \(lines.joined(separator: "\n    "))
        }
        """)
        launch(k.name, bufferArgs + [.int(count)], items: count, local: min(64, maxWorkGroupSize), kernel: index)
    }

    /// fold: a work-item per (image, channel, pixel row) adds into one accumulator per pixel of
    /// its row, walking the patch rows whose windows cover it. Each pixel's terms come in the
    /// order of the per-pixel kernel (kh, then kw ascending), so the sums are the same.
    mutating func emitFoldRows(_ k: Kernel, window w: Window2D, height h: Int, width wd: Int, index: Int) {
        let ins = k.inputs, outs = k.outputs, (params, bufferArgs) = parameters(k)
        let (oh, ow, c) = (ins[0].shape[1], ins[0].shape[2], ins[0].shape[3])
        let (kh, kw, sh) = (w.kernel[0], w.kernel[1], w.stride[0]), entries = kh * kw
        var lines = ["real " + (0..<wd).map { "a\($0) = (real)0" }.joined(separator: ", ") + ";"]
        for p in 0..<kh {
            let t = "t\(p)"
            lines.append("const int \(t) = y + \(w.padding[0] - p * w.dilation[0]);")
            let inside = sh == 1 ? "\(t) >= 0 && \(t) < \(oh)" : "\(t) >= 0 && \(t) % \(sh) == 0 && \(t) / \(sh) < \(oh)"
            var adds: [String] = []
            // Patches right to left: a pixel's kw terms then come in ascending q.
            // A patch's kw entries by one vector load where OpenCL has the width: scalar loads
            // let PoCL vectorize across work-items, gathering with a stride of kh x kw (3x slower).
            let vector = [2, 3, 4, 8, 16].contains(kw)
            for u in (0..<ow).reversed() {
                let at = u * c * entries + p * kw
                let terms = (0..<kw).compactMap { q -> (Int, Int)? in
                    let x = u * w.stride[1] + q * w.dilation[1] - w.padding[1]
                    return x >= 0 && x < wd ? (q, x) : nil
                }
                guard !terms.isEmpty else { continue }
                if vector {
                    adds.append("{ const float\(kw) v = vload\(kw)(0, row + \(at)); " + terms.map { "a\($0.1) += v.s\(String($0.0, radix: 16));" }.joined(separator: " ") + " }")
                } else {
                    adds += terms.map { "a\($0.1) += row[\(at + $0.0)];" }
                }
            }
            guard !adds.isEmpty else { continue }
            lines.append("if (\(inside)) { __global const real* row = image + (\(sh == 1 ? t : "\(t) / \(sh)")) * \(ow * c * entries);")
            lines += adds.map { "    " + $0 }
            lines.append("}")
        }
        lines += Self.storeRun((0..<wd).map { "a\($0)" }, at: "out", from: 0)
        let count = outs[0].shape[0] * c * h
        generated.append("""
        __kernel void \(k.name)(\(params)int n) {
            const int gid = get_global_id(0);
            if (gid >= n) return;
            const int ch = gid % \(c), y = (gid / \(c)) % \(h), b = gid / \(c * h);
            __global const real* image = \(pointer(ins[0])) + b * \(oh * ow * c * entries) + ch * \(entries);
            __global real* out = \(pointer(outs[0])) + ((b * \(c) + ch) * \(h) + y) * \(wd);
            \(lines.joined(separator: "\n    "))
        }
        """)
        launch(k.name, bufferArgs + [.int(count)], items: count, local: min(64, maxWorkGroupSize), kernel: index)
    }

    /// Whether 2 x 2 max pooling of stride 2 takes the row kernels.
    func poolRows(_ w: Window2D, input: Shape) -> Bool {
        cpuForms && w.kernel == [2, 2] && w.stride == [2, 2]
            && w.padding == [0, 0] && w.dilation == [1, 1] && input.rank == 4
    }

    /// 2 x 2 max pooling of stride 2 and its gradient: a work-item per row of windows reads its
    /// two input rows as vectors, whose even and odd lanes are the windows' columns. The first
    /// largest element (row-major, NaN wins) is chosen as by the per-window kernel. The
    /// gradient writes both rows whole (0 but at each window's first largest).
    mutating func emitMaxPoolRows(_ k: Kernel, window w: Window2D, forward: Bool, index: Int) {
        let ins = k.inputs, outs = k.outputs, (params, bufferArgs) = parameters(k)
        let (h, wd) = (ins[0].shape[2], ins[0].shape[3]), (oh, ow) = (h / 2, wd / 2)
        let rows = ins[0].shape[0] * ins[0].shape[1] * oh
        var lines: [String] = [], o = 0
        while o < ow {
            var n = [8, 4, 2, 1].first { $0 <= ow - o }!
            // A tail of 1-3 windows in a row of four or more: the last four windows, overlapping
            // ones already done (written again with the same values), as one vector rather than
            // narrower ones (the CNN's 7 windows a row: 4 + 2 + 1 ran at half the speed of 14's).
            if n < 4 && ow >= 4 { (o, n) = (ow - 4, 4) }
            if n == 1 {
                lines.append("""
                { const real t0 = t[\(2 * o)], t1 = t[\(2 * o + 1)], u0 = u[\(2 * o)], u1 = u[\(2 * o + 1)];
                      real m = t0; int k = 0;
                      if (t1 > m || isnan(t1)) { m = t1; k = 1; }
                      if (u0 > m || isnan(u0)) { m = u0; k = 2; }
                      if (u1 > m || isnan(u1)) { m = u1; k = 3; }
                """ + (forward ? "\n      out[\(o)] = m; }" : """

                      const real up = g[\(o)];
                      dt[\(2 * o)] = k == 0 ? up : (real)0; dt[\(2 * o + 1)] = k == 1 ? up : (real)0;
                      du[\(2 * o)] = k == 2 ? up : (real)0; du[\(2 * o + 1)] = k == 3 ? up : (real)0; }
                """))
            } else {
                let (v, vo, iv) = ("float\(2 * n)", "float\(n)", "int\(n)")
                let interleave = "(uint\(2 * n))(" + (0..<n).map { "\($0), \($0 + n)" }.joined(separator: ", ") + ")"
                lines.append("""
                { const \(v) a = vload\(2 * n)(0, t + \(2 * o)), b = vload\(2 * n)(0, u + \(2 * o));
                      \(vo) m = a.even; \(iv) k = (\(iv))0, c;
                      c = (a.odd > m) | isnan(a.odd); m = select(m, a.odd, c); k = select(k, (\(iv))1, c);
                      c = (b.even > m) | isnan(b.even); m = select(m, b.even, c); k = select(k, (\(iv))2, c);
                      c = (b.odd > m) | isnan(b.odd); m = select(m, b.odd, c); k = select(k, (\(iv))3, c);
                """ + (forward ? "\n      vstore\(n)(m, 0, out + \(o)); }" : """

                      const \(vo) up = vload\(n)(0, g + \(o)), z = (\(vo))0;
                      vstore\(2 * n)(shuffle2(select(z, up, k == 0), select(z, up, k == 1), \(interleave)), 0, dt + \(2 * o));
                      vstore\(2 * n)(shuffle2(select(z, up, k == 2), select(z, up, k == 3), \(interleave)), 0, du + \(2 * o)); }
                """))
            }
            o += n
        }
        // Row r of windows is row r % oh of plane r / oh; its input rows 2i and 2i + 1.
        let start = h == 2 * oh ? "r * \(2 * wd)" : "(r / \(oh)) * \(h * wd) + (r % \(oh)) * \(2 * wd)"
        let head = forward ? """
            __global const real* t = \(pointer(ins[0])) + \(start); __global const real* u = t + \(wd);
            __global real* out = \(pointer(outs[0])) + r * \(ow);
            """ : """
            __global const real* t = \(pointer(ins[0])) + \(start); __global const real* u = t + \(wd);
            __global const real* g = \(pointer(ins[1])) + r * \(ow);
            __global real* dt = \(pointer(outs[0])) + \(start); __global real* du = dt + \(wd);
            """
        generated.append("""
        __kernel void \(k.name)(\(params)int n) {
            const int r = get_global_id(0);
            if (r >= n) return;
            \(head)
            \(lines.joined(separator: "\n    "))
        }
        """)
        launch(k.name, bufferArgs + [.int(rows)], items: rows, local: min(64, maxWorkGroupSize), kernel: index)
    }
}
