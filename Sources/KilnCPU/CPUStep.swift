import CVectorMath
import KilnCompiler
import KilnGraph

/// One kernel of a program, prepared for the host: pointers resolved, index tables and
/// scratch space allocated at load time, so that running it allocates nothing.
struct CPUStep<T: KilnFloat> {
    let run: () throws -> Void
    /// For a "same" 3 x 3 unfold or fold (the C kernels): the kernel for a range of images.
    private(set) var images: ((Range<Int>) -> Void)?
    /// For a float matmul of one batch whose C can be computed by rows (no epilogue, or the
    /// register blocks' bias and ReLU): those rows; false where they could not run (the whole
    /// kernel then computes C).
    private(set) var rows: ((Range<Int>) -> Bool)?

    /// For a sum or mean whose input is computed (not one input read as it is), over runs of
    /// neighbours that fit the evaluator's block (the kept axes one block, reduced axes behind
    /// them): the run's length and the outputs. nil otherwise.
    static func runSums(_ op: ReduceOp, axes: [Int], _ code: FusedCode) -> (run: Int, outputs: Int)? {
        guard op == .sum || op == .mean, !(code.code.count == 1 && code.results == [0]) else { return nil }
        // Axes of size 1 aside.
        let dims = code.shape.dims.filter { $0 > 1 }, reduced = code.shape.dims.indices.filter { code.shape[$0] > 1 }.map { axes.contains($0) }
        let kept = dims.indices.filter { !reduced[$0] }
        guard let first = kept.first, let last = kept.last, kept.count == last - first + 1 else { return nil }
        let (q, period) = (dims[(last + 1)...].reduce(1, *), kept.map { dims[$0] }.reduce(1, *))
        return period > 1 && q > 1 && q <= FusedEvaluator<T>.blockSize ? (q, period) : nil
    }

    /// For sums or means over leading axes (channels-last batch norm's per-channel sums, `[N·H·W,
    /// C]`) of computed values: the row's length, where rows are narrow and many. nil otherwise.
    static func leadingSums(_ op: ReduceOp, axes: [Int], _ code: FusedCode) -> Int? {
        guard op == .sum || op == .mean, !(code.code.count == 1 && code.results == [0]) else { return nil }
        let dims = code.shape.dims.indices.filter { code.shape[$0] > 1 }
        guard let lastReduced = dims.last(where: { axes.contains($0) }),
              dims.allSatisfy({ axes.contains($0) || $0 > lastReduced }) else { return nil }
        let w = dims.filter { !axes.contains($0) }.reduce(1) { $0 * code.shape[$1] }, count = code.shape.count
        return w < 512 && count / w >= 16 && count >= 1 << 16 ? w : nil
    }

    /// For a matmul's epilogue that is the product plus a bias broadcast along its rows (a load
    /// of `columns` values), then ReLU, either or both: the bias's load and whether ReLU
    /// follows. nil for any other code.
    static func biasAndReLU(_ code: FusedCode, loads: [Shape], columns n: Int) -> (bias: Int?, relu: Bool)? {
        guard code.results == [code.code.count - 1], code.shape.rank >= 1, code.shape[code.shape.rank - 1] == n else { return nil }
        // The chain's head: the latest instruction holding the product (or what the chain made
        // of it); each step must read it, and the result must be it.
        var head: Int?, bias: Int?, added = false, relu = false
        for (i, instr) in code.code.enumerated() {
            switch instr {
            case .accumulator where head == nil:
                head = i
            case .load(let j) where bias == nil && loads[j].count == n && loads[j].dims.last == n:
                bias = i
            case let .binary(.add, x, y) where !added && !relu && head != nil && bias != nil
                && Set([x, y]) == Set([head!, bias!]):
                added = true
                head = i
            case .unary(.relu, let x) where !relu && x == head:
                relu = true
                head = i
            default: return nil
            }
        }
        // Nothing besides the chain: a bias load is there only if it was added.
        guard head == code.code.count - 1, added || relu, added == (bias != nil) else { return nil }
        if let b = bias, case .load(let j) = code.code[b] { return (j, relu) }
        return (nil, relu)
    }

    /// Whether two operands' memory overlaps (in one buffer): a bias written over by the
    /// product it is added to would be read after a k chunk stored C there.
    static func overlap(_ x: Operand, _ y: Operand) -> Bool {
        guard x.location.buffer == y.location.buffer else { return false }
        let size = MemoryLayout<T>.size
        let (a, b) = (x.location.byteOffset, y.location.byteOffset)
        return a < b + y.shape.count * size && b < a + x.shape.count * size
    }

    /// Values the 16 blocks of a sum over many narrow rows take in the workspace, each block's
    /// sums on cache lines of their own (two threads adding into one line at every row ran 3x
    /// slower than one thread), after a line's worth of alignment.
    /// Where 16 blocks' sums start in the workspace: after `count` values, on a line's boundary.
    static func blockSumsStart(_ workspace: UnsafeMutablePointer<T>, after count: Int) -> UnsafeMutablePointer<T> {
        let after = UnsafeMutableRawPointer(workspace + count)
        return (after + (64 - Int(bitPattern: after) % 64) % 64).assumingMemoryBound(to: T.self)
    }

    static func blockSums(columns w: Int) -> Int { 16 * blockStride(columns: w) + 64 / MemoryLayout<T>.size }
    static func blockStride(columns w: Int) -> Int { (w * MemoryLayout<T>.size + 127) / 64 * 64 / MemoryLayout<T>.size }

