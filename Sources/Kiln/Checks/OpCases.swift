/// The cases that check every op, in one list per check. Each list iterates `UnaryOp`,
/// `BinaryOp` and `ReduceOp` rather than naming their functions, so a new elementwise op or
/// reduction is checked without being named here; the catalogue tests compute which
/// `OpKind`s each list exercises and fail when one is missing.
public enum OpCases {
    static func transposeName(_ ta: Bool, _ tb: Bool) -> String { (ta ? "Aᵀ" : "A") + "·" + (tb ? "Bᵀ" : "B") }
    static let transposeForms = [(false, false), (true, false), (false, true), (true, true)]

    // MARK: Device against oracle

    /// Device-vs-oracle cases at awkward sizes (1, 3, 17, 127, 129, 1000, broadcast axes of
    /// size 1, shapes at and off tile edges), forward and gradient: `kiln selftest` runs each on
    /// its own; the OpenCL tests run them all in one program per configuration.
    public static let parity = parity(small: false)

    /// The same cases at small sizes (`kiln selftest --small`), for a simulator that runs kernels
    /// a thousand times slower (Oclgrind): still every kernel family and fusion pattern, both
    /// reduction templates, and matmuls at and off the edges of every tile and vector panel.
    public static let small = parity(small: true)

    static func parity(small: Bool) -> [OpCase] {
        /// A size: `full` normally, `reduced` in the small set.
        func d(_ full: Int, _ reduced: Int) -> Int { small ? reduced : full }
        var cases: [OpCase] = []
        let n = d(1000, 37)
        cases.append(OpCase("elementwise: every unary op [\(n)]", seed: 1) { g in
            for op in UnaryOp.allCases {
                let range = op.testDomain.lowerBound > 0 ? 0.1...2 : op.testDomain
                g.output("\(op)", try g.graph.unary(op, g.input("x \(op)", [n], range)))
            }
        })
        let (rows, columns) = (d(129, 9), d(127, 7))
        cases.append(OpCase("elementwise: every binary op [\(rows),1] x [1,\(columns)]", seed: 2) { g in
            for op in BinaryOp.allCases {
                let col = try g.input("col \(op)", [rows, 1]), row = try g.input("row \(op)", [1, columns], op.testDomainOfRight)
                g.output("\(op)", try g.graph.binary(op, col, row), differentiable: op.kind.traits.gradient == .rule)
                g.output("\(op) by a scalar", try g.graph.binary(op, col, g.input("scalar \(op)", [], op.testDomainOfRight)),
                         differentiable: op.kind.traits.gradient == .rule)
            }
        })
        let (c0, c1, c2) = (5, d(33, 6), d(127, 7))
        cases.append(OpCase("elementwise: chain broadcasting [\(c0),\(c1),\(c2)]", seed: 3) { g in
            let a = try g.input("a", [c0, c1, c2]), col = try g.input("col", [c1, 1])
            let row = try g.input("row", [1, 1, c2]), s = try g.input("s", [], 0.5...2)
            let u = try (a * col + row).tanh() * s
            let v = try a.maximum(row) / (try col.exp() + 1)
            let w = try (a - s).relu().minimum(col)
            g.output("chain", try (u - v).sigmoid() + w * 0.5)
            g.output("scalar ops", try 2 - (a * a + 1).sqrt() / s)
        })
        let (r0, r1) = (d(17, 5), d(129, 9))
        cases.append(OpCase("layout: transpose, reshape, broadcastTo", seed: 4) { g in
            let r = try g.input("r", [r0, r1, 3]), col = try g.input("col", [r1, 1])
            g.output("transpose [2,0,1]", try r.transposed([2, 0, 1]))
            g.output("transpose [1,0,2] * 3", try r.transposed([1, 0, 2]) * 3)
            g.output("reshape [\(r1),\(3 * r0)]", try r.reshaped([r1, 3 * r0]).exp())
            g.output("broadcastTo [3,\(r1),\(columns)]", try col.broadcast(to: [3, r1, columns]))
        })
        // Images both ways between channels-last and channels-first (OpenCL walks whichever
        // side has the long rows), per-channel statistics as batch norm takes them (a work-item
        // per channel and part on CPU devices), broadcasts along rows of 35 (a work-group per
        // row) and 526 (no divisor from 16 to 256: bounds checked), and pooling windows that
        // tile the plane.
        let (ih, iw) = (d(5, 3), d(7, 5)), (t6, t20) = (d(6, 2), d(20, 8))
        cases.append(OpCase("images: channels-last <-> first, per-channel statistics, row broadcasts, tiling windows", seed: 13) { g in
            let last = try g.input("nhwc", [2, ih, iw, 33]), first = try g.input("nchw", [2, 33, ih, iw])
            g.output("nhwc -> nchw", try last.transposed([0, 3, 1, 2]))
            g.output("nchw -> nhwc", try first.transposed([0, 2, 3, 1]))
            // Sides that are multiples of 4 (CPU devices' tiles), and a matrix's transpose.
            g.output("nhwc -> nchw, sides of 4", try g.input("nhwc 4", [2, 4, t6, 8]).transposed([0, 3, 1, 2]))
            g.output("nchw -> nhwc, sides of 4", try g.input("nchw 4", [2, 8, 4, t6]).transposed([0, 2, 3, 1]))
            g.output("matrix transposed", try g.input("matrix", [12, t20]).transposed([1, 0]))
            let x = try g.input("x", [3, 4, 5, 7]), scale = try g.input("scale", [1, 4, 1, 1], 0.5...2)
            let mean = try x.mean(axes: [0, 2, 3], keepDims: true)
            g.output("per-channel mean", mean)
            g.output("per-channel variance", try ((x - mean) * (x - mean)).mean(axes: [0, 2, 3]))
            g.output("per-channel max", try x.max(axes: [0, 2, 3]))
            g.output("normalized", try (x - mean) * scale)
            g.output("rows of 526 + bias", try (g.input("wide rows", [3, 526]) + g.input("bias", [526])).relu())
            // Windows that tile the plane (the CPU backend's fast paths): 2 x 2, and 2 x 3.
            g.output("maxPool 2 on 6x8", try g.graph.maxPool(try g.input("pooled", [2, 3, 6, 8]), window: try Window2D(2, stride: 2)))
            // 7 windows a row (the CNN's second pooling): the last four overlap the first four.
            g.output("maxPool 2 on 4x14", try g.graph.maxPool(try g.input("pooled 4x14", [2, 3, 4, 14]), window: try Window2D(2, stride: 2)))
            // 15 windows a row (CPU devices' vectors of 8, 4, 2 and 1), a last row left out.
            g.output("maxPool 2 on 7x30", try g.graph.maxPool(try g.input("pooled 7x30", [2, 3, 7, 30]), window: try Window2D(2, stride: 2)))
            g.output("maxPool 2x3 on 6x9", try g.graph.maxPool(try g.input("pooled 2x3", [2, 3, 6, 9]),
                                                               window: try Window2D(kernel: [2, 3], stride: [2, 3])))
            // Channels-last windows: 16 channels (the CPU backend's vectors), 5, and overlapping
            // padded windows (the general loops; OpenCL's per-pixel gradient).
            let nhwcWindow = try Window2D(2, stride: 2).channelsLast(true)
            g.output("maxPool 2 channels last, 6x8x16", try g.graph.maxPool(try g.input("pooled nhwc", [2, 6, 8, 16]), window: nhwcWindow))
            g.output("maxPool 2 channels last, 4x6x5", try g.graph.maxPool(try g.input("pooled nhwc 5", [2, 4, 6, 5]), window: nhwcWindow))
            g.output("maxPool 3, stride 2, padding 1, channels last", try g.graph.maxPool(try g.input("pooled nhwc 3", [2, 7, 6, 3]),
                                                                                           window: try Window2D(3, stride: 2, padding: 1).channelsLast(true)))
            // A convolution's channels-last product moved to NCHW: the transpose sinks through
            // batch norm's ops, ReLU and the pooling, to the pooled values.
            let image = try g.input("conv product", [2, 6, 8, 4]).transposed([0, 3, 1, 2])
            let centered = try image - image.mean(axes: [0, 2, 3], keepDims: true)
            let normalized = try (centered * g.input("bn scale", [1, 4, 1, 1], 0.5...2) + g.input("bn shift", [4, 1, 1])).relu()
            g.output("batch norm, ReLU and pooling of a transpose", try g.graph.maxPool(normalized, window: try Window2D(2, stride: 2)))
            // Channels-last per-channel sums of computed values, sharing a pass (OpenCL's
            // blocks of columns: more than 1024 rows).
            let activations = try g.input("nhwc activations", [3, 20, 20, 12]), perChannel = try g.input("per channel", [1, 1, 1, 12])
            g.output("channels-last sum of a product", try (activations * perChannel).sum(axes: [0, 1, 2]))
            g.output("channels-last sum of a difference", try (activations - perChannel).sum(axes: [0, 1, 2]))
        })
        for op in ReduceOp.allCases {
            cases.append(OpCase("reduce: \(op) of [\(r0),\(r1),3] over 6 axis sets", seed: 10) { g in
                let r = try g.input("r", [r0, r1, 3])
                for (axes, keep) in [([0], true), ([1], false), ([2], true), ([0, 2], false), ([1, 2], true), ([0, 1, 2], false)] {
                    g.output("\(op) \(axes)\(keep ? " keepDims" : "")", try g.graph.reduce(op, r, axes: axes, keepDims: keep))
                }
            })
        }
        // Over 1024 values per output, and few outputs: the work-group reduction, not a work-item per output.
        let (wide, tall, short) = (d(70000, 1500), d(4099, 1100), d(1000, 300))
        // Columns in blocks of 16, 8 and 4 (vector loads on CPU devices) and of none.
        cases.append(OpCase("reduce: long rows and columns [3,\(wide)], [\(tall),5|48|24|12], [3,\(short)]", seed: 11) { g in
            let w = try g.input("wide", [3, wide]), t = try g.input("tall", [tall, 5])
            g.output("sum [3,\(wide)] axis 1", try w.sum(axes: [1]))
            g.output("max [3,\(wide)] all", try w.max())
            g.output("mean [\(tall),5] axis 0", try t.mean(axes: [0]))
            g.output("max [\(tall),5] axis 0", try t.max(axes: [0], keepDims: true))
            g.output("sum [\(tall),48] axis 0", try g.input("tall48", [tall, 48]).sum(axes: [0]))
            g.output("mean [\(tall),24] axis 0", try g.input("tall24", [tall, 24]).mean(axes: [0]))
            g.output("sum [\(tall),3,4] axis 0", try g.input("tall12", [tall, 3, 4]).sum(axes: [0]))
            g.output("sum [3,\(short)] axis 1", try g.input("short", [3, short]).sum(axes: [1]))
        })
        let (p0, p1) = (d(127, 9), d(129, 11))
        cases.append(OpCase("reduce: with elementwise prologues", seed: 12) { g in
            let x = try g.input("x", [p0, p1])
            g.output("sum of squares axis 1", try (x * x).sum(axes: [1]))
            g.output("mean of exp axis 0", try x.exp().mean(axes: [0]))
            g.output("max of tanh all", try x.tanh().max())
            // Lanes of 24 and 12 (vector registers of 8 and 4 on CPU devices), a per-channel load.
            let y = try g.input("y", [6, 4, 24]), z = try g.input("z", [6, 4, 12]), scale = try g.input("scale", [1, 4, 1])
            g.output("sum of squares [6,4,24] axes 0,2", try (y * y).sum(axes: [0, 2]))
            g.output("mean of -(z - 1) * scale, [6,4,12] axes 0,2", try (-((z - 1) * scale)).mean(axes: [0, 2], keepDims: true))
        })
        // Edges of every tile and vector panel; N of 64 and 128 fill whole vector panels (B
        // untransposed is then read in place).
        // The small set: off every edge, whole 64-tiles and vector panels, and 130 rows over one 128-tile.
        let sizes = small ? [(1, 1, 1), (3, 17, 1), (17, 31, 33), (33, 1, 31), (5, 33, 64), (64, 16, 64), (130, 20, 128)]
            : [(1, 1, 1), (3, 17, 1), (1, 17, 127), (17, 127, 129), (129, 17, 1), (127, 129, 17), (129, 1, 127),
               (1000, 3, 17), (1, 1000, 3), (5, 33, 64), (130, 70, 128), (128, 256, 64)]
        // A matmul's gradients are matmuls of the other transpose forms, which every size checks
        // forward; two sizes check them as gradients too (each kernel costs a device build).
        for (m, k, n) in sizes {
            let gradients = [(17, 127, 129), (129, 1, 127), (17, 31, 33), (33, 1, 31)].contains { $0 == (m, k, n) }
            cases.append(OpCase("matmul: \(m)x\(k)x\(n), 4 transpose forms", seed: UInt64(100 + m + k + n), gradients: gradients) { g in
                for (ta, tb) in transposeForms {
                    let a = try g.input("A \(transposeName(ta, tb))", ta ? [k, m] : [m, k])
                    let b = try g.input("B \(transposeName(ta, tb))", tb ? [n, k] : [k, n])
                    g.output(transposeName(ta, tb), try a.matmul(b, transposeA: ta, transposeB: tb))
                }
            })
        }
        if !small {
            cases.append(OpCase("matmul: 512x512x512, 4 transpose forms", seed: 200, gradients: false) { g in
                for (ta, tb) in transposeForms {
                    let a = try g.input("A \(transposeName(ta, tb))", [512, 512]), b = try g.input("B \(transposeName(ta, tb))", [512, 512])
                    g.output(transposeName(ta, tb), try a.matmul(b, transposeA: ta, transposeB: tb))
                }
            })
            // K far beyond M x N with B read in place, as a weight's gradient over a batch of
            // pixels: CPU devices split it over K (9 chunks, the last of 8 rows) and add the
            // chunks before the epilogue; with 9 columns, as the transposed product.
            cases.append(OpCase("matmul: split over K, 13x8200x64 + bias, relu, and 64x8200x9", seed: 201, gradients: false) { g in
                let bias = try g.input("bias", [64])
                for ta in [false, true] {
                    let a = try g.input("A \(transposeName(ta, false))", ta ? [8200, 13] : [13, 8200]), b = try g.input("B \(ta)", [8200, 64])
                    g.output("relu(\(transposeName(ta, false)) + bias)", try (a.matmul(b, transposeA: ta) + bias).relu())
                }
                // 9 columns (no whole panel) but Aᵀ of 64: the kernel computes Cᵀ, both forms of B.
                for tb in [false, true] {
                    let a = try g.input("A 9 \(tb)", [8200, 64]), b = try g.input("B 9 \(tb)", tb ? [9, 8200] : [8200, 9])
                    g.output("\(transposeName(true, tb)), 9 columns", try a.matmul(b, transposeA: true, transposeB: tb))
                }
            })
        }
        // A batch of matrices, each its own product: attention's shapes at an odd batch, off the
        // tile edges, with an epilogue, and Tensor.matmul's broadcasting of a matrix over a batch.
        let (bb, bm, bk, bn) = (3, d(33, 5), d(17, 7), d(65, 9))
        cases.append(OpCase("batched matmul [\(bb),2] of \(bm)x\(bk)x\(bn), 4 transpose forms", seed: 202) { g in
            for (ta, tb) in transposeForms {
                let a = try g.input("A \(transposeName(ta, tb))", ta ? [bb, 2, bk, bm] : [bb, 2, bm, bk])
                let b = try g.input("B \(transposeName(ta, tb))", tb ? [bb, 2, bn, bk] : [bb, 2, bk, bn])
                g.output(transposeName(ta, tb), try a.matmul(b, transposeA: ta, transposeB: tb))
            }
            let x = try g.input("x", [bb, bm, bk]), w = try g.input("w", [bk, bn]), v = try g.input("v", [bm, bn])
            g.output("tanh(x·w) batched", try x.matmul(try w.broadcast(to: [bb, bk, bn])).tanh())
            g.output("x·w, rows of a batch", try x.matmul(w))
            // The rows' product reshaped back to [B, T, n], then an epilogue (a Linear's bias and activation).
            g.output("tanh(x·w + c), rows of a batch", try (x.matmul(w) + g.input("c", [bn])).tanh())
            g.output("vᵀ·x broadcast over the batch", try v.matmul(x, transposeA: true))
        })
        // Transposes that matmuls read in place (compiled with fusion): attention's heads split
        // off [B, T, H·d] (rows in place, two batch axes), keys as columns ([0,2,3,1]), one batch
        // axis, a plain matrix, one transpose read by two matmuls, an epilogue that also reads the
        // transposed tensor's input, and the gradients, whose transposes are read in place too.
        let (vb, vt, vh, vd) = (2, d(33, 5), 3, d(16, 4))
        cases.append(OpCase("strided views: matmuls reading transposes in place [\(vb),\(vt),\(vh)·\(vd)]", seed: 203) { g in
            func heads(_ x: Tensor) throws -> Tensor { try x.reshaped([vb, vt, vh, vd]).transposed([0, 2, 1, 3]) }
            let x = try g.input("x", [vb, vt, vh * vd]), y = try g.input("y", [vb, vt, vh * vd])
            let q = try heads(x), k = try heads(y)
            let scores = try q.matmul(k, transposeB: true)                                   // [B, H, T, T]
            g.output("q·kᵀ", scores)
            g.output("q·(k as columns)", try q.matmul(y.reshaped([vb, vt, vh, vd]).transposed([0, 2, 3, 1])))
            g.output("softmax(q·kᵀ)·k, joined", try g.graph.softmax(scores).matmul(k).transposed([0, 2, 1, 3]).reshaped([vb, vt, vh * vd]))
            let m = try g.input("m", [vt, vb, vd])
            g.output("[1,0,2] batch · m", try x.reshaped([vb, vt, vh, vd]).slice(axis: 2, from: 0, to: 1).reshaped([vb, vt, vd])
                .transposed([1, 0, 2]).matmul(m, transposeB: true))
            let sq = try g.input("s", [vt, vt]), z = try g.input("z", [vt, vt])
            g.output("sᵀ·z + s", try sq.transposed().matmul(z) + sq)
        })
        cases.append(OpCase("matmul: epilogues, and B computed in the arena", seed: 201) { g in
            let x = try g.input("x", [p0, p1]), w = try g.input("w", [p1, 17]), b = try g.input("b", [17])
            g.output("relu(x·w + b)", try (x.matmul(w) + b).relu())
            g.output("tanh(x·w + b)", try (x.matmul(w) + b).tanh())
            // B made by an earlier kernel, so it lives in the arena at an offset.
            g.output("A·(1.5 B)", try g.input("A", [7, 33]).matmul(try g.input("B", [33, 128]) * 1.5))
        })
        let (table, positions) = (d(1000, 100), d(129, 9))
        cases.append(OpCase("embedding: gather [\(table),17] by [\(positions),5] repeated ids", seed: 300) { g in
            let t = try g.input("table", [table, 17])
            // Ids below 40: every row is picked many times, so the gradient's scatter-add
            // accumulates repeats.
            g.output("gather", try g.graph.gather(t, ids: try g.ids("ids", [positions, 5], below: 40)))
        })
        cases.append(OpCase("embedding: scatterAdd [\(positions),5,17] into 50 rows", seed: 301) { g in
            let values = try g.input("values", [positions, 5, 17])
            g.output("scatterAdd", try g.graph.scatterAdd(values, ids: try g.ids("ids", [positions, 5], below: 50), rows: 50))
            g.output("scatterAdd [\(n),3] into 7 rows", try g.graph.scatterAdd(
                try g.input("many", [n, 3]), ids: try g.ids("few", [n], below: 7), rows: 7))
        })
        let batch = d(127, 13)
        cases.append(OpCase("softmaxCrossEntropy: [\(batch),17] forward and gradient", seed: 400) { g in
            let logits = try g.input("logits", [batch, 17], -5...5)
            g.output("loss", try g.graph.softmaxCrossEntropy(logits: logits, labels: try g.ids("labels", [batch], below: 17)))
        })
        let (bigRows, classes) = (d(64, 4), d(1000, 300))
        cases.append(OpCase("softmaxCrossEntropy: large logits [\(bigRows),\(classes)], batch 1", seed: 401) { g in
            let big = try g.input("big", [bigRows, classes], -60...60)
            g.output("loss [\(bigRows),\(classes)]", try g.graph.softmaxCrossEntropy(logits: big, labels: try g.ids("labels", [bigRows], below: classes)))
            let one = try g.input("one", [1, 3], -1...1)
            g.output("loss [1,3]", try g.graph.softmaxCrossEntropy(logits: one, labels: try g.ids("label", [1], below: 3)))
        })
        cases.append(OpCase("argmax and accuracy", seed: 500, gradients: false) { g in
            let r = try g.input("r", [r0, r1, 3])
            for axis in 0..<3 { g.output("argmax axis \(axis)", try g.graph.argmax(r, axis: axis)) }
            let logits = try g.input("logits", [n, 10])
            g.output("accuracy", try g.graph.accuracy(logits: logits, labels: try g.ids("labels", [n], below: 10)))
        })
        cases.append(OpCase("oneHot: [\(positions),5] into 17 classes with ignored labels, [\(n)] into 3, a scalar, an argmax", seed: 600) { g in
            // Every 7th label is the ignore index (a row of zeros); the rest cover all 17 classes.
            let values: [Int32] = (0..<(positions * 5)).map { (i: Int) -> Int32 in
                let label: Int = (i * 5 + i / 17) % 17
                return i % 7 == 3 ? -100 : Int32(label)
            }
            let labels = try g.ids("labels", [positions, 5], values: values)
            let hot = try g.graph.oneHot(labels, classes: 17, ignoreIndex: -100, dtype: g.dtype)
            g.output("oneHot [\(positions),5] ignore -100", hot)
            // As a mask in a loss: the gradient of the logits is the mask times the upstream.
            g.output("oneHot * logits", try hot * g.input("logits", [positions, 5, 17]))
            // An ignore index inside [0, classes): label 0 gives zeros too.
            g.output("oneHot [\(n)] ignore 0", try g.graph.oneHot(try g.ids("few", [n], below: 3), classes: 3, ignoreIndex: 0, dtype: g.dtype))
            g.output("oneHot of a scalar", try g.graph.oneHot(try g.ids("one", [], values: [4]), classes: 5, dtype: g.dtype))
            // Labels computed on the device (not a feed, so not checked on the host), from a float
            // input: autodiff passes nothing through the int32 labels (the input's gradient is 0).
            let scores = try g.input("scores", [33, 7])
            g.output("oneHot of an argmax", try g.graph.oneHot(try g.graph.argmax(scores, axis: 1), classes: 7, dtype: g.dtype))
        })
        let (wn, wc, wh, ww, wl) = (d(2, 1), d(3, 2), d(11, 6), d(9, 5), d(17, 5))
        cases.append(OpCase("window: unfold, fold and maxPool [\(wn),\(wc),\(wh),\(ww)], 3 windows, padding of -inf, channels last", seed: 700) { g in
            let x = try g.input("x", [wn, wc, wh, ww])
            // The last: rows of 5 entries (no vector load of that width on CPU devices).
            let windows = [try Window2D(3, stride: 2, padding: 1), try Window2D(kernel: [2, 3], stride: [1, 2], padding: [0, 1], dilation: [2, 1]),
                           try Window2D(2, stride: 2), try Window2D(kernel: [1, 5], stride: [1, 1], padding: [0, 2])]
            for w in windows {
                let patches = try g.graph.unfold(x, window: w)
                g.output("unfold \(w)", patches)
                // fold of other values: its own kernel forward, unfold in the gradient.
                g.output("fold \(w)", try g.graph.fold(try g.input("columns \(w)", patches.shape), window: w, height: wh, width: ww))
                // Its gradient is maxPoolGrad: each window's upstream to its first largest pixel.
                g.output("maxPool \(w)", try g.graph.maxPool(x, window: w))
            }
            // Windows apart and padded: maxPoolGrad's fill with 0 and its guarded writes.
            g.output("maxPool kernel 2, stride 3, padding 1", try g.graph.maxPool(x, window: try Window2D(2, stride: 3, padding: 1)))
            // Max pooling's padding.
            g.output("unfold with -inf padding", try g.graph.unfold(x, window: windows[0], padValue: -.infinity), differentiable: false)
            // The same windows over channels-last images: each position's channels copied or
            // added whole (17: no vector width divides it), and a "same" 3 x 3 over 32 (the
            // CNN's conv2).
            let xLast = try g.input("x channels last", [wn, wh, ww, wl])
            for w in windows.map({ $0.channelsLast(true) }) {
                let patches = try g.graph.unfold(xLast, window: w)
                g.output("unfold \(w)", patches)
                g.output("fold \(w)", try g.graph.fold(try g.input("columns \(w)", patches.shape), window: w, height: wh, width: ww))
            }
            let same = try Window2D(3, padding: 1).channelsLast(true)
            let patches = try g.graph.unfold(try g.input("conv input channels last", [wn, wh, ww, 32]), window: same)
            g.output("unfold \(same) of 32 channels", patches)
            g.output("fold \(same) of 32 channels", try g.graph.fold(try g.input("conv columns", patches.shape), window: same, height: wh, width: ww))
        })
        // Rows along the last axis (attention's), along a middle axis (strided), long rows, and
        // large values that only the shift by the maximum keeps finite.
        let (sm0, sm1, sm2) = (d(33, 3), d(129, 9), d(17, 5)), (smRows, smLong, sm8) = (d(64, 4), d(1000, 300), d(128, 16))
        cases.append(OpCase("softmax and logSoftmax [\(sm0),\(sm1),\(sm2)] along each axis", seed: 900) { g in
            let x = try g.input("x", [sm0, sm1, sm2], -4...4)
            for axis in 0..<3 {
                g.output("softmax axis \(axis)", try g.graph.softmax(x, axis: axis))
                g.output("logSoftmax axis \(axis)", try g.graph.softmax(x, axis: axis, log: true))
            }
            let big = try g.input("big", [smRows, smLong], -60...60)
            // Contiguous rows, a multiple of 8 long: the 8-wide kernels.
            let rows8 = try g.input("rows of 8k", [3, smRows, sm8], -4...4)
            g.output("softmax rows of 8k", try g.graph.softmax(rows8))
            g.output("logSoftmax rows of 8k", try g.graph.softmax(rows8, log: true))
            g.output("softmax of large values", try g.graph.softmax(big))
            g.output("logSoftmax of large values", try g.graph.softmax(big, log: true))
        })
        // Rows a multiple of 8 long (the 8-wide kernels) and not, values far from 0 (the mean
        // matters), and the affine part after it as LayerNorm adds it.
        let (ln0, ln8, lnOdd) = (d(129, 9), d(128, 16), d(37, 5))
        cases.append(OpCase("layerNorm and rmsNorm [\(ln0),\(ln8)] and [3,\(ln0),\(lnOdd)]", seed: 901) { g in
            let x = try g.input("x", [ln0, ln8], 1...3), odd = try g.input("odd", [3, ln0, lnOdd], -2...2)
            let w = try g.input("w", [ln8]), b = try g.input("b", [ln8])
            g.output("layerNorm rows of 8k", try g.graph.layerNorm(x))
            g.output("rmsNorm rows of 8k", try g.graph.layerNorm(x, rms: true))
            g.output("layerNorm odd rows", try g.graph.layerNorm(odd))
            g.output("rmsNorm odd rows", try g.graph.layerNorm(odd, rms: true))
            g.output("layerNorm · w + b", try g.graph.layerNorm(x) * w + b)
        })
        // Steps that skip elements, padding on every side and between neighbours, parts of
        // several sizes (one empty), a split whose parts are used apart, and where() hiding NaN
        // (log of negatives) and a mask that broadcasts.
        let (mv0, mv1) = (d(33, 5), d(129, 9))
        cases.append(OpCase("movement: slice, pad, concat, split and where [\(mv0),\(mv1),3]", seed: 902) { g in
            let x = try g.input("x", [mv0, mv1, 3]), y = try g.input("y", [mv0, 2, 3])
            g.output("slice rows 1..<\(mv0 - 1) by 2", try g.graph.slice(x, starts: [1, 0, 0], ends: [mv0 - 1, mv1, 3], steps: [2, 1, 1]))
            g.output("slice columns by 3, channels 1..<3", try g.graph.slice(x, starts: [0, 2, 1], ends: [mv0, mv1, 3], steps: [1, 3, 1]))
            g.output("pad (1,2) (0,0) (2,1)", try x.padded([(1, 2), (0, 0), (2, 1)]))
            g.output("pad interior (1,0,2) with -1", try g.graph.pad(x, low: [0, 1, 0], high: [1, 0, 0], interior: [1, 0, 2], value: -1))
            g.output("concat [x, y, x] axis 1", try g.graph.concat([x, y, x], axis: 1))
            g.output("concat [y, empty, y·2] axis -1", try g.graph.concat([y, g.input("empty", [mv0, 2, 0]), y * 2], axis: -1))
            let parts = try x.split([1, mv1 - 3, 2], axis: 1)
            g.output("split, rejoined out of order", try g.graph.concat([parts[2] * 2, parts[0], parts[1].exp()], axis: 1))
            let positive = try g.graph.binary(.greater, x, x.scalar(0))
            g.output("where(x > 0, log x, 0)", try g.graph.where(positive, x.log(), x.scalar(0)))
            let mask = try g.graph.binary(.greater, g.constantInput("mask", [mv0, 1, 3]), x.scalar(0))
            g.output("where(mask [\(mv0),1,3], y, -y)", try g.graph.where(mask, y, -y))
        })
        // Bit for bit the same draws: Philox in Swift and in OpenCL C, two streams, a dropout mask.
        let draws = d(70000, 1000)
        cases.append(OpCase("random: uniform [\(draws)] and [3,5,7] from a counter, a dropout mask", seed: 800, gradients: false) { g in
            let counter = try g.ids("counter", [], values: [123_457])
            let u = try g.graph.uniform([draws], counter: counter, seed: 42, dtype: g.dtype)
            g.output("uniform [\(draws)]", u)
            g.output("uniform [3,5,7], stream 1", try g.graph.uniform([3, 5, 7], counter: counter, seed: 42, dtype: g.dtype))
            g.output("mask x·(u ≥ 0.25)/0.75", try g.input("x", [draws]) * g.graph.binary(.greater, u, u.scalar(0.25)) * (1 / 0.75))
        })
        return cases
    }

