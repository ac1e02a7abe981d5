import KilnCompiler
import KilnGraph

extension OpenCLCodegen {
    /// The coordinate of output axis `k` of `shape` at flat index `gid`, as an expression.
    static func coordinate(_ shape: Shape, _ k: Int, gid: String = "gid") -> String {
        let s = shape.strides[k]
        let t = s == 1 ? gid : "(\(gid) / \(s))"
        return k == 0 ? t : "(\(t) % \(shape[k]))"
    }

    /// The element read for output flat index `gid` of `shape` with `strides` per output axis, from `base`.
    static func stridedIndex(_ shape: Shape, _ strides: [Int], base: Int) -> String {
        ([String(base)] + (0..<shape.rank).filter { shape[$0] > 1 }.map { "\(coordinate(shape, $0)) * \(strides[$0])" })
            .joined(separator: " + ")
    }

    /// transpose, slice, pad and concat: a work-item per output element, its source computed from its
    /// coordinates with every size and stride a constant.
    mutating func emitMovement(_ k: Kernel, index: Int) {
        let name = k.name, ins = k.inputs, out = k.outputs[0]
        let (params, bufferArgs) = parameters(k)
        let shape = out.shape
        guard shape.count > 0 else { return }   // nothing to write (and strides of 0 to divide by)
        func element(_ o: Operand, _ at: String) -> String { "\(pointer(o))[\(at)]" }
        var body: String
        switch k.kind {
        case .node(.slice), .node(.transpose):
            // Read at a stride along each output axis (slice: starts + steps·c; transpose: the
            // permuted strides). A 2-D range of (position along the last axis, row): the row's
            // start is computed once per row, not from every element's flat index (PoCL ran the
            // CNN's [N, H, W, C] -> [N, C, H, W] at 9 GB/s that way).
            let strides = ins[0].shape.strides
            let (along, base): ([Int], Int)
            if case let .node(.slice(starts, steps)) = k.kind {
                (along, base) = (zip(strides, steps).map { $0 * $1 }, zip(starts, strides).map { $0 * $1 }.reduce(0, +))
            } else if case let .node(.transpose(perm)) = k.kind {
                if cpuForms, let t = ins[0].shape.batchedTranspose(perm),
                   t.rows % 4 == 0, t.columns % 4 == 0 {
                    emitTileTranspose(name: name, params: params, args: bufferArgs, t, source: ins[0], destination: out, kernel: index)
                    return
                }
                (along, base) = (perm.map { strides[$0] }, 0)
                // Short output rows over long input rows ([N, H, W, C] -> [N, C, H, W]): walk
                // the input's rows instead, writing at a stride (3.1 -> 0.9 ms for the CNN's).
                let inShape = ins[0].shape
                if shape.rank > 1, shape[shape.rank - 1] < 32, inShape[inShape.rank - 1] >= 32 {
                    let outStrides = shape.strides
                    var written = [Int](repeating: 0, count: perm.count)
                    for (k, a) in perm.enumerated() { written[a] = outStrides[k] }
                    emitStridedRows(name: name, params: params, args: bufferArgs, shape: inShape, strides: written, base: 0,
                                    source: ins[0], destination: out, kernel: index, scatter: true)
                    return
                }
            } else { return }
            emitStridedRows(name: name, params: params, args: bufferArgs, shape: shape, strides: along, base: base,
                            source: ins[0], destination: out, kernel: index)
            return
        case let .node(.pad(low, interior, value)):
            // An output coordinate c holds input element (c − low) / (interior + 1) where that
            // divides exactly and lies inside the input; the value elsewhere.
            let inShape = ins[0].shape, strides = inShape.strides
            var lines = ["int src = 0, inside = 1;"]
            for a in 0..<shape.rank {
                let p = interior[a] + 1, span = inShape[a] == 0 ? 0 : (inShape[a] - 1) * p + 1
                let t = "t\(a)"
                var cond = "\(t) >= 0 && \(t) < \(span)"
                if p > 1 { cond += " && \(t) % \(p) == 0" }
                lines.append("const int \(t) = \(Self.coordinate(shape, a)) - \(low[a]); inside = inside && \(cond); src += (\(p > 1 ? "\(t) / \(p)" : t)) * \(strides[a]);")
            }
            lines.append("\(element(out, "gid")) = inside ? \(element(ins[0], "src")) : \(Self.literal(value));")
            body = lines.joined(separator: "\n    ")
        case .node(.concat(let axis)):
            // The part whose range along the axis holds the coordinate c, read at c minus the range's start.
            let inner = shape.dims[(axis + 1)...].reduce(1, *), total = shape[axis]
            var lines = ["const int c = \(Self.coordinate(shape, axis)), o = gid / \(total * inner), i = gid % \(inner);"]
            var start = 0
            let ranges = ins.map { part -> (Operand, Int, Int) in
                defer { start += part.shape[axis] }
                return (part, start, part.shape[axis])
            }.filter { $0.2 > 0 }
            for (j, (part, from, n)) in ranges.enumerated() {
                let read = "\(element(out, "gid")) = \(element(part, "o * \(n * inner) + (c - \(from)) * \(inner) + i"));"
                lines.append((j > 0 ? "else " : "") + (j == ranges.count - 1 ? "" : "if (c < \(from + n)) ") + read)
            }
            body = lines.joined(separator: "\n    ")
        default:
            return
        }
        generated.append("""
        __kernel void \(name)(\(params)int n) {
            const int gid = get_global_id(0);
            if (gid >= n) return;
            \(body)
        }
        """)
        // Work-groups of 64, as the transposes had before they joined these kernels.
        launch(name, bufferArgs + [.int(shape.count)], items: shape.count, local: min(64, maxWorkGroupSize), kernel: index)
    }