    /// Values of the shared workspace a kernel uses: a fused matmul's product (and the partial
    /// product of k's second half), or a reduction's computed input.
    static func workspaceCount(_ kernel: Kernel) -> Int {
        switch kernel.kind {
        case .matmul(_, _, let epilogue):
            // The product (for an epilogue), and a second half's partial product (`kHalves`).
            let d = kernel.matmulDimensions!
            let halves = d.batches == 1 && T.kHalves(m: d.m, n: d.n, k: d.k) > 1 ? d.m * d.n : 0
            return (epilogue == nil ? 0 : kernel.outputs[0].shape.count) + halves
        case let .reduce(_, axes, code):
            // The computed input, then (sums over many narrow rows) 16 blocks' partial sums, for
            // each reduction sharing the pass.
            let kept = code.shape.dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element).reduce(1, *)
            return code.shape.count + (kept < 512 ? code.results.count * Self.blockSums(columns: kept) : 0)
        case .node(.softmaxCrossEntropy):
            // Each row's loss, and a row of exponentials per thread.
            return kernel.inputs[0].shape[0] + WorkerPool.shared.threads * kernel.inputs[0].shape[1]
        default: return 0
        }
    }

    // Specialized for the two float types: the closures built here are the hot loops, and
    // unspecialized generic arithmetic would be many times slower.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    /// `sparseOut`: this scatterAdd sums into rows instead of a dense tensor; `sparseIn`: this
    /// elementwise kernel reads those rows for one of its inputs.
    /// `workspace`: `workspaceCount(kernel)` values or more, shared by the program's kernels.
    init(kernel: Kernel, buffers: [UnsafeMutableRawPointer], blas: Bool, allReduce: CPUAllReduce,
         sparseOut: SparseRows<T>? = nil, sparseIn: (input: Int, rows: SparseRows<T>)? = nil,
         workspace: UnsafeMutablePointer<T>? = nil) throws {
        func real(_ o: Operand) -> UnsafeMutablePointer<T> {
            (buffers[o.location.buffer] + o.location.byteOffset).assumingMemoryBound(to: T.self)
        }
        func int(_ o: Operand) -> UnsafeMutablePointer<Int32> {
            (buffers[o.location.buffer] + o.location.byteOffset).assumingMemoryBound(to: Int32.self)
        }
        let ins = kernel.inputs, outs = kernel.outputs
        let what = kernel.name
        switch kernel.kind {
        case .elementwise(let code):
            let eval = FusedEvaluator<T>(code, loads: ins.map { (real($0), $0.shape) }, targets: outs.map(real),
                                         sparse: sparseIn.map { [$0.input: $0.rows] } ?? [:], alignRuns: blas)
            run = { eval.run() }

        case let .reduce(op, axes, code) where Self.runSums(op, axes: axes, code) != nil:
            // Sums over runs of neighbours (a batch norm's per-channel sums over an NCHW batch)
            // of computed values: each run computed in registers and added as it comes, so the
            // input is never stored, and reductions sharing a pass read their inputs once.
            let (q, period) = Self.runSums(op, axes: axes, code)!
            let eval = FusedEvaluator<T>(code, loads: ins.map { (real($0), $0.shape) }, workspace: workspace, minimumBlock: q)
            let targets = outs.map(real), results = code.results, runs = code.shape.count / q
            let n = T(code.shape.count / period), parts = max(1, min(eval.workers, period))
            // Neighbouring runs belong to neighbouring outputs: as many as fit a block are
            // computed at once, and each output still adds its runs in order.
            let perBlock = max(1, eval.block / q)
            run = {
                eval.prepare()
                for t in targets { t.update(repeating: 0, count: period) }
                WorkerPool.shared.run(parts: parts) { part in
                    let (k0, k1) = (period * part / parts, period * (part + 1) / parts)
                    for first in stride(from: 0, to: runs, by: period) {
                        for k in stride(from: k0, to: k1, by: perBlock) {
                            let count = min(perBlock, k1 - k)
                            eval.withValues(start: (first + k) * q, count: count * q, worker: part) { values in
                                for (t, res) in zip(targets, results) {
                                    for j in 0..<count { t[k + j] += RowReductions<T>.sum(values[res] + j * q, q) }
                                }
                            }
                        }
                    }
                }
                if op == .mean { for t in targets { for k in 0..<period { t[k] /= n } } }
            }

        case let .reduce(op, axes, code) where workspace != nil && Self.leadingSums(op, axes: axes, code) != nil:
            // Sums over leading axes of computed values (batch norm's per-channel sums of
            // channels-last images): blocks of whole rows computed in registers and added into
            // the sums of one of 16 fixed parts of the rows (their own lines of the workspace),
            // the parts then added in order: the input is never stored, reductions sharing the
            // pass read their inputs once, and the sums are the same whatever the threads.
            let w = Self.leadingSums(op, axes: axes, code)!
            let eval = FusedEvaluator<T>(code, loads: ins.map { (real($0), $0.shape) }, workspace: workspace, minimumBlock: w)
            let targets = outs.map(real), results = code.results, rows = code.shape.count / w
            let stride = Self.blockStride(columns: w), perBlock = max(1, eval.block / w)
            let sums = Self.blockSumsStart(workspace!, after: code.shape.count), workers = eval.workers
            run = {
                eval.prepare()
                WorkerPool.shared.run(parts: workers) { worker in
                    for part in 16 * worker / workers..<16 * (worker + 1) / workers {
                        let part0 = sums + part * results.count * stride
                        part0.update(repeating: 0, count: results.count * stride)
                        var r = rows * part / 16
                        let end = rows * (part + 1) / 16
                        while r < end {
                            let count = min(perBlock, end - r)
                            eval.withValues(start: r * w, count: count * w, worker: worker) { values in
                                for k in results.indices {
                                    let into = part0 + k * stride, from = values[results[k]]
                                    RowReductions<T>.addRows(into: into, from, count: count, width: w, stride: w)
                                }
                            }
                            r += count
                        }
                    }
                }
                let scale: T = op == .mean ? 1 / T(rows) : 1
                for (k, t) in targets.enumerated() {
                    t.update(repeating: 0, count: w)
                    for part in 0..<16 { let from = sums + (part * results.count + k) * stride; for j in 0..<w { t[j] += from[j] } }
                    if op == .mean { for j in 0..<w { t[j] *= scale } }
                }
            }

        case .reduce(_, _, let shared) where shared.results.count > 1:
            // Reductions sharing a pass: one after another here, each computing its own input
            // in the workspace (the evaluator materializes a reduction's input whole).
            let steps = try kernel.reductionsApart().map {
                try CPUStep(kernel: $0, buffers: buffers, blas: blas, allReduce: allReduce, workspace: workspace)
            }
            run = { for s in steps { try s.run() } }

        case let .reduce(op, axes, code):
            let eval = FusedEvaluator<T>(code, loads: ins.map { (real($0), $0.shape) }, workspace: workspace)
            let shape = code.shape
            let kept = Shape(shape.dims.enumerated().map { axes.contains($0.offset) ? 1 : $0.element })
            var strides = kept.strides
            for a in axes { strides[a] = 0 }
            let out = real(outs[0]), outCount = kept.count
            let n = T(axes.reduce(1) { $0 * shape[$1] })
            // Leading axes reduced (a bias gradient): whole rows added, a loop that vectorizes
            // (many narrow rows: in 16 fixed blocks, then the blocks in order); trailing axes:
            // runs of neighbours summed; else an index per element. Each output adds its inputs
            // in an order that does not depend on the threads.
            let pattern = FusedEvaluator<T>.broadcast(stridedOffsets(shape, strides), inputCount: outCount)
            let count = shape.count
            // Threads take disjoint outputs (columns of rows, channels of runs), each added in
            // the same order whatever the number of threads.
            let parts = max(1, min(WorkerPool.shared.threads, outCount, count / 65536))
            // A reduction of an input as it is (batch norm's mean) reads it in place, not a copy.
            let plain: Bool = {
                guard code.code.count == 1, code.results == [0], ins.count == 1, ins[0].shape == shape, case .load(0) = code.code[0] else { return false }
                return true
            }()
            let input = plain ? real(ins[0]) : nil
            // The 16 blocks' sums (see below): after the computed input.
            let blocks = workspace.map { Self.blockSumsStart($0, after: shape.count) }
            run = {
                let x = input ?? eval.run()
                out.update(repeating: op == .max ? -T.infinity : 0, count: outCount)
                switch (pattern, op) {
                case (.rows(let w), .max):
                    for r in stride(from: 0, to: count, by: w) { let row = x + r; for j in 0..<w where row[j] > out[j] || row[j].isNaN { out[j] = row[j] } }
                case (.rows(1), _):
                    // The whole tensor to one value (a gradient norm's sum of squares): one
                    // running sum would be a chain of dependent adds (1.2 GB/s). Fixed chunks,
                    // each in eight accumulators, added in order: the same whatever the threads.
                    let chunks = max(1, min(16, count / 16384))
                    withUnsafeTemporaryAllocation(of: T.self, capacity: chunks) { partial in
                        WorkerPool.shared.run(parts: chunks) { c in
                            let lo = count * c / chunks, hi = count * (c + 1) / chunks
                            partial[c] = RowReductions<T>.sum(x + lo, hi - lo)
                        }
                        for c in 0..<chunks { out[0] += partial[c] }
                    }
                case (.rows(let w), _) where w < 512 && count >= 1 << 19 && count / w >= 16 && blocks != nil:
                    // Many narrow rows (a convolution's bias gradient, [N·H·W, 32]): 16 fixed
                    // blocks of rows, each summed on its own in the workspace, then added in
                    // order, so the same whatever the threads (one thread ran conv1's at 30 GB/s).
                    let (rows, stride, blocks) = (count / w, Self.blockStride(columns: w), blocks!)
                    WorkerPool.shared.run(parts: 16) { c in
                        let sums = blocks + c * stride
                        sums.update(repeating: 0, count: w)
                        let (r0, r1) = (rows * c / 16, rows * (c + 1) / 16)
                        RowReductions<T>.addRows(into: sums, x + r0 * w, count: r1 - r0, width: w, stride: w)
                    }
                    for c in 0..<16 { for j in 0..<w { out[j] += blocks[c * stride + j] } }
                case (.rows(let w), _):
                    // Split by columns only where each thread's part of a row is long: narrow
                    // rows (a convolution's 32 channels) would have both threads read every line.
                    let split = w >= 512 ? parts : 1
                    WorkerPool.shared.run(parts: split) { part in
                        let columns = w * part / split..<w * (part + 1) / split
                        RowReductions<T>.addRows(into: out + columns.lowerBound, x + columns.lowerBound, count: count / w, width: columns.count, stride: w)
                    }
                case let (.repeated(q, period), .max):
                    for b in 0..<count / q { let k = b % period; for i in b * q..<(b + 1) * q where x[i] > out[k] || x[i].isNaN { out[k] = x[i] } }
                case let (.repeated(q, period), _):
                    // Each run summed on its own (in eight accumulators), then added to its
                    // output: a channel's runs in order. Image by image, so that each thread
                    // reads its channels' runs in memory order (channel by channel, it jumped a
                    // whole image between runs: 19 against 27 GB/s).
                    WorkerPool.shared.run(parts: parts) { part in
                        let (k0, k1) = (period * part / parts, period * (part + 1) / parts)
                        for first in stride(from: 0, to: count / q, by: period) {
                            for k in k0..<k1 { out[k] += RowReductions<T>.sum(x + (first + k) * q, q) }
                        }
                    }
                case (.table(let target), .max):
                    for i in target.indices where x[i] > out[target[i]] || x[i].isNaN { out[target[i]] = x[i] }
                case (.table(let target), _):
                    for i in target.indices { out[target[i]] += x[i] }
                default: break
                }
                if op == .mean { for i in 0..<outCount { out[i] /= n } }
            }

        case let .matmul(ta, tb, epilogue):
            let a = real(ins[0]), b = real(ins[1])
            let (aShape, bShape) = (ins[0].shape, ins[1].shape)
            let r = aShape.rank, batches = ins[0].shape.dims.prefix(r - 2).reduce(1, *)
            let (a0, a1, b0, b1) = (aShape[r - 2], aShape[r - 1], bShape[r - 2], bShape[r - 1])
            let m = ta ? a1 : a0, k = ta ? a0 : a1, n = tb ? b0 : b1
            // An operand may be a strided view (a transpose read in place): its storage order
            // folds into the transpose flag, and each matrix of a batch has its own offset.
            let (la, lb) = (ins[0].matrixLayout(transposed: ta), ins[1].matrixLayout(transposed: tb))
            let (ta, tb, lda, ldb) = (la.transposed, lb.transposed, la.ld, lb.ld)
            let strided = ins[0].strides != nil || ins[1].strides != nil
            let aOffsets = (0..<batches).map { la.offset(batch: $0) }, bOffsets = (0..<batches).map { lb.offset(batch: $0) }
            let eval = epilogue.map {
                FusedEvaluator<T>($0, loads: ins.map { (real($0), $0.shape) }, targets: outs.map(real), scratch: true, workspace: workspace)
            }
            let product = eval?.scratch ?? real(outs[0])
            // A Linear's or convolution's epilogue (+ bias, ReLU) applied by the register blocks
            // as they store C, where they apply (for any rows of C); else the product, then the
            // evaluator.
            var epilogueRows: ((Range<Int>) -> Bool)?
            if blas, T.self == Float.self, batches == 1, !strided, let code = epilogue, outs.count == 1,
               let (bias, relu) = Self.biasAndReLU(code, loads: ins.map(\.shape), columns: n),
               bias.map({ !Self.overlap(ins[$0], outs[0]) }) ?? true {
                let f = { (p: UnsafeMutablePointer<T>) in UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
                let (fa, fb, out, fbias) = (f(a), f(b), f(real(outs[0])), bias.map { UnsafePointer(f(real(ins[$0]))) })
                epilogueRows = { r in
                    Float.blockedGemm(ta, tb, m: r.count, n: n, k: k, a: ta ? fa + r.lowerBound : fa + r.lowerBound * lda, lda: lda,
                                      b: fb, ldb: ldb, c: out + r.lowerBound * n, bias: fbias, relu: relu)
                }
            }
            let blocked = epilogueRows.map { rows in { rows(0..<m) } }
            if blas, T.self == Float.self, batches == 1, !strided, m > 0, n > 0, T.kHalves(m: m, n: n, k: k) == 1 {
                rows = epilogue == nil ? { r in
                    T.parallelGemm(ta, tb, m: r.count, n: n, k: k, a: ta ? a + r.lowerBound : a + r.lowerBound * lda, lda: lda,
                                   b: b, ldb: ldb, c: product + r.lowerBound * n)
                    return true
                } : epilogueRows
            }
            // A long k and a small C: the two halves of k on the two threads (`kHalves`), the
            // second's product in the workspace after the first's, then added to it.
            let partial = batches == 1 && T.kHalves(m: m, n: n, k: k) > 1
                ? workspace.map { $0 + (epilogue == nil ? 0 : outs[0].shape.count) } : nil
            run = {
                if let blocked, blocked() { return }
                if blas && m > 0 && n > 0, let partial {
                    let (a0, b0, half) = (a + aOffsets[0], b + bOffsets[0], k / 2)
                    WorkerPool.shared.run(parts: 2) { h in
                        let (k0, kn) = h == 0 ? (0, half) : (half, k - half)
                        T.gemm(ta, tb, m: m, n: n, k: kn, a: ta ? a0 + k0 * lda : a0 + k0, lda: lda,
                               b: tb ? b0 + k0 : b0 + k0 * ldb, ldb: ldb, c: h == 0 ? product : partial, ldc: n)
                    }
                    for i in 0..<m * n { product[i] += partial[i] }
                    _ = eval?.run()
                    return
                }
                if blas && m > 0 && n > 0 {
                    T.batchedGemm(ta, tb, batches: batches, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: product,
                                  offsets: strided ? (aOffsets, bOffsets) : nil)
                    _ = eval?.run()
                    return
                }
                // The plain loops: the reference.
                product.update(repeating: 0, count: batches * m * n)
                for batch in 0..<batches {
                    let (a, b) = (a + aOffsets[batch], b + bOffsets[batch])
                    for i in 0..<m {
                        let c = product + (batch * m + i) * n
                        for p in 0..<k {
                            let av = ta ? a[p * lda + i] : a[i * lda + p]
                            if tb { for j in 0..<n { c[j] += av * b[j * ldb + p] } }
                            else { let row = b + p * ldb; for j in 0..<n { c[j] += av * row[j] } }
                        }
                    }
                }
                _ = eval?.run()
            }

        case .node(.transpose(let perm)) where T.self == Float.self && ins[0].shape.batchedTranspose(perm) != nil && blas:
            // [B, R, C] to [B, C, R] (a convolution's NHWC product to NCHW and back): 8 x 8
            // tiles in C. Threads take whole matrices, or row ranges of each where they are few.
            let (batch, rows, cols) = ins[0].shape.batchedTranspose(perm)!
            let x = UnsafeRawPointer(real(ins[0])).assumingMemoryBound(to: Float.self)
            let y = UnsafeMutableRawPointer(real(outs[0])).assumingMemoryBound(to: Float.self)
            let parts = max(1, min(WorkerPool.shared.threads, batch * rows * cols / 16384))
            run = {
                WorkerPool.shared.run(parts: parts) { p in
                    if batch >= parts {
                        for b in batch * p / parts..<batch * (p + 1) / parts {
                            kiln_transpose_f32(x + b * rows * cols, y + b * rows * cols, rows, cols, 0, rows)
                        }
                    } else {
                        // Row ranges in whole tiles of 8.
                        let (r0, r1) = ((rows / 8) * p / parts * 8, p == parts - 1 ? rows : (rows / 8) * (p + 1) / parts * 8)
                        for b in 0..<batch { kiln_transpose_f32(x + b * rows * cols, y + b * rows * cols, rows, cols, r0, r1) }
                    }
                }
            }

        case .node(.transpose(let perm)):
            // Rows of the output's last axis, each read at the input's stride for it. (The
            // oracle, without BLAS, keeps to these loops, which check the tiles above.)
            let strides = ins[0].shape.strides
            run = MovementSteps<T>.strided(real(ins[0]), strides: perm.map { strides[$0] }, base: 0, real(outs[0]), outs[0].shape)

        case let .node(.slice(starts, steps)):
            run = MovementSteps<T>.slice(real(ins[0]), ins[0].shape, real(outs[0]), outs[0].shape, starts: starts, steps: steps)

        case let .node(.pad(low, interior, value)):
            run = MovementSteps<T>.pad(real(ins[0]), ins[0].shape, real(outs[0]), outs[0].shape, low: low, interior: interior, value: value)

        case .node(.concat(let axis)):
            run = MovementSteps<T>.concat(ins.map { (real($0), $0.shape) }, real(outs[0]), outs[0].shape, axis: axis)

        case .node(.gather):
            let ids = int(ins[0]), table = real(ins[1]), out = real(outs[0])
            let count = ins[0].shape.count, rows = ins[1].shape[0], dim = ins[1].shape[1]
            run = {
                for p in 0..<count {
                    let id = Int(ids[p])
                    guard id >= 0 && id < rows else {
                        throw KilnError.invalidValue(op: "gather (\(what))", message: "id \(id) at flat position \(p) is outside the table's rows [0, \(rows))")
                    }
                    (out + p * dim).update(from: table + id * dim, count: dim)
                }
            }

        case .node(.scatterAdd):
            let ids = int(ins[0]), values = real(ins[1]), out = real(outs[0])
            let count = ins[0].shape.count, rows = outs[0].shape[0], dim = outs[0].shape[1]
            if let sparseOut {
                run = { try sparseOut.scatter(ids: ids, count: count, from: values, op: "scatterAdd (\(what))") }
                return
            }
            run = {
                out.update(repeating: 0, count: rows * dim)
                for p in 0..<count {
                    let id = Int(ids[p])
                    guard id >= 0 && id < rows else {
                        throw KilnError.invalidValue(op: "scatterAdd (\(what))", message: "id \(id) at flat position \(p) is outside the table's rows [0, \(rows))")
                    }
                    for d in 0..<dim { out[id * dim + d] += values[p * dim + d] }
                }
            }

        case let .node(.oneHot(classes, ignoreIndex)):
            let labels = int(ins[0]), out = real(outs[0])
            let count = ins[0].shape.count
            run = {
                out.update(repeating: 0, count: count * classes)
                for p in 0..<count {
                    let label = Int(labels[p])
                    if label == ignoreIndex { continue }   // a row of zeros
                    guard label >= 0 && label < classes else {
                        let ignored = ignoreIndex.map { " and is not the ignore index \($0)" } ?? ""
                        throw KilnError.invalidValue(op: "oneHot (\(what))", message: "label \(label) at flat position \(p) is outside [0, \(classes))\(ignored)")
                    }
                    out[p * classes + label] = 1
                }
            }

        case let .node(.unfold(w, _)), let .node(.fold(w, _, _)):
            // unfold copies each patch entry from its pixel (or the pad value); fold, its
            // adjoint, adds each entry into its pixel, walking the patches in the same order.
            // Images are split among the pool's threads, so no two threads write one pixel.
            let isUnfold: Bool = { if case .node(.unfold) = kernel.kind { return true }; return false }()
            let (image, cols) = isUnfold ? (real(ins[0]), real(outs[0])) : (real(outs[0]), real(ins[0]))
            if w.channelsLast {
                // [N, H, W, C] images: each window position's channels copied or added whole.
                let (imageShape, colShape) = isUnfold ? (ins[0].shape, outs[0].shape) : (outs[0].shape, ins[0].shape)
                let g = kiln_window(h: imageShape[1], w: imageShape[2], c: imageShape[3], oh: colShape[1], ow: colShape[2],
                                    kh: w.kernel[0], kw: w.kernel[1], sh: w.stride[0], sw: w.stride[1], ph: w.padding[0],
                                    pw: w.padding[1], dh: w.dilation[0], dw: w.dilation[1])
                let pad: T = { if case let .node(.unfold(_, v)) = kernel.kind { return T(v) }; return 0 }()
                let perImage = max(1, colShape.count / max(1, imageShape[0])), fast = blas
                let images = { (range: Range<Int>) in
                    let parts = max(1, min(WorkerPool.shared.threads, range.count, range.count * perImage / 16384))
                    WorkerPool.shared.run(parts: parts) { part in
                        let part = range.lowerBound + range.count * part / parts..<range.lowerBound + range.count * (part + 1) / parts
                        if isUnfold { WindowsChannelsLast.unfold(image, cols, images: part, g, pad: pad, fast: fast) }
                        else { WindowsChannelsLast.fold(cols, image, images: part, g, fast: fast) }
                    }
                }
                // The oracle runs its kernels whole; the chunked pairs are the fast backend's.
                if blas { self.images = images }
                run = { images(0..<imageShape[0]) }
                return
            }
            let (n, c, h, wd) = isUnfold ? (ins[0].shape[0], ins[0].shape[1], ins[0].shape[2], ins[0].shape[3])
                                         : (outs[0].shape[0], outs[0].shape[1], outs[0].shape[2], outs[0].shape[3])
            let colShape = isUnfold ? outs[0].shape : ins[0].shape
            let (oh, ow, kh, kw) = (colShape[1], colShape[2], w.kernel[0], w.kernel[1])
            let (sh, sw, ph, pw, dh, dw) = (w.stride[0], w.stride[1], w.padding[0], w.padding[1], w.dilation[0], w.dilation[1])
            let pad: T = { if case let .node(.unfold(_, v)) = kernel.kind { return T(v) }; return 0 }()
            let parts = max(1, min(WorkerPool.shared.threads, n, colShape.count / 16384))
            if T.self == Float.self && blas && [kh, kw, sh, sw, ph, pw, dh, dw] == [3, 3, 1, 1, 1, 1, 1, 1] && (oh, ow) == (h, wd)
                && c * 3 * (wd + 3) <= 1 << 14 {
                // A "same" 3 x 3 convolution's windows, in C a row at a time (vector stores for
                // unfold, rows of accumulators for fold): the same values and sums. Rows of every
                // channel live on the thread's stack, hence the bound (at most about 100 KiB).
                let (x, p) = (UnsafeMutableRawPointer(image).assumingMemoryBound(to: Float.self),
                              UnsafeMutableRawPointer(cols).assumingMemoryBound(to: Float.self))
                let padValue = Float(pad), perImage = max(1, colShape.count / max(1, n))
                let images = { (range: Range<Int>) in
                    let parts = max(1, min(WorkerPool.shared.threads, range.count, range.count * perImage / 16384))
                    WorkerPool.shared.run(parts: parts) { part in
                        let (b0, b1) = (range.lowerBound + range.count * part / parts, range.lowerBound + range.count * (part + 1) / parts)
                        if isUnfold { kiln_unfold3x3_f32(x, p, c, h, wd, b0, b1, padValue) }
                        else { kiln_fold3x3_f32(p, x, c, h, wd, b0, b1) }
                    }
                }
                self.images = images
                run = { images(0..<n) }
                return
            }
            // A window's entries relative to its corner pixel, for windows wholly inside the image.
            let offsets = (0..<kh).flatMap { p in (0..<kw).map { q in p * dh * wd + q * dw } }, entries = kh * kw
            run = {
                WorkerPool.shared.run(parts: parts) { part in
                    offsets.withUnsafeBufferPointer { offsets in
                        let (b0, b1) = (n * part / parts, n * (part + 1) / parts)
                        if !isUnfold { (image + b0 * c * h * wd).update(repeating: 0, count: (b1 - b0) * c * h * wd) }
                        var o = cols + b0 * oh * ow * c * kh * kw
                        for b in b0..<b1 {
                            for i in 0..<oh {
                                for j in 0..<ow {
                                    let (r0, c0) = (i * sh - ph, j * sw - pw)
                                    if blas && r0 >= 0 && r0 + (kh - 1) * dh < h && c0 >= 0 && c0 + (kw - 1) * dw < wd {
                                        // Inside the image: each channel's entries through the offsets, no
                                        // bounds (not for the oracle, which checks this against the loops below).
                                        if entries == 9 {
                                            // 3 x 3 windows in straight-line code, the offsets in registers: 15-20% faster than the loop.
                                            let (f1, f2, f3, f4, f5, f6, f7, f8) = (offsets[1], offsets[2], offsets[3], offsets[4], offsets[5], offsets[6], offsets[7], offsets[8])
                                            var corner = image + b * c * h * wd + r0 * wd + c0
                                            for _ in 0..<c {
                                                if isUnfold {
                                                    o[0] = corner[0]; o[1] = corner[f1]; o[2] = corner[f2]; o[3] = corner[f3]; o[4] = corner[f4]
                                                    o[5] = corner[f5]; o[6] = corner[f6]; o[7] = corner[f7]; o[8] = corner[f8]
                                                } else {
                                                    corner[0] += o[0]; corner[f1] += o[1]; corner[f2] += o[2]; corner[f3] += o[3]; corner[f4] += o[4]
                                                    corner[f5] += o[5]; corner[f6] += o[6]; corner[f7] += o[7]; corner[f8] += o[8]
                                                }
                                                o += 9
                                                corner += h * wd
                                            }
                                            continue
                                        }
                                        for ch in 0..<c {
                                            let corner = image + (b * c + ch) * h * wd + r0 * wd + c0
                                            if isUnfold { for t in 0..<entries { o[t] = corner[offsets[t]] } }
                                            else { for t in 0..<entries { corner[offsets[t]] += o[t] } }
                                            o += entries
                                        }
                                        continue
                                    }
                                    for ch in 0..<c {
                                        let plane = image + (b * c + ch) * h * wd
                                        for p in 0..<kh {
                                            let r = i * sh - ph + p * dh
                                            if r < 0 || r >= h {
                                                if isUnfold { o.update(repeating: pad, count: kw) }
                                                o += kw
                                                continue
                                            }
                                            let row = plane + r * wd
                                            var col = j * sw - pw
                                            for _ in 0..<kw {
                                                if isUnfold { o.pointee = col >= 0 && col < wd ? row[col] : pad }
                                                else if col >= 0 && col < wd { row[col] += o.pointee }
                                                o += 1
                                                col += dw
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }

        case let .node(.uniform(seed, stream)):
            // Each element's number depends on its index alone: any split gives the same values.
            // Threads take ranges of Philox blocks (each four elements, a quarter apart).
            let counter = int(ins[0]), out = real(outs[0]), count = outs[0].shape.count, quarter = (count + 3) / 4
            let parts = max(1, min(WorkerPool.shared.threads, count / 16384))
            run = {
                let c = UInt32(bitPattern: counter[0])
                WorkerPool.shared.run(parts: parts) { part in
                    let blocks = quarter * part / parts..<quarter * (part + 1) / parts
                    if T.self == Float.self {
                        // In C, a vector of blocks at a time: the same words, so the same values.
                        kiln_philox_uniform_f32(floats(out), count, blocks.lowerBound, blocks.upperBound, c, seed, stream)
                        return
                    }
                    for b in blocks {
                        for e in stride(from: b, to: count, by: quarter) {
                            out[e] = T(Philox.uniform(index: UInt32(e), count: count, counter: c, seed: seed, stream: stream))
                        }
                    }
                }
            }

        case let .node(.maxPool(w)), let .node(.maxPoolGrad(w)):
            // Each window's first largest element (row-major; NaN wins, as PyTorch's), found
            // the same way forward and backward: the gradient goes where the value came from.
            // Planes are split among the pool's threads.
            // Channels last: split by images, each pixel's channels compared side by side.
            let x = real(ins[0]), out = real(outs[0]), (ah, aw, ac) = w.axes, c = ins[0].shape[ac]
            let (planes, h, wd) = (ins[0].shape[0] * (w.channelsLast ? 1 : c), ins[0].shape[ah], ins[0].shape[aw])
            guard let oh = w.outputSize(h, axis: 0), let ow = w.outputSize(wd, axis: 1) else {
                throw KilnError.shapeMismatch(op: what, message: "window (\(w)) does not fit \(ins[0].shape)")
            }
            // The kernel offsets of each output row and column that fall inside the image.
            func inside(_ positions: Int, _ size: Int, axis: Int) -> [Int] {
                (0..<positions).flatMap { o -> [Int] in
                    let ks = (0..<w.kernel[axis]).filter { (0..<size).contains(w.source(o, $0, axis: axis)) }
                    return [ks.first ?? 0, (ks.last ?? -1) + 1]
                }
            }
            let geometry = MaxPoolPlanes.Geometry(h: h, w: wd, oh: oh, ow: ow, stride: (w.stride[0], w.stride[1]),
                                                  padding: (w.padding[0], w.padding[1]), dilation: (w.dilation[0], w.dilation[1]),
                                                  rows: inside(oh, h, axis: 0), columns: inside(ow, wd, axis: 1))
            let parts = max(1, min(WorkerPool.shared.threads, planes, ins[0].shape.count / 16384))
            let upstream: UnsafeMutablePointer<T>? = ins.count > 1 ? real(ins[1]) : nil
            let last = w.channelsLast
            run = {
                WorkerPool.shared.run(parts: parts) { part in
                    let range = planes * part / parts..<planes * (part + 1) / parts
                    // The oracle (no BLAS) keeps to the general loops, so that it checks the fast paths.
                    let kernel = blas ? (w.kernel[0], w.kernel[1]) : nil
                    switch (upstream, last) {
                    case (let up?, false): MaxPoolPlanes.backward(x, up, out, planes: range, geometry, kernel: kernel)
                    case (nil, false): MaxPoolPlanes.forward(x, out, planes: range, geometry, kernel: kernel)
                    case (let up?, true): MaxPoolPlanes.backwardChannelsLast(x, up, out, images: range, geometry, channels: c, kernel: kernel)
                    case (nil, true): MaxPoolPlanes.forwardChannelsLast(x, out, images: range, geometry, channels: c, kernel: kernel)
                    }
                }
            }

        case .node(.softmaxCrossEntropy), .node(.softmaxCrossEntropyGrad), .node(.accuracy):
            let logits = real(ins[0]), labels = int(ins[1]), out = real(outs[0])
            let batch = ins[0].shape[0], classes = ins[0].shape[1]
            let upstream = ins.count > 2 ? real(ins[2]) : nil
            guard case .node(let kind) = kernel.kind else {
                throw KilnError.invalidArgument(op: what, message: "\(kernel.kind) is not a loss kernel")
            }
            let name = kind.kind.rawValue
            // Rows split over the threads; the loss's rows each into the workspace, then added in
            // row order, and each row's exponentials by the vectorized exp, then added in column
            // order: the same sums whatever the number of threads.
            let parts = batch * classes >= 1 << 14 ? WorkerPool.shared.threads : 1
            if kind == .softmaxCrossEntropy && workspace == nil {
                throw KilnError.invalidArgument(op: what, message: "the loss needs the program's workspace")
            }
            let rowLoss = workspace, rowExp = workspace.map { $0 + batch }
            run = {
                for r in 0..<batch {
                    let label = Int(labels[r])
                    guard label >= 0 && label < classes else {
                        throw KilnError.invalidValue(op: "\(name) (\(what))", message: "label \(label) at row \(r) is outside [0, \(classes))")
                    }
                }
                if kind == .accuracy {
                    var total: T = 0
                    for r in 0..<batch {
                        let row = logits + r * classes
                        var best = 0, m = row[0]
                        for j in 1..<classes where row[j] > m { m = row[j]; best = j }
                        if best == Int(labels[r]) { total += 1 }
                    }
                    out[0] = total / T(batch)
                    return
                }
                let scale = kind == .softmaxCrossEntropy ? 1 : upstream![0] / T(batch)
                WorkerPool.shared.run(parts: parts) { part in
                    for r in batch * part / parts..<batch * (part + 1) / parts {
                        let row = logits + r * classes, label = Int(labels[r])
                        var m = row[0]
                        for j in 1..<classes where row[j] > m { m = row[j] }
                        // exp(row - m) in the gradient's row, or in this thread's scratch row.
                        let e = kind == .softmaxCrossEntropy ? rowExp! + part * classes : out + r * classes
                        for j in 0..<classes { e[j] = row[j] - m }
                        T.exp(e, into: e, count: classes)
                        var s: T = 0
                        for j in 0..<classes { s += e[j] }
                        if kind == .softmaxCrossEntropy {
                            // log-sum-exp shifted by the row's maximum: finite for any finite logits.
                            rowLoss![r] = m + T.log(s) - row[label]
                        } else {
                            for j in 0..<classes { e[j] = (e[j] / s - (j == label ? 1 : 0)) * scale }
                        }
                    }
                }
                if kind == .softmaxCrossEntropy {
                    var total: T = 0
                    for r in 0..<batch { total += rowLoss![r] }
                    out[0] = total / T(batch)
                }
            }

        case .allReduceStart(let b):
            let sources = ins.map { UnsafeMutableRawPointer(real($0)) }
            run = { try allReduce.start(b, from: sources) }

        case .allReduceFinish(let b):
            let targets = outs.map { UnsafeMutableRawPointer(real($0)) }
            run = { try allReduce.finish(b, into: targets) }

        case let .node(.softmax(axis, log)), let .node(.softmaxGrad(axis, log)):
            let shape = ins[0].shape
            let outer = shape.dims[..<axis].reduce(1, *), n = shape[axis], inner = shape.dims[(axis + 1)...].reduce(1, *)
            let x = real(ins[0]), g = ins.count > 1 ? real(ins[1]) : nil, out = real(outs[0])
            let rows = outer * inner, parts = rows * n >= 1 << 15 ? WorkerPool.shared.threads : 1
            // Float rows of contiguous values: the same steps in C, cloned for the CPU's widest
            // vectors (CVectorMath; the same bits).
            let vectorRows = T.self == Float.self && inner == 1 && !log && g == nil
            run = {
                WorkerPool.shared.run(parts: parts) { part in
                    let range = rows * part / parts..<rows * (part + 1) / parts
                    if vectorRows {
                        let at = range.lowerBound * n
                        return kiln_softmax_rows_f32(UnsafeRawPointer(x + at).assumingMemoryBound(to: Float.self),
                                                     UnsafeMutableRawPointer(out + at).assumingMemoryBound(to: Float.self), range.count, n)
                    }
                    for r in range {
                        let base = (r / inner) * n * inner + r % inner
                        let xr = x + base, yr = out + base
                        if let g {
                            // x is softmax's output y; the gradient.
                            let gr = g + base
                            var s: T = 0
                            if log {
                                for k in 0..<n { s += gr[k * inner] }
                                for k in 0..<n { yr[k * inner] = gr[k * inner] - T.exp(xr[k * inner]) * s }
                            } else {
                                for k in 0..<n { s += gr[k * inner] * xr[k * inner] }
                                for k in 0..<n { yr[k * inner] = xr[k * inner] * (gr[k * inner] - s) }
                            }
                            continue
                        }
                        var m = xr[0]
                        if inner == 1 && !log {
                            m = RowReductions<T>.max(xr, n)
                        } else {
                            for k in 1..<n where xr[k * inner] > m || xr[k * inner].isNaN { m = xr[k * inner] }
                        }
                        var s: T = 0
                        if log {
                            for k in 0..<n { s += T.exp(xr[k * inner] - m) }
                            let shift = m + T.log(s)
                            for k in 0..<n { yr[k * inner] = xr[k * inner] - shift }
                        } else {
                            // Each exponential once: kept in the output, then scaled.
                            if inner == 1 {
                                for k in 0..<n { yr[k] = xr[k] - m }
                                T.exp(yr, into: yr, count: n)
                                s = RowReductions<T>.sum(yr, n)
                            } else {
                                for k in 0..<n { let e = T.exp(xr[k * inner] - m); yr[k * inner] = e; s += e }
                            }
                            let scale = 1 / s
                            for k in 0..<n { yr[k * inner] *= scale }
                        }
                    }
                }
            }

        case let .node(.layerNorm(eps, rms)), let .node(.layerNormGrad(eps, rms)):
            let n = ins[0].shape[ins[0].shape.rank - 1], rows = ins[0].shape.count / max(n, 1)
            let x = real(ins[0]), g = ins.count > 1 ? real(ins[1]) : nil, out = real(outs[0])
            let parts = rows * n >= 1 << 15 ? WorkerPool.shared.threads : 1, epsilon = T(eps)
            run = {
                WorkerPool.shared.run(parts: parts) { part in
                    for r in rows * part / parts..<rows * (part + 1) / parts {
                        let xr = x + r * n, yr = out + r * n
                        var mean: T = 0
                        if !rms {
                            for k in 0..<n { mean += xr[k] }
                            mean /= T(n)
                        }
                        var variance: T = 0
                        for k in 0..<n { variance += (xr[k] - mean) * (xr[k] - mean) }
                        let scale = 1 / T.squareRoot(variance / T(n) + epsilon)
                        guard let g else {
                            for k in 0..<n { yr[k] = (xr[k] - mean) * scale }
                            continue
                        }
                        let gr = g + r * n
                        var gMean: T = 0, gxMean: T = 0
                        for k in 0..<n {
                            gMean += gr[k]
                            gxMean += gr[k] * (xr[k] - mean) * scale
                        }
                        gMean = rms ? 0 : gMean / T(n)
                        gxMean /= T(n)
                        for k in 0..<n { yr[k] = scale * (gr[k] - gMean - (xr[k] - mean) * scale * gxMean) }
                    }
                }
            }

        case .node(.argmax(let axis)):
            let x = real(ins[0]), out = int(outs[0])
            let shape = ins[0].shape
            let outer = shape.dims[..<axis].reduce(1, *), n = shape[axis], inner = shape.dims[(axis + 1)...].reduce(1, *)
            run = {
                for o in 0..<outer {
                    for i in 0..<inner {
                        var best = 0
                        for k in 1..<max(n, 1) where x[(o * n + k) * inner + i] > x[(o * n + best) * inner + i] { best = k }
                        out[o * inner + i] = Int32(best)
                    }
                }
            }
        case .node(.input), .node(.constant), .node(.unary), .node(.binary), .node(.reduce), .node(.matmul), .node(.reshape),
             .node(.broadcastTo), .node(.allReduce):
            throw KilnError.invalidArgument(op: what, message: "\(kernel.kind) is not a kernel of its own (its fusion class is not .kernel)")
        }
    }
}
