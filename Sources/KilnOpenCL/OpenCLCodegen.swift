import Foundation
import KilnCompiler
import KilnGraph
import KilnKernels

/// One kernel launch of a program on OpenCL: the kernel function, its arguments, and its
/// global and local sizes (the global size rounded up to a multiple of the local size).
struct LaunchSpec {
    enum Arg {
        case buffer(Int)
        /// A scratch buffer of the executable's own (see `OpenCLCodegen.scratchBytes`).
        case scratch(Int)
        case int(Int)
        case real(Double)
    }
    let function: String
    let args: [Arg]
    let global: [Int]
    let local: [Int]
    /// The program kernel this launch belongs to.
    let kernel: Int
}

/// Writes the OpenCL C of a program: the fixed kernel families from Kernels/, and generated
/// code for fused elementwise kernels, reduction prologues, matmul epilogues, transposes and
/// one-hot rows, with shapes, strides and offsets baked in as constants.
struct OpenCLCodegen {
    /// Which matmul kernel family to use: work-groups cooperating through local memory (GPUs),
    /// or one block of wide-vector registers per work-item (CPU devices; float32 only).
    enum MatmulFamily: String {
        case tiled, vector
    }

    /// The tiled family's blocking: a work-group computes `rows` x `columns` of C, K advancing
    /// by `depth`; each work-item holds `threadRows` x `threadColumns` accumulators.
    struct Tile: Hashable, CustomStringConvertible {
        let rows, columns, depth, threadRows, threadColumns: Int
        var groupRows: Int { rows / threadRows }
        var groupColumns: Int { columns / threadColumns }
        var description: String { "\(rows)x\(columns)x\(depth):\(threadRows)x\(threadColumns)" }

        /// 128 x 128 tiles of 8 x 8 per work-item (256 work-items) where the product has enough
        /// of them to give every compute unit two; else 64 x 64 of 4 x 4 (the MLP's small
        /// matmuls would leave most of a GPU idle with the large tile).
        static let large = Tile(rows: 128, columns: 128, depth: 16, threadRows: 8, threadColumns: 8)
        static let small = Tile(rows: 64, columns: 64, depth: 16, threadRows: 4, threadColumns: 4)

        static func choose(m: Int, n: Int, computeUnits: Int, fits: (Tile) -> Bool) -> Tile {
            ((m + 127) / 128) * ((n + 127) / 128) >= 2 * max(computeUnits, 1) && fits(large) ? large : small
        }

        var workItems: Int { groupRows * groupColumns }
        /// Local memory for the tiles of A and B, each padded by one column (a transposed operand
        /// is stored across the tile's rows: unpadded, those stores would share one bank).
        func localBytes(realSize: Int) -> Int { depth * (rows + 1 + columns + 1) * realSize }

        /// `<rows>x<columns>x<depth>:<threadRows>x<threadColumns>` (e.g. `128x128x16:8x8`), for
        /// tuning on a new device: work-groups of at most 1024 work-items.
        static func parse(_ text: Substring) throws -> Tile {
            let parts = text.split(separator: ":").map { $0.split(separator: "x").compactMap { Int($0) } }
            guard parts.count == 2, parts[0].count == 3, parts[1].count == 2, (parts[0] + parts[1]).allSatisfy({ $0 > 0 }),
                  parts[0][0] % parts[1][0] == 0, parts[0][1] % parts[1][1] == 0,
                  (parts[0][0] / parts[1][0]) * (parts[0][1] / parts[1][1]) <= 1024 else {
                throw KilnError.invalidArgument(op: "KILN_MATMUL", message: "tile '\(text)' is not <rows>x<columns>x<depth>:<threadRows>x<threadColumns> with threads dividing the tile and at most 1024 work-items (e.g. 128x128x16:8x8)")
            }
            return Tile(rows: parts[0][0], columns: parts[0][1], depth: parts[0][2], threadRows: parts[1][0], threadColumns: parts[1][1])
        }
    }

    /// What one matmul kernel runs as: the vector family (with the device's register block, or
    /// another measured one), or the tiled family with a tile.
    enum MatmulChoice: Hashable, CustomStringConvertible {
        case vector
        /// The vector family with a register block of `rows` rows of `vectors` float16s.
        case vectorBlock(rows: Int, vectors: Int)
        case tiled(Tile)

        var description: String {
            switch self {
            case .vector: return "vector"
            case let .vectorBlock(r, v): return "vector:\(r)x\(v)"
            case .tiled(let t): return "tiled:\(t)"
            }
        }

        /// Whether it is the vector family, with any block.
        var isVector: Bool { if case .tiled = self { return false }; return true }

        /// `vector`, `vector:<rows>x<float16s>` or `tiled:<tile>`, as `description` writes it.
        init(_ text: String) throws {
            if text == "vector" { self = .vector; return }
            if text.hasPrefix("vector:") {
                let b = try OpenCLOptions.VectorBlock(String(text.dropFirst(7)))
                self = .vectorBlock(rows: b.rows, vectors: b.vectors)
                return
            }
            guard text.hasPrefix("tiled:") else {
                throw KilnError.invalidArgument(op: "kernel choice", message: "'\(text)' is not vector, vector:<rows>x<float16s> or tiled:<tile>")
            }
            self = .tiled(try Tile.parse(text.dropFirst(6)))
        }
    }

    /// The vector family's register block where none is set: rows, and 16-float column groups.
    static func defaultBlock(nativeFloatWidth: Int) -> (rows: Int, vectors: Int) {
        nativeFloatWidth >= 16 ? (12, 2) : (6, 1)
    }

    let program: Program
    let matmul: MatmulFamily
    /// The tiled family's tile for every matmul, or nil to choose per matmul.
    let tile: Tile?
    /// Per matmul kernel (by index in the schedule), a choice that overrides `matmul` and
    /// `tile`: what measuring the candidates found fastest (`MatmulTuner`).
    let choices: [Int: MatmulChoice]
    /// The device's compute units, which the tile choice fills, and its limits on a work-group.
    let computeUnits: Int, localMemoryBytes: Int, maxWorkGroupSize: Int
    /// `#pragma unroll` on the tiled family's loops for GPUs; nothing for CPU devices, where it
    /// doubled PoCL's build time (its compiler unrolls what pays without being told).
    let unrollPragma: String
    /// The vector family's register block: rows, and 16-float column groups per row.
    let block: (rows: Int, vectors: Int)
    /// Floats per vector variable in the vector family: the device's native width (8 with
    /// AVX2, 16 with AVX-512), so that no vector straddles registers.
    let vectorWidth: Int
    /// Pack every B operand of the vector family, also those it could read in place.
    let packAlways: Bool
    var realSize: Int { program.realType.byteSize }
    var generated: [String] = []
    /// What each matmul kernel (by index in the schedule) was generated as.
    private(set) var chosen: [Int: MatmulChoice] = [:]
    private(set) var launches: [LaunchSpec] = []
    /// Bytes of each scratch buffer the launches use (transposed copies of matmul operands).
    private(set) var scratchBytes: [Int] = []
    /// Scratch buffers whose contents live from the host's upload before a run to their kernel
    /// (the scatter-adds' groupings); every other one lives within one kernel's launches, and
    /// no kernel uses two of those, so the executable gives them all one buffer.
    private(set) var persistentScratch: Set<Int> = []
    /// Scatter-adds whose ids are a feed: the executable groups the ids by value on the host
    /// before each run and writes the groups into these scratch buffers (int32).
    struct Grouping {
        let idsBuffer: Int, idsOffset: Int, count: Int, limit: Int
        let rows: Int, starts: Int, order: Int, distinct: Int
    }
    private(set) var groupings: [Grouping] = []