    /// A batched transpose on CPU devices: a work-item per 4 x 4 tile, four vector loads along
    /// the input's rows and four vector stores along the output's, the tiles along the longer
    /// side neighbours. PoCL gathered or scattered element by element otherwise: the CNN's
    /// `[128, 784, 32]` 1.6 -> 0.5 ms, `[128, 32, 784]` 1.8 -> 0.5 (`python3
    /// scripts/pocl_kernel_forms.py --transposes`); in its step 3.2 -> 2.0 ms.
    private mutating func emitTileTranspose(name: String, params: String, args: [LaunchSpec.Arg], _ t: (batch: Int, rows: Int, columns: Int),
                                            source: Operand, destination: Operand, kernel: Int) {
        let (rows, columns) = (t.rows, t.columns), (tr, tc) = (t.rows / 4, t.columns / 4), count = t.batch * tr * tc
        let tiles = rows >= columns
            ? "const int ti = gid % \(tr), tj = (gid / \(tr)) % \(tc), b = gid / \(tr * tc);"
            : "const int tj = gid % \(tc), ti = (gid / \(tc)) % \(tr), b = gid / \(tr * tc);"
        let stores = (0..<4).map { q in
            "vstore4((float4)(r0.s\(q), r1.s\(q), r2.s\(q), r3.s\(q)), 0, y + \(q * rows));"
        }.joined(separator: "\n    ")
        generated.append("""
        __kernel void \(name)(\(params)int n) {
            const int gid = get_global_id(0);
            if (gid >= n) return;
            \(tiles)
            __global const float* x = \(pointer(source)) + b * \(rows * columns) + ti * \(4 * columns) + tj * 4;
            const float4 r0 = vload4(0, x), r1 = vload4(0, x + \(columns)), r2 = vload4(0, x + \(2 * columns)), r3 = vload4(0, x + \(3 * columns));
            __global float* y = \(pointer(destination)) + b * \(rows * columns) + tj * \(4 * rows) + ti * 4;
            \(stores)
        }
        """)
        launch(name, args + [.int(count)], items: count, local: min(64, maxWorkGroupSize), kernel: kernel)
    }

    /// A strided copy into `destination` (of `shape`): output element c reads `source` at
    /// `base + Σ c[k]·strides[k]`, on a range of (position along the last axis, row). With
    /// `scatter`, the other way round: `shape` is the source's, and its element c is written
    /// to `destination` at `base + Σ c[k]·strides[k]`.
    private mutating func emitStridedRows(name: String, params: String, args: [LaunchSpec.Arg], shape: Shape, strides: [Int], base: Int,
                                          source: Operand, destination: Operand, kernel: Int, scatter: Bool = false) {
        let rank = shape.rank, inner = rank == 0 ? 1 : shape[rank - 1], rows = shape.count / inner
        let outer = Shape(Array(shape.dims.dropLast()))
        var start = [String(base)]
        for k in 0..<max(rank - 1, 0) where shape[k] > 1 { start.append("\(Self.coordinate(outer, k, gid: "r")) * \(strides[k])") }
        let step = rank == 0 ? 0 : strides[rank - 1]
        // Rows shorter than two of PoCL's vectors ran slower so (7.0 against 8.6 GB/s for the
        // CNN's [N, H, W, C] -> [N, C, 28, 28]): a flat range there.
        guard inner >= 32 else {
            generated.append("""
            __kernel void \(name)(\(params)int n) {
                const int gid = get_global_id(0);
                if (gid >= n) return;
                \(scatter ? "\(pointer(destination))[\(Self.stridedIndex(shape, strides, base: base))] = \(pointer(source))[gid];"
                          : "\(pointer(destination))[gid] = \(pointer(source))[\(Self.stridedIndex(shape, strides, base: base))];")
            }
            """)
            return launch(name, args + [.int(shape.count)], items: shape.count, local: min(64, maxWorkGroupSize), kernel: kernel)
        }
        let range = rowRange(inner: inner, rows: rows)
        generated.append("""
        __kernel void \(name)(\(params)int n) {
            const int i = get_global_id(0), r = get_global_id(1);
            \(range.checked ? "if (i >= \(inner)) return;" : "")
            \(scatter ? "\(pointer(destination, plus: start.joined(separator: " + ")))[\(step == 1 ? "i" : "i * \(step)")] = \(pointer(source, plus: "r * \(inner)"))[i];"
                      : "\(pointer(destination, plus: "r * \(inner)"))[i] = \(pointer(source, plus: start.joined(separator: " + ")))[\(step == 1 ? "i" : "i * \(step)")];")
        }
        """)
        launch(name, args + [.int(shape.count)], range: range, kernel: kernel)
    }
}