    // MARK: Autodiff against finite differences

    /// Small cases whose gradients are checked against central finite differences in Double:
    /// every gradient rule, with broadcasting, every axis set, every transpose form, repeated
    /// ids and fan-out.
    public static let gradients: [OpCase] = {
        var cases: [OpCase] = []
        for op in UnaryOp.allCases {
            cases.append(OpCase("\(op) [3,4]", seed: 1) { g in
                g.output("\(op)", try g.graph.unary(op, g.input("x", [3, 4], op.testDomain)))
            })
        }
        let broadcastPairs: [(Shape, Shape)] = [([2, 3], [2, 3]), ([3, 1, 4], [2, 1]), ([2, 3], []), ([4], [3, 4]), ([1, 3], [2, 1])]
        for op in BinaryOp.allCases {
            for (a, b) in broadcastPairs {
                cases.append(OpCase("\(op) \(a) \(b)", seed: 1) { g in
                    g.output("\(op)", try g.graph.binary(op, g.input("a", a), g.input("b", b, op.testDomainOfRight)))
                })
            }
        }
        for op in ReduceOp.allCases {
            cases.append(OpCase("\(op) of [2,3,4] over every axis set", seed: 1) { g in
                let x = try g.input("x", [2, 3, 4])
                for axes in [[0], [1], [2], [-1], [0, 2], [1, 2], [0, 1, 2], nil] as [[Int]?] {
                    for keep in [false, true] {
                        g.output("\(op) \(axes.map { "\($0)" } ?? "all") \(keep)", try g.graph.reduce(op, x, axes: axes, keepDims: keep))
                    }
                }
            })
        }
        cases.append(OpCase("matmul, 4 transpose forms", seed: 1) { g in
            for (ta, tb) in transposeForms {
                let a = try g.input("A \(transposeName(ta, tb))", ta ? [5, 3] : [3, 5])
                let b = try g.input("B \(transposeName(ta, tb))", tb ? [4, 5] : [5, 4])
                g.output(transposeName(ta, tb), try a.matmul(b, transposeA: ta, transposeB: tb))
            }
        })
        cases.append(OpCase("layout: transpose, reshape, broadcastTo", seed: 1) { g in
            g.output("transpose [2,0,1]", try g.input("t", [2, 3, 4]).transposed([2, 0, 1]))
            g.output("transpose", try g.input("t2", [3, 5]).transposed())
            g.output("reshape", try g.input("r", [2, 3, 4]).reshaped([4, -1]))
            g.output("broadcastTo", try g.input("b", [3, 1]).broadcast(to: [2, 3, 4]))
            g.output("broadcastTo from a scalar", try g.input("s", []).broadcast(to: [2, 2]))
        })
        // Repeated ids, within a row and across rows, must accumulate.
        let ids: [Int32] = [1, 4, 4, 0, 2, 3, 1, 6, 6, 6, 0, 0, 5, 2, 1]
        cases.append(OpCase("gather with repeated ids", seed: 1) { g in
            g.output("gather", try g.graph.gather(g.input("table", [7, 4]), ids: g.ids("ids", [3, 5], values: ids)))
        })
        cases.append(OpCase("scatterAdd with repeated ids", seed: 1) { g in
            g.output("scatterAdd", try g.graph.scatterAdd(g.input("values", [3, 5, 2]), ids: g.ids("ids", [3, 5], values: ids), rows: 7))
        })
        // A mask from labels: no gradient reaches the labels; the logits' gradient is the mask's.
        cases.append(OpCase("oneHot as a loss's mask", seed: 1) { g in
            let labels = try g.ids("labels", [4, 2], values: [2, -1, 0, 4, 4, 1, -1, 3])
            let hot = try g.graph.oneHot(labels, classes: 5, ignoreIndex: -1, dtype: g.dtype)
            g.output("sum(oneHot(y) * logits)", try (hot * g.input("logits", [4, 2, 5], -3...3)).sum())
        })
        cases.append(OpCase("softmaxCrossEntropy [4,5]", seed: 1) { g in
            let labels = try g.ids("labels", [4], values: [2, 0, 4, 2])
            g.output("loss", try g.graph.softmaxCrossEntropy(logits: g.input("logits", [4, 5], -3...3), labels: labels))
        })
        // Windows that overlap (stride 1), skip pixels (stride 3), pad and dilate.
        for (k, s, p, d) in [([3, 3], [1, 1], [1, 1], [1, 1]), ([2, 3], [3, 2], [1, 0], [1, 2])] {
            cases.append(OpCase("unfold, fold and maxPool [2,2,5,6] kernel \(k) stride \(s) padding \(p) dilation \(d)", seed: 1) { g in
                let w = try Window2D(kernel: k, stride: s, padding: p, dilation: d)
                let x = try g.input("x", [2, 2, 5, 6])
                let patches = try g.graph.unfold(x, window: w)
                g.output("unfold", patches)
                g.output("fold", try g.graph.fold(try g.input("columns", patches.shape), window: w, height: 5, width: 6))
                g.output("maxPool", try g.graph.maxPool(x, window: w))
                let last = w.channelsLast(true), image = try g.input("x channels last", [2, 5, 6, 3])
                let lastPatches = try g.graph.unfold(image, window: last)
                g.output("unfold channels last", lastPatches)
                g.output("fold channels last", try g.graph.fold(try g.input("columns channels last", lastPatches.shape), window: last, height: 5, width: 6))
            })
        }
        cases.append(OpCase("softmax and logSoftmax [2,3,4] along each axis", seed: 1) { g in
            let x = try g.input("x", [2, 3, 4], -2...2)
            for axis in [0, 1, -1] {
                g.output("softmax axis \(axis)", try g.graph.softmax(x, axis: axis))
                g.output("logSoftmax axis \(axis)", try g.graph.softmax(x, axis: axis, log: true))
            }
        })
        cases.append(OpCase("layerNorm and rmsNorm [2,3,8] and [3,5]", seed: 1) { g in
            let x = try g.input("x", [2, 3, 8], -2...2), odd = try g.input("odd", [3, 5], 0.5...2)
            g.output("layerNorm", try g.graph.layerNorm(x))
            g.output("rmsNorm", try g.graph.layerNorm(x, rms: true))
            g.output("layerNorm odd", try g.graph.layerNorm(odd))
            g.output("rmsNorm odd", try g.graph.layerNorm(odd, rms: true))
        })
        cases.append(OpCase("slice, pad, concat, split and where", seed: 1) { g in
            let x = try g.input("x", [3, 5, 4]), y = try g.input("y", [3, 2, 4])
            g.output("slice", try g.graph.slice(x, starts: [1, 0, 1], ends: [3, 5, 4], steps: [1, 2, 2]))
            g.output("pad", try g.graph.pad(x, low: [1, 0, 2], high: [0, 2, 1], interior: [0, 1, 0], value: 0.5))
            g.output("concat", try g.graph.concat([x, y, x], axis: 1))
            let parts = try x.split([2, 3], axis: 1)
            g.output("split", try parts[0].sum(axes: [1], keepDims: true) * parts[1])
            let mask = try g.graph.binary(.greater, g.constantInput("mask", [3, 1, 4]), x.scalar(0))
            g.output("where", try g.graph.where(mask, x, g.input("z", [3, 5, 1])))
        })
        // In one process the sum over processes is the identity, and so is its gradient.
        cases.append(OpCase("allReduce in one process", seed: 1) { g in
            g.output("allReduce", try g.graph.allReduce(g.input("x", [3, 4])))
        })
        // One node used several times: gradients along every use are summed.
        cases.append(OpCase("fan-out", seed: 1) { g in
            let x = try g.input("x", [3, 4]), y = try g.input("y", [2, 3])
            g.output("x·x + exp(x)·x", try x * x + x.exp() * x)
            g.output("y·yᵀ", try y.matmul(y, transposeB: true))
        })
        return cases
    }()
}