    /// `options` gives the vector family's block, width and packing (the defaults: chosen by the device).
    init(program: Program, matmul: MatmulFamily, tile: Tile? = nil, choices: [Int: MatmulChoice] = [:], nativeFloatWidth: Int = 8,
         computeUnits: Int = 1, localMemoryBytes: Int = 32 << 10, maxWorkGroupSize: Int = 256, isGPU: Bool = false,
         options: OpenCLOptions = OpenCLOptions()) throws {
        self.program = program
        self.tile = tile
        self.choices = choices
        self.computeUnits = computeUnits
        self.localMemoryBytes = localMemoryBytes
        self.maxWorkGroupSize = maxWorkGroupSize
        unrollPragma = isGPU ? "#pragma unroll" : ""
        // Accumulators fill the vector registers, leaving room for B's vectors and A's broadcast: 24 of AVX-512's 32 (12 x 32), 12 of AVX2's 16 (6 x 16).
        if let b = options.vectorBlock {
            self.block = (b.rows, b.vectors)
        } else {
            self.block = Self.defaultBlock(nativeFloatWidth: nativeFloatWidth)
        }
        let width = options.vectorWidth ?? nativeFloatWidth
        self.vectorWidth = width >= 16 ? 16 : 8
        self.packAlways = options.packAlways
        self.matmul = matmul
        for (i, k) in program.kernels.enumerated() { try emit(k, index: i) }
    }

    /// The whole program's source: the prelude, the elementwise functions, the kernel families
    /// its kernels launch, and the generated kernels.
    var source: String {
        var families: [String] = []
        for k in program.kernels {
            for f in Self.families(k.kind) where !families.contains(f) { families.append(f) }
        }
        let head = [program.realType == .float64 ? "#define KILN_FP64 1" : "", KernelSources.prelude, KernelSources.elementwise,
                    Self.elementwiseFunctions]
        return (head + families + generated).joined(separator: "\n")
    }

    /// `k_<op>` for every elementwise op, the functions generated code is written in.
    static let elementwiseFunctions = (UnaryOp.allCases.map { "inline real k_\($0.rawValue)(real x) { return \($0.openCL); }" }
        + BinaryOp.allCases.map { "inline real k_\($0.rawValue)(real a, real b) { return \($0.openCL); }" }).joined(separator: "\n")

    /// The fixed kernel families (Kernels/*.cl) a kernel of this kind launches; templates
    /// instantiated into `generated` are not listed.
    static func families(_ kind: Kernel.Kind) -> [String] {
        switch kind {
        case .elementwise, .reduce, .matmul, .allReduceStart, .allReduceFinish: return []
        case .node(let op):
            switch op {
            case .transpose, .oneHot, .unfold, .fold, .maxPool, .maxPoolGrad, .slice, .pad, .concat: return []
            case .uniform: return [Philox.openCL]
            case .gather, .scatterAdd: return [KernelSources.embedding]
            case .softmaxCrossEntropy, .softmaxCrossEntropyGrad, .accuracy: return [KernelSources.softmaxCrossEntropy]
            case .softmax, .softmaxGrad: return [KernelSources.softmax]
            case .layerNorm, .layerNormGrad: return [KernelSources.normalize]
            case .argmax: return [KernelSources.argmax]
            case .input, .constant, .unary, .binary, .reduce, .matmul, .reshape, .broadcastTo, .allReduce: return []
            }
        }
    }

    static func roundUp(_ n: Int, _ m: Int) -> Int { (n + m - 1) / m * m }

    func offset(_ o: Operand) -> Int { o.location.byteOffset / (o.dtype == .int32 ? 4 : realSize) }

    static func literal(_ v: Double) -> String {
        if v.isNaN { return "NAN" }
        if v.isInfinite { return v > 0 ? "INFINITY" : "(-INFINITY)" }
        return "(real)(\(v))"
    }

    /// The flat index of `operand`'s element read at flat index `gid` of `iteration`, with
    /// NumPy broadcasting.
    static func index(_ operand: Shape, in iteration: Shape, gid: String) -> String {
        if operand == iteration { return gid }
        let bs = operand.broadcastStrides(to: iteration), its = iteration.strides
        var terms: [String] = []
        for k in 0..<iteration.rank where bs[k] != 0 && iteration[k] != 1 {
            var t = its[k] == 1 ? gid : "(\(gid) / \(its[k]))"
            if k > 0 { t = "(\(t) % \(iteration[k]))" }
            terms.append(bs[k] == 1 ? t : "\(t) * \(bs[k])")
        }
        return terms.isEmpty ? "0" : terms.joined(separator: " + ")
    }

    /// The buffers a kernel touches, as parameters `bN` (real) and arguments.
    func parameters(_ k: Kernel) -> (decl: String, args: [LaunchSpec.Arg]) {
        let buffers = Array(Set((k.inputs + k.outputs).map(\.location.buffer))).sorted()
        return (buffers.map { "__global real* b\($0), " }.joined(), buffers.map { .buffer($0) })
    }

    /// Where operand `o` starts, plus `extra` elements: a pointer the kernel indexes from 0.
    /// PoCL vectorizes `(b0 + 4096)[gid]` but not `b0[4096 + gid]` (28 against 8.4 GB/s for a
    /// copy, `scripts/pocl_kernel_forms.py`): it cannot tell that the sum's 32-bit index
    /// advances with `gid`.
    func pointer(_ o: Operand, plus extra: String? = nil) -> String {
        "(b\(o.location.buffer) + \(offset(o))\(extra.map { " + \($0)" } ?? ""))"
    }

    /// Statements computing fused code at flat index `gid`, and the name of each result; `at`,
    /// where given, writes load `j`'s index instead (from coordinates the kernel declares), and
    /// an offset to add to its pointer.
    func statements(_ f: FusedCode, loads: [Operand], gid: String, at: ((Int) -> (offset: String?, index: String))? = nil) -> (String, [String]) {
        var lines: [String] = []
        for (i, instr) in f.code.enumerated() {
            let rhs: String
            switch instr {
            case .load(let j):
                let o = loads[j], (extra, index) = at?(j) ?? (nil, Self.index(o.shape, in: f.shape, gid: gid))
                rhs = "\(pointer(o, plus: extra))[\(index)]"
            case .accumulator: rhs = "acc"
            case .constant(let c): rhs = Self.literal(c)
            case let .unary(op, a): rhs = "k_\(op.rawValue)(v\(a))"
            case let .binary(op, a, b): rhs = "k_\(op.rawValue)(v\(a), v\(b))"
            }
            lines.append("const real v\(i) = \(rhs);")
        }
        return (lines.joined(separator: " "), f.results.map { "v\($0)" })
    }

    func stores(_ outputs: [Operand], _ values: [String], gid: String, plus extra: String? = nil) -> String {
        zip(outputs, values).map { o, v in "\(pointer(o, plus: extra))[\(gid)] = \(v);" }.joined(separator: " ")
    }

    /// A new scratch buffer of `bytes` (see `scratchBytes`), by index.
    mutating func scratch(bytes: Int) -> Int {
        scratchBytes.append(bytes)
        return scratchBytes.count - 1
    }

    /// A range of (position in row, row) over `rows` rows of `inner` elements: work-groups that
    /// divide the row where one of 16 work-items or more does (a bounds check costs PoCL its
    /// vectorization), several short rows a group. `checked`: whether the kernel must check
    /// `position < inner`.
    func rowRange(inner: Int, rows: Int) -> (global: [Int], local: [Int], checked: Bool) {
        let limit = min(256, maxWorkGroupSize)
        let across = ElementwiseRows.divisor(of: inner, limit: limit, atLeast: 16)
        let local = across ?? min(64, limit)
        let down = ElementwiseRows.divisor(of: rows, limit: max(1, limit / local), atLeast: 1) ?? 1
        return ([Self.roundUp(inner, local), rows], [local, down], across == nil)
    }

    /// A launch on a range from `rowRange` (nothing where it is empty).
    mutating func launch(_ function: String, _ args: [LaunchSpec.Arg], range: (global: [Int], local: [Int], checked: Bool), kernel: Int) {
        guard range.global.allSatisfy({ $0 > 0 }) else { return }
        launches.append(LaunchSpec(function: function, args: args, global: range.global, local: range.local, kernel: kernel))
    }

    mutating func launch(_ function: String, _ args: [LaunchSpec.Arg], items: Int, local: Int, kernel: Int) {
        guard items > 0 else { return }
        launches.append(LaunchSpec(function: function, args: args, global: [Self.roundUp(items, local)], local: [local], kernel: kernel))
    }

    /// A launch over `rows` x `columns` (work-item (column, row)): work-groups of 64 span up to
    /// 32 neighbouring columns of several rows, so a group reads whole rows.
    private mutating func launchRows(_ function: String, _ args: [LaunchSpec.Arg], rows: Int, columns: Int, kernel: Int) {
        guard rows > 0 && columns > 0 else { return }
        let across = columns >= 32 ? 32 : columns >= 16 ? 16 : 8, down = 64 / across
        launches.append(LaunchSpec(function: function, args: args, global: [Self.roundUp(columns, across), Self.roundUp(rows, down)],
                                   local: [across, down], kernel: kernel))
    }

    private mutating func emit(_ k: Kernel, index: Int) throws {
        for o in k.inputs + k.outputs where o.shape.count >= Int(Int32.max) {
            throw KilnError.invalidArgument(op: k.name, message: "tensor of shape \(o.shape) has more elements than OpenCL int indexing allows")
        }
        let name = k.name
        let (params, bufferArgs) = parameters(k)
        let ins = k.inputs, outs = k.outputs
        func real(_ o: Operand) -> [LaunchSpec.Arg] { [.buffer(o.location.buffer), .int(offset(o))] }
        switch k.kind {
        case .elementwise(let f):
            let limit = min(256, maxWorkGroupSize), count = f.shape.count
            guard count > 0 else { break }
            if let rows = ElementwiseRows(shape: f.shape, loads: ins.map(\.shape)) {
                // Broadcast loads: a 2-D range of (element in row, row), a load constant along
                // the row read once per row. Work-groups divide the row where they can, so that
                // no work-item needs a bounds check.
                let (body, values) = statements(f, loads: ins, gid: "i", at: { j in
                    rows.advances[j] ? (rows.rowOffsets[j], "i") : (nil, rows.rowOffsets[j])
                })
                let range = rowRange(inner: rows.inner, rows: rows.rows)
                generated.append("""
                __kernel void \(name)(\(params)int n) {
                    const int i = get_global_id(0), r = get_global_id(1);
                    \(range.checked ? "if (i >= \(rows.inner)) return;" : "")
                    \(body)
                    \(stores(outs, values, gid: "i", plus: "r * \(rows.inner)"))
                }
                """)
                launch(name, bufferArgs + [.int(count)], range: range, kernel: index)
                break
            }
            let (body, values) = statements(f, loads: ins, gid: "gid")
            // Work-groups of up to 256 (on PoCL a work-group is the unit its vectorizer and
            // threads take; a common size on GPUs too) that divide the range where one can: a
            // bounds check costs PoCL its vectorization (28 against 83 GB/s for a copy).
            let exact = ElementwiseRows.divisor(of: count, limit: limit, atLeast: 32)
            generated.append("""
            __kernel void \(name)(\(params)int n) {
                const int gid = get_global_id(0);
                \(exact == nil ? "if (gid >= n) return;" : "")
                \(body)
                \(stores(outs, values, gid: "gid"))
            }
            """)
            launch(name, bufferArgs + [.int(count)], items: count, local: exact ?? limit, kernel: index)

        case let .reduce(op, axes, f):
            let space = ReductionSpace(shape: f.shape, reduced: axes, loads: ins.map(\.shape))
            let count = axes.map { f.shape[$0] }.reduce(1, *), outputs = outs[0].shape.count
            let (body, values) = statements(f, loads: ins, gid: "gid", at: { (nil, space.index(operand: $0 + 1)) })
            // What both reduction templates share: the prologue, the combination, the store.
            let common = [
                "$NAME": name, "$PARAMS": params, "$KEPT": space.keptCoordinates(output: "o"),
                "$PROLOGUE": body + " v = \(values[0]);",
                "$IDENTITY": op == .max ? "(-INFINITY)" : "(real)0", "$COMBINE": op == .max ? "red_max" : "red_sum",
                "$FINISH": op == .mean ? " / (real)\(count)" : "",
                "$STORE": "\(pointer(outs[0]))[o] = result;",
            ]
            // A template with `common`'s values and `own`'s, which win where both name a key.
            func instantiate(_ template: String, _ own: [String: String]) -> String {
                common.merging(own) { $1 }.reduce(template) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
            }
            let reduced = space.reducedAxes
            func loop(_ k: Int, from: String = "0", step: String = "++") -> String {
                "for (int c\(k) = \(from); c\(k) < \(space.axes[k].size); c\(k)\(step))"
            }
            let leading = axes == Array(0..<axes.count)
            // CPU devices, where the innermost reduced axis is contiguous (not column sums: a
            // work-item per group of columns measured no faster than the kernels below).
            if matmul == .vector, outputs > 0, count > 64, let lane = reduced.last, space.axes[lane].strides[0] == 1 {
                emitReductionPerItem(name: name, params: params, args: bufferArgs, op: op, space: space, lane: lane, f: f, loads: ins,
                                     outputs: outs, finish: common["$FINISH"]!, instantiate: instantiate, outputs: outputs, kernel: index)
                break
            }
            let columns = outputs > 0 && outputs < 1024 && count > 1024 && leading && reduced.count == 1
            if columns, f.code != [.load(0)] || f.results.count > 1,
               emitColumnsVector(name: name, params: params, args: bufferArgs, op: op, space: space, f: f, loads: ins, outputs: outs,
                                 instantiate: instantiate, kernel: index) {
                break
            }
            let perOutput = outputs > 0 && ((leading && (outputs >= 64 || count <= 1024)) || (count <= 64 && outputs >= 64))
            // Reductions sharing a pass share it in the per-item form above and the work-group
            // form below; the forms between take them one at a time.
            if f.results.count > 1 && (columns || perOutput) {
                for apart in k.reductionsApart() { try emit(apart, index: index) }
                break
            }
            // A few long columns (a convolution's bias gradient, [N·H·W, C] summed over the
            // rows): a work-item per column would leave the device idle, a work-group per column
            // reads with a stride. Two launches instead: work-items (part, column) sum a chunk of
            // rows each into scratch, neighbours reading neighbours, then one per column sums its
            // parts.
            if columns {
                let rows = space.axes[reduced[0]].size
                let parts = min((4096 + outputs - 1) / outputs, (rows + 63) / 64), chunk = (rows + parts - 1) / parts
                let scratch = scratchBytes.count
                scratchBytes.append(parts * outputs * realSize)
                let c = reduced[0]
                // CPU devices, a plain input: a work-item sums its rows of a block of columns with
                // vector loads (the same additions in the same order).
                let plain = f.code == [.load(0)] && ins[0].strides == nil && ins[0].shape.count == f.shape.count
                if cpuForms, plain, op != .max, let w = [16, 8, 4].first(where: { outputs % $0 == 0 }) {
                    let blocks = outputs / w
                    generated.append("""
                    __kernel void \(name)(\(params)__global real* partials, int items) {
                        const int g = get_global_id(0);
                        if (g >= items) return;
                        const int part = g / \(blocks), block = g % \(blocks);
                        __global const real* x = \(pointer(ins[0])) + block * \(w);
                        float\(w) acc = (float\(w))(0);
                        for (int r = part * \(chunk); r < min((part + 1) * \(chunk), \(rows)); r++) acc += vload\(w)(0, x + r * \(outputs));
                        vstore\(w)(acc, 0, partials + part * \(outputs) + block * \(w));
                    }
                    """)
                    launch(name, bufferArgs + [.scratch(scratch), .int(parts * blocks)], items: parts * blocks, local: 1, kernel: index)
                } else {
                    generated.append(instantiate(KernelSources.reduceColumns, [
                        "$PARAMS": params + "__global real* partials, ",
                        "$KEPT": "const int part = o / \(outputs); " + space.keptCoordinates(output: "(o % \(outputs))"),
                        // The same trip count for every work-item (see the lane loop below).
                        "$LOOPS": "for (int k = 0; k < \(chunk); k++)",
                        "$COORDS": "const int c\(c) = part * \(chunk) + k;" + (rows % chunk == 0 ? "" : " if (c\(c) >= \(rows)) continue;"),
                        "$FINISH": "", "$STORE": "partials[o] = result;",
                    ]))
                    launch(name, bufferArgs + [.scratch(scratch), .int(parts * outputs)], items: parts * outputs, local: 64, kernel: index)
                }
                generated.append(instantiate(KernelSources.reduceColumns, [
                    "$NAME": name + "_parts", "$PARAMS": "__global real* partials, __global real* b\(outs[0].location.buffer), ",
                    "$KEPT": "", "$LOOPS": "for (int p = 0; p < \(parts); p++)", "$COORDS": "",
                    "$PROLOGUE": "v = partials[p * \(outputs) + o];",
                ]))
                launch(name + "_parts", [.scratch(scratch), .buffer(outs[0].location.buffer), .int(outputs)], items: outputs, local: 64, kernel: index)
                break
            }
            // Over leading axes, with many outputs or short columns; or many outputs of a few
            // elements each (pooling windows): a work-item per output. A work-group per output
            // would leave most of its work-items idle there.
            if perOutput {
                let loops = reduced.isEmpty ? "for (int r = 0; r < 1; r++)" : reduced.map { loop($0) }.joined(separator: " ")
                generated.append(instantiate(KernelSources.reduceColumns, ["$LOOPS": loops, "$COORDS": ""]))
                launch(name, bufferArgs + [.int(outputs)], items: outputs, local: 64, kernel: index)
                break
            }
            // The work-items share the innermost reduced axis (contiguous in memory, as a rule)
            // inside loops over the others; where that axis is too short to keep a work-group
            // busy, they share one flat index over all reduced axes instead.
            var local = outputs >= 64 ? 64 : 256
            let loops: String, coords: String
            if let lane = reduced.last, space.axes[lane].size >= 16 || reduced.count == 1 {
                while local > 32 && space.axes[lane].size * 2 <= local { local /= 2 }
                // Trip counts the same for every work-item, the lane's end guarded inside: PoCL
                // then runs the work-items as the innermost loop, which it vectorizes.
                let size = space.axes[lane].size, rounds = (size + local - 1) / local
                loops = (reduced.dropLast().map { loop($0) } + ["for (int lane = 0; lane < \(rounds); lane++)"]).joined(separator: " ")
                coords = "const int c\(lane) = lane * \(local) + t;" + (size % local == 0 ? "" : " if (c\(lane) >= \(size)) continue;")
            } else {
                loops = "for (int r = t; r < \(count); r += \(local))"
                coords = space.coordinates(of: reduced, flat: "r")
            }
            // One accumulator and one row of local memory per result.
            let results = f.results.indices
            generated.append(instantiate(KernelSources.reduce, [
                "$LOCAL": "\(local)", "$LOOPS": loops, "$COORDS": coords, "$RESULTS": "\(results.count)",
                "$PROLOGUE": body + results.map { " v[\($0)] = \(values[$0]);" }.joined(),
                "$STORE": results.map { "\(pointer(outs[$0]))[o] = scratch[\($0)][0]\(common["$FINISH"]!);" }.joined(separator: " "),
            ]))
            if outputs > 0 {
                launches.append(LaunchSpec(function: name, args: bufferArgs + [.int(outputs)], global: [outputs * local], local: [local], kernel: index))
            }

        case let .matmul(logicalTA, logicalTB, epilogue):
            let a = ins[0], b = ins[1], rank = a.shape.rank
            let (_, m, n, kk) = k.matmulDimensions!
            // An operand may be a strided view (a transpose read in place): how it is stored
            // folds into the transpose flag and the leading dimension.
            let (la, lb) = (a.matrixLayout(transposed: logicalTA), b.matrixLayout(transposed: logicalTB))
            let (ta, tb, lda, ldb) = (la.transposed, lb.transposed, la.ld, lb.ld)
            // A batched matmul: a matrix per index of the launch's third dimension (`batch`).
            let batches = a.shape.dims.prefix(rank - 2).reduce(1, *)
            func base(_ o: Operand, _ l: MatrixLayout) -> String {
                guard batches > 1 else { return "\(offset(o))" }
                if l.inner == 1 { return "\(offset(o)) + batch * \(l.outerStride)" }
                return "\(offset(o)) + (batch / \(l.inner)) * \(l.outerStride) + (batch % \(l.inner)) * \(l.innerStride)"
            }
            let (aBase, bBase) = (base(a, la), base(b, lb))
            let cBase = batches > 1 ? "batch * \(m * n)" : "0"
            let aAt = ta ? "b\(a.location.buffer)[\(aBase) + (k) * \(lda) + (r)]" : "b\(a.location.buffer)[\(aBase) + (r) * \(lda) + (k)]"
            let code = epilogue ?? FusedCode(shape: outs[0].shape, code: [.accumulator], results: [0], nodes: [nil])
            // A load broadcast along the rows (a bias) reads at `col`: `gid % n` for every
            // element kept PoCL from vectorizing the vector family's epilogue loop.
            let (body, values) = statements(code, loads: ins, gid: "gid", at: { j in
                let s = ins[j].shape, r = code.shape.rank, bs = s.broadcastStrides(to: code.shape)
                if s == code.shape { return (nil, "gid") }
                if r >= 1, code.shape[r - 1] == n, bs[r - 1] == 1, bs.dropLast().allSatisfy({ $0 == 0 }) { return (nil, "col") }
                return (nil, Self.index(s, in: code.shape, gid: "gid"))
            })
            let epilogueText = body + " " + stores(outs, values, gid: "gid")
            guard m > 0 && n > 0 else { break }
            let (realSize, localMemory, maxGroup) = (self.realSize, localMemoryBytes, maxWorkGroupSize)
            let fits = { (t: Tile) in t.localBytes(realSize: realSize) <= localMemory && t.workItems <= maxGroup }
            // The vector family is float32 only: a float64 program's matmuls take tiles.
            let tiled = MatmulChoice.tiled(tile ?? Tile.choose(m: m * batches, n: n, computeUnits: computeUnits, fits: fits))
            var choice = choices[index] ?? (matmul == .vector ? .vector : tiled)
            if choice.isVector && program.realType != .float32 { choice = tiled }
            chosen[index] = choice
            if choice.isVector {
                var block = self.block
                if case let .vectorBlock(r, v) = choice { block = (r, v) }
                // B's rows in panels of the block's width: read in place when untransposed, whole panels and within L2 (nothing to pack), else packed first, which pays off when B streams from memory.
                let width = 16 * block.vectors, padded = (n + width - 1) / width * width
                let inPlace = !tb && n % width == 0 && !packAlways
                let direct = inPlace && kk * n * realSize <= 1 << 20
                // Split over K where K dwarfs M x N (a weight's gradient over a batch of
                // pixels) and B would be packed: chunks of B's rows that stay in L2 (512 KiB),
                // read in place by every block of C, each chunk's product into partials that a
                // second kernel adds in chunk order before the epilogue (conv2's weight gradient
                // on PoCL: 3.4 ms plus 5.0 packing -> see BENCHMARKS.md). Where B has no whole
                // panels but Aᵀ has (conv1's weight gradient, 9 columns), the kernel computes
                // Cᵀ = op(B)ᵀ·Aᵀ instead, reading Aᵀ in place as its B.
                // At most 256 chunks: the partials are added in straight-line code.
                func chunking(_ columns: Int) -> (chunk: Int, chunks: Int)? {
                    let fit = max(64, min(1024, (512 << 10) / (columns * realSize)) / 4 * 4)
                    let chunk = max(fit, ((kk + 255) / 256 + 3) / 4 * 4), chunks = (kk + chunk - 1) / chunk
                    return chunks >= 4 && chunks * m * n * realSize <= 64 << 20 ? (chunk, chunks) : nil
                }
                let plainSplit = inPlace && !direct && batches == 1 ? chunking(n) : nil
                let swappedSplit = plainSplit == nil && !direct && !packAlways && batches == 1 && ta && m % width == 0 ? chunking(m) : nil
                let split = plainSplit != nil || swappedSplit != nil, swapped = swappedSplit != nil
                let (chunk, chunks) = plainSplit ?? swappedSplit ?? (0, 0)
                // The kernel's product: C, or Cᵀ with op(B)ᵀ as its A and A's rows as its B's.
                let (kernelM, kernelN, kernelPadded) = swapped ? (n, m, m) : (m, n, padded)
                let kernelAAt = !swapped ? aAt
                    : tb ? "b\(b.location.buffer)[\(bBase) + (r) * \(ldb) + (k)]" : "b\(b.location.buffer)[\(bBase) + (k) * \(ldb) + (r)]"
                let (panelBuffer, panelBase, panelStride) = swapped ? (a.location.buffer, aBase, lda) : (b.location.buffer, bBase, ldb)
                var packedArgs: [LaunchSpec.Arg] = []
                if split {
                    let s = scratchBytes.count
                    scratchBytes.append(chunks * m * n * realSize)
                    packedArgs = [.scratch(s)]
                } else if !direct {
                    let s = scratchBytes.count
                    scratchBytes.append(max(batches * padded * kk * realSize, 4))
                    launch("pack_panels", real(b) + [.int(ldb), .int(tb ? 1 : 0), .scratch(s), .int(kk), .int(n), .int(width),
                                                     .int(batches), .int(lb.inner), .int(lb.outerStride), .int(lb.innerStride)],
                           items: batches * padded / width * kk, local: 64, kernel: index)
                    packedArgs = [.scratch(s)]
                }
                let rows = block.rows, vecs = block.vectors * 16 / vectorWidth
                let vec = "float\(vectorWidth)"
                let acc = { (r: Int, v: Int) in "c\(r)_\(v)" }
                let rowIndex = (0..<rows).map { "const int ra\($0) = min(i0 + \($0), M - 1);" }.joined(separator: " ")
                let declare = "\(vec) " + (0..<rows).flatMap { r in (0..<vecs).map { "\(acc(r, $0)) = 0" } }.joined(separator: ", ") + ";"
                // Named bv*, so they cannot shadow the buffer parameters b<index> that A_AT reads.
                var step = (0..<vecs).map { "const \(vec) bv\($0) = vload\(vectorWidth)(\($0), panelRow);" }.joined(separator: " ")
                for r in 0..<rows {
                    step += " { const \(vec) a = (\(vec))(A_AT_\(name)(ra\(r), k));"
                    step += (0..<vecs).map { " \(acc(r, $0)) = fma(a, bv\($0), \(acc(r, $0)));" }.joined() + " }"
                }
                let spill = (0..<rows).flatMap { r in (0..<vecs).map { "vstore\(vectorWidth)(\(acc(r, $0)), \($0), tile[\(r)]);" } }.joined(separator: " ")
                var text = "#define A_AT_\(name)(r, k) \(kernelAAt)\n" + KernelSources.matmulVector
                let inB = direct || split
                for (key, value) in [("$NAME", name), ("$PARAMS", params), ("$ROWS", "\(rows)"), ("$WIDTH", "\(width)"),
                                     ("$PACKED_PARAM", direct ? "" : split ? "__global float* partials," : "__global const float* packedB,"),
                                     ("$PANEL_START", inB ? "b\(panelBuffer) + \(panelBase) + j0" : "packedB + ((size_t)batch * \(padded / width) + panel) * K * \(width)"),
                                     ("$C_BASE", cBase),
                                     ("$ROW_STRIDE", inB ? "\(panelStride)" : "\(width)"),
                                     ("$K_BEGIN", split ? "batch * \(chunk)" : "0"), ("$K_END", split ? "min(K, kBegin + \(chunk))" : "K"),
                                     ("$ROWINDEX", rowIndex), ("$DECLARE", declare), ("$STEP", step), ("$SPILL", spill),
                                     ("$EPILOGUE", split ? "partials[(size_t)batch * \(m * n) + gid] = acc;" : epilogueText)] {
                    text = text.replacingOccurrences(of: key, with: value)
                }
                generated.append(text)
                let blocks = [kernelPadded / width, (kernelM + block.rows - 1) / block.rows]
                // A work-group per row block, its panels the items, where there are row blocks
                // enough to keep every compute unit busy: the panels share that block's rows
                // of A in cache, and PoCL schedules a group where it scheduled a panel (W3's
                // input gradient, 2091 blocks of 9 panels: 3.1-3.3 against 3.5-3.6 ms a step).
                // The MLP's 11 row blocks stay a panel a group (grouped, its epoch took 10% longer).
                // At most 64 items: well within any device's limit for a kernel this large.
                let group = blocks[1] < 32 * computeUnits ? 1
                    : (1...blocks[0]).last { blocks[0] % $0 == 0 && $0 <= min(64, maxWorkGroupSize) } ?? 1
                launches.append(LaunchSpec(function: name, args: bufferArgs + packedArgs + [.int(kernelM), .int(kernelN), .int(kk)],
                                           global: blocks + (batches > 1 ? [batches] : split ? [chunks] : []),
                                           local: [group, 1] + (batches > 1 || split ? [1] : []), kernel: index))
                if split {
                    // The chunks' partials in chunk order, in straight-line code (a loop here
                    // would keep PoCL from vectorizing across work-items), then the epilogue.
                    let sums = (1..<chunks).map { "acc += partials[\($0 * m * n) + p];" }.joined(separator: " ")
                    generated.append("""
                    __kernel void \(name)_sum(\(params)__global const float* partials, int count) {
                        const int gid = get_global_id(0);
                        if (gid >= count) return;
                        const int row = gid / \(n), col = gid % \(n), p = \(swapped ? "col * \(m) + row" : "gid");
                        real acc = partials[p]; \(sums)
                        \(epilogueText)
                    }
                    """)
                    launch(name + "_sum", bufferArgs + packedArgs + [.int(m * n)], items: m * n, local: 64, kernel: index)
                }
                break
            }
            let bAt = tb ? "b\(b.location.buffer)[\(bBase) + (gc) * \(ldb) + (gk)]" : "b\(b.location.buffer)[\(bBase) + (gk) * \(ldb) + (gc)]"
            guard case .tiled(let t) = choice else { break }
            guard fits(t) else {
                throw KilnError.invalidArgument(op: "KILN_MATMUL", message: "tile \(t) needs \(t.localBytes(realSize: realSize)) bytes of local memory and \(t.workItems) work-items per group; the device has \(localMemory) bytes and at most \(maxGroup)")
            }
            let fullK = kk % t.depth == 0
            var text = KernelSources.matmul
            for (key, value) in [
                ("$NAME", name), ("$PARAMS", params), ("$A_AT(gr, gk)", aAt.replacingOccurrences(of: "(k)", with: "(gk)").replacingOccurrences(of: "(r)", with: "(gr)")),
                ("$B_AT(gk, gc)", bAt), ("$A_LOAD_ROW_MAJOR", ta ? "0" : "1"), ("$B_LOAD_ROW_MAJOR", tb ? "0" : "1"),
                ("$IN_A", m % t.rows == 0 && fullK ? "1" : "gr < M && gk < K"), ("$IN_B", n % t.columns == 0 && fullK ? "1" : "gc < N && gk < K"),
                ("$IN_C", m % t.rows == 0 && n % t.columns == 0 ? "1" : "row < M && col < N"),
                ("$TM", "\(t.rows)"), ("$TN", "\(t.columns)"), ("$TK", "\(t.depth)"), ("$RM", "\(t.threadRows)"), ("$RN", "\(t.threadColumns)"),
                ("$WM", "\(t.groupRows)"), ("$WN", "\(t.groupColumns)"), ("$UNROLL", unrollPragma),
                ("$EPILOGUE", epilogueText), ("$C_BASE", cBase),
            ] { text = text.replacingOccurrences(of: key, with: value) }
            generated.append(text)
            launches.append(LaunchSpec(function: name, args: bufferArgs + [.int(m), .int(n), .int(kk)],
                                       global: [(n + t.columns - 1) / t.columns * t.groupColumns, (m + t.rows - 1) / t.rows * t.groupRows]
                                           + (batches > 1 ? [batches] : []),
                                       local: [t.groupColumns, t.groupRows] + (batches > 1 ? [1] : []), kernel: index))

        case .node(.gather):
            let count = ins[0].shape.count, rows = ins[1].shape[0], dim = ins[1].shape[1]
            launchRows("gather", real(ins[0]) + real(ins[1]) + real(outs[0]) + [.int(count), .int(rows), .int(dim)],
                       rows: count, columns: dim, kernel: index)

        case .node(.scatterAdd):
            let count = ins[0].shape.count, rows = outs[0].shape[0], dim = outs[0].shape[1]
            launch("fill", real(outs[0]) + [.int(rows * dim), .real(0)], items: rows * dim, local: 64, kernel: index)
            if program.buffers[ins[0].location.buffer].kind == .feed, count > 0, dim > 0 {
                // Ids fed from the host: grouped there by id each run (`Grouping`), then summed
                // by many work-items in parallel rather than a column each over every position.
                let first = scratchBytes.count
                scratchBytes += [count * 4, (count + 1) * 4, count * 4, 4]
                persistentScratch.formUnion(first..<first + 4)
                groupings.append(Grouping(idsBuffer: ins[0].location.buffer, idsOffset: offset(ins[0]), count: count, limit: rows,
                                          rows: first, starts: first + 1, order: first + 2, distinct: first + 3))
                launchRows("scatter_add_grouped", [.scratch(first), .scratch(first + 1), .scratch(first + 2), .scratch(first + 3)]
                               + real(ins[1]) + real(outs[0]) + [.int(dim)], rows: count, columns: dim, kernel: index)
            } else {
                launch("scatter_add", real(ins[0]) + real(ins[1]) + real(outs[0]) + [.int(count), .int(rows), .int(dim)],
                       items: dim, local: 64, kernel: index)
            }

        case .node(.accuracy):
            let args = real(ins[0]) + real(ins[1]) + real(outs[0]) + [.int(ins[0].shape[0]), .int(ins[0].shape[1])]
            launches.append(LaunchSpec(function: "accuracy", args: args, global: [256], local: [256], kernel: index))

        case .node(.softmaxCrossEntropy):
            // Each row's loss by a work-item of its own into scratch, then their mean by one
            // work-group in a fixed order (one work-group over all rows kept one core busy).
            let (rows, classes) = (ins[0].shape[0], ins[0].shape[1]), scratch = scratchBytes.count
            scratchBytes.append(max(rows, 1) * realSize)
            launch("softmax_xent_rows", real(ins[0]) + real(ins[1]) + [.scratch(scratch), .int(rows), .int(classes)],
                   items: rows, local: 64, kernel: index)
            launches.append(LaunchSpec(function: "mean_of_rows", args: [.scratch(scratch)] + real(outs[0]) + [.int(rows)],
                                       global: [256], local: [256], kernel: index))

        case let .node(.softmax(axis, log)), let .node(.softmaxGrad(axis, log)):
            let shape = ins[0].shape
            let n = shape[axis], inner = shape.dims[(axis + 1)...].reduce(1, *), rows = shape.count / max(n, 1)
            let grad = k.kind != .node(.softmax(axis: axis, log: log))
            let buffers = real(ins[0]) + (grad ? real(ins[1]) : []) + real(outs[0])
            let function = grad ? "softmax_grad_rows" : "softmax_rows"
            if inner == 1 && n % 8 == 0 {
                // Contiguous rows: 8 values at a time.
                launch(function + "8", buffers + [.int(rows), .int(n / 8), .int(log ? 1 : 0)], items: rows, local: 64, kernel: index)
            } else {
                launch(function, buffers + [.int(rows), .int(n), .int(inner), .int(log ? 1 : 0)], items: rows, local: 64, kernel: index)
            }

        case let .node(.layerNorm(eps, rms)), let .node(.layerNormGrad(eps, rms)):
            let n = ins[0].shape[ins[0].shape.rank - 1], rows = ins[0].shape.count / max(n, 1)
            let grad = k.kind != .node(.layerNorm(epsilon: eps, rms: rms))
            let buffers = real(ins[0]) + (grad ? real(ins[1]) : []) + real(outs[0])
            let function = (grad ? "norm_grad_rows" : "norm_rows") + (n % 8 == 0 ? "8" : "")
            launch(function, buffers + [.int(rows), .int(n % 8 == 0 ? n / 8 : n), .real(eps), .int(rms ? 1 : 0)], items: rows, local: 64, kernel: index)

        case .node(.softmaxCrossEntropyGrad):
            // Each row's log-sum-exp by a work-item of its own, then a work-item per element, so
            // neighbours write neighbours.
            let (rows, classes) = (ins[0].shape[0], ins[0].shape[1]), scratch = scratchBytes.count
            scratchBytes.append(max(rows, 1) * realSize)
            launch("row_logsumexp", real(ins[0]) + [.scratch(scratch), .int(rows), .int(classes)], items: rows, local: 64, kernel: index)
            launchRows("softmax_xent_grad", real(ins[0]) + real(ins[1]) + [.scratch(scratch)] + real(ins[2]) + real(outs[0])
                       + [.int(rows), .int(classes)], rows: rows, columns: classes, kernel: index)

        case .allReduceStart, .allReduceFinish:
            break   // host work: OpenCLAllReduce

        case .node(.argmax(let axis)):
            let s = ins[0].shape
            let outer = s.dims[..<axis].reduce(1, *), inner = s.dims[(axis + 1)...].reduce(1, *)
            launch("argmax", real(ins[0]) + real(outs[0]) + [.int(outer), .int(s[axis]), .int(inner)],
                   items: outer * inner, local: 64, kernel: index)
        case let .node(.oneHot(classes, ignoreIndex)):
            // A work-item per output element on a 2-D range (c, p): a work-group writes whole
            // rows. Fed labels are range-checked on the host (OpenCLExecutable); any label
            // without a column (or equal to the ignore index) gives a row of zeros here.
            let count = ins[0].shape.count
            let ignored = ignoreIndex.map { " && label != (int)(\($0))" } ?? ""
            generated.append("""
            __kernel void \(name)(__global const int* labels, __global real* out) {
                const int c = get_global_id(0), p = get_global_id(1);
                if (c >= \(classes) || p >= \(count)) return;
                const int label = labels[\(offset(ins[0])) + p];
                out[\(offset(outs[0])) + p * \(classes) + c] = (label == c\(ignored)) ? (real)1 : (real)0;
            }
            """)
            launchRows(name, [.buffer(ins[0].location.buffer), .buffer(outs[0].location.buffer)], rows: count, columns: classes, kernel: index)
        case let .node(.unfold(w, padValue)) where w.channelsLast:
            emitUnfoldChannelsLast(k, window: w, padValue: padValue, index: index)
        case let .node(.unfold(w, padValue)) where windowRows(image: ins[0].shape, patches: outs[0].shape):
            emitUnfoldRows(k, window: w, padValue: padValue, index: index)
        case let .node(.unfold(w, padValue)):
            // A work-item per patch row (n, oh, ow, c): its kh x kw entries, contiguous in the
            // output, in straight-line code (the window's offsets are constants).
            let (c, h, wd) = (ins[0].shape[1], ins[0].shape[2], ins[0].shape[3])
            let (oh, ow, kh, kw) = (outs[0].shape[1], outs[0].shape[2], w.kernel[0], w.kernel[1])
            let padded = w.padding != [0, 0]
            var entries: [String] = []
            for p in 0..<kh {
                for q in 0..<kw {
                    let r = "(r0 + \(p * w.dilation[0]))", col = "(c0 + \(q * w.dilation[1]))"
                    let ok = "\(r) >= 0 && \(r) < \(h) && \(col) >= 0 && \(col) < \(wd)"
                    let at = "\(r) * \(wd) + \(col)"
                    entries.append(padded ? "out[\(p * kw + q)] = (\(ok)) ? x[\(at)] : \(Self.literal(padValue));" : "out[\(p * kw + q)] = x[\(at)];")
                }
            }
            let count = outs[0].shape.count / (kh * kw)
            generated.append("""
            __kernel void \(name)(\(params)int n) {
                const int gid = get_global_id(0);
                if (gid >= n) return;
                const int ch = gid % \(c), j = (gid / \(c)) % \(ow), i = (gid / \(c * ow)) % \(oh), b = gid / \(c * ow * oh);
                const int r0 = i * \(w.stride[0]) - \(w.padding[0]), c0 = j * \(w.stride[1]) - \(w.padding[1]);
                __global const real* x = \(pointer(ins[0])) + (b * \(c) + ch) * \(h * wd);
                __global real* out = \(pointer(outs[0])) + gid * \(kh * kw);
                \(entries.joined(separator: "\n    "))
            }
            """)
            launch(name, bufferArgs + [.int(count)], items: count, local: min(256, maxWorkGroupSize), kernel: index)

        case let .node(.uniform(seed, stream)):
            // A work-item per Philox block, its four words the values of elements b, B + b,
            // 2B + b and 3B + b: neighbouring work-items write neighbours in each quarter. As the
            // elementwise kernels: a pointer to index from 0, no bounds check where the
            // work-groups divide the blocks and the blocks the elements (PoCL vectorized neither:
            // 0.7 GB/s).
            let count = outs[0].shape.count, quarter = (count + 3) / 4
            let exact = count % 4 == 0 ? ElementwiseRows.divisor(of: quarter, limit: min(256, maxWorkGroupSize), atLeast: 32) : nil
            let stores = exact != nil
                ? "o[b] = u0; o[\(quarter) + b] = u1; o[\(2 * quarter) + b] = u2; o[\(3 * quarter) + b] = u3;"
                : """
                o[b] = u0;
                    if (\(quarter) + b < n) o[\(quarter) + b] = u1;
                    if (\(2 * quarter) + b < n) o[\(2 * quarter) + b] = u2;
                    if (\(3 * quarter) + b < n) o[\(3 * quarter) + b] = u3;
                """
            generated.append("""
            __kernel void \(name)(__global const int* counter, __global real* out, int n) {
                const int b = get_global_id(0);
                \(exact == nil ? "if (b >= \(quarter)) return;" : "")
                KILN_PHILOX_WORDS((uint)b, (uint)counter[\(offset(ins[0]))], \(seed)u, \(stream)u)
                __global real* o = out + \(offset(outs[0]));
                \(stores)
            }
            """)
            launch(name, [.buffer(ins[0].location.buffer), .buffer(outs[0].location.buffer), .int(count)], items: quarter,
                   local: exact ?? min(256, maxWorkGroupSize), kernel: index)

        case let .node(.fold(w, _, _)) where w.channelsLast:
            emitFoldChannelsLast(k, window: w, index: index)
        case let .node(.fold(w, h, wd)) where windowRows(image: outs[0].shape, patches: ins[0].shape):
            emitFoldRows(k, window: w, height: h, width: wd, index: index)
        case let .node(.fold(w, h, wd)):
            // A work-item per pixel, summing the patch entries that read it (kh, then kw
            // ascending) in straight-line code: no atomics, and a fixed order.
            let (oh, ow, c) = (ins[0].shape[1], ins[0].shape[2], ins[0].shape[3])
            let (kh, kw) = (w.kernel[0], w.kernel[1])
            let count = outs[0].shape.count
            var terms: [String] = []
            for p in 0..<kh {
                for q in 0..<kw {
                    let t = "(r + \(w.padding[0] - p * w.dilation[0]))", u = "(col + \(w.padding[1] - q * w.dilation[1]))"
                    let (sh, sw) = (w.stride[0], w.stride[1])
                    let okT = sh == 1 ? "\(t) >= 0 && \(t) < \(oh)" : "\(t) >= 0 && \(t) % \(sh) == 0 && \(t) / \(sh) < \(oh)"
                    let okU = sw == 1 ? "\(u) >= 0 && \(u) < \(ow)" : "\(u) >= 0 && \(u) % \(sw) == 0 && \(u) / \(sw) < \(ow)"
                    let at = "((\(sh == 1 ? t : "\(t) / \(sh)") * \(ow) + \(sw == 1 ? u : "\(u) / \(sw)")) * \(c * kh * kw) + \(p * kw + q))"
                    terms.append("if (\(okT) && \(okU)) sum += image[\(at)];")
                }
            }
            // Neighbouring work-items take neighbouring channels of one pixel: their entries
            // are neighbours in the patches (pixel-major, a pixel's neighbour is C·kh·kw
            // entries away): 6.0 against 8.2 ms for the CNN's conv2 on PoCL.
            generated.append("""
            __kernel void \(name)(\(params)int n) {
                const int gid = get_global_id(0);
                if (gid >= n) return;
                const int ch = gid % \(c), col = (gid / \(c)) % \(wd), r = (gid / \(c * wd)) % \(h), b = gid / \(c * wd * h);
                __global const real* image = \(pointer(ins[0])) + b * \(oh * ow * c * kh * kw) + ch * \(kh * kw);
                real sum = (real)0;
                \(terms.joined(separator: "\n    "))
                \(pointer(outs[0]))[((b * \(c) + ch) * \(h) + r) * \(wd) + col] = sum;
            }
            """)
            launch(name, bufferArgs + [.int(count)], items: count, local: min(256, maxWorkGroupSize), kernel: index)

        case let .node(.maxPool(w)), let .node(.maxPoolGrad(w)):
            try emitMaxPool(k, window: w, index: index)

        case .node(.transpose), .node(.slice), .node(.pad), .node(.concat):
            emitMovement(k, index: index)

        case .node(.input), .node(.constant), .node(.unary), .node(.binary), .node(.reduce), .node(.matmul), .node(.reshape),
             .node(.broadcastTo), .node(.allReduce):
            throw KilnError.invalidArgument(op: name, message: "\(k.kind) is not a kernel of its own (its fusion class is not .kernel)")
        }
    }
}
