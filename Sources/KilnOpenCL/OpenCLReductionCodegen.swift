import KilnCompiler
import KilnGraph
import KilnKernels

extension OpenCLCodegen {
    /// A reduction for devices whose work-items are a CPU core's threads (the vector matmul
    /// family's devices): a work-item per output and part of its elements, walking the innermost
    /// reduced axis with eight accumulators, then a work-item per output summing its parts in
    /// order. Batch norm's sum over `[128, 32, 28, 28]` took PoCL 3.4 ms as work-groups sharing
    /// the contiguous axis (a work-item's loop is not vectorized across work-items) and 0.27 ms
    /// this way (`scripts/pocl_kernel_forms.py`).
    ///
    /// Several results (reductions sharing a pass) each get their accumulators, partials and
    /// parts' sum. `instantiate` fills Kernels/reduce_columns.cl (the parts' sum) with the
    /// reduction's common values; `finish` turns a combined value into the result.
    mutating func emitReductionPerItem(name: String, params: String, args: [LaunchSpec.Arg], op: ReduceOp, space: ReductionSpace, lane: Int,
                                       f: FusedCode, loads: [Operand], outputs outs: [Operand], finish: String,
                                       instantiate: (String, [String: String]) -> String, outputs: Int, kernel: Int) {
        let outer = space.reducedAxes.dropLast(), results = f.results.indices
        let rows = outer.map { space.axes[$0].size }.reduce(1, *), length = space.axes[lane].size
        // Enough work-items to keep every core busy to the end (rows split into parts).
        let parts = min(rows, max(1, (256 + outputs - 1) / outputs)), chunk = (rows + parts - 1) / parts
        let items = parts * outputs
        let store = perItemStores(outs, finish: finish, parts: parts, items: items)
        // Sums and means (a max keeps the scalar form).
        if op != .max, let text = vectorPerItem(space: space, lane: lane, f: f, loads: loads, store: store, parts: parts, chunk: chunk) {
            generated.append(instantiate(text, [:]))
            emitPartsSums(name: name, params: params, args: args, outputs: outs, parts: parts, items: items, count: outputs,
                          instantiate: instantiate, kernel: kernel)
            return
        }
        // A load at lane coordinate `c<lane>`: its row's start as a pointer offset, the lane's step as the index.
        let (body, values) = statements(f, loads: loads, gid: "gid", at: { j in
            (space.index(operand: j + 1, excluding: lane), space.index(operand: j + 1, axes: [lane]))
        })
        // Eight accumulators per result (`acc<result>_<j>`); several results share each load.
        let step = { (u: String, j: Int) in
            "{ const int c\(lane) = \(u); \(body) " + results.map { "acc\($0)_\(j) = COMBINE(acc\($0)_\(j), \(values[$0]));" }.joined(separator: " ") + " }"
        }
        let unrolled = (0..<8).map { step("e + \($0)", $0) }.joined(separator: "\n            ")
        let declarations = results.map { r in
            "real acc\(r)_0 = $IDENTITY" + (1..<8).map { ", acc\(r)_\($0) = acc\(r)_0" }.joined() + ";"
        }.joined(separator: "\n    ")
        let combined = results.map { r in
            let a = (0..<8).map { "acc\(r)_\($0)" }
            return "const real result\(r) = COMBINE(COMBINE(COMBINE(\(a[0]), \(a[1])), COMBINE(\(a[2]), \(a[3]))), COMBINE(COMBINE(\(a[4]), \(a[5])), COMBINE(\(a[6]), \(a[7]))));"
        }.joined(separator: "\n    ")
        var text = """
        __kernel void $NAME($PARAMS\(parts == 1 ? "" : "__global real* partials, ")int items) {
            const int g = get_global_id(0);
            if (g >= items) return;
            const int o = g / \(parts), part = g % \(parts);
            $KEPT
            \(declarations)
            for (int row = part * \(chunk); row < min((part + 1) * \(chunk), \(rows)); row++) {
                \(space.coordinates(of: Array(outer), flat: "row"))
                int e = 0;
                for (; e + 8 <= \(length); e += 8) {
                    \(unrolled)
                }
                for (; e < \(length); e++) \(step("e", 0))
            }
            \(combined)
            \(store)
        }
        """
        text = instantiate(text, [:])
        text = text.replacingOccurrences(of: "COMBINE", with: instantiate("$COMBINE", [:]))
        generated.append(text)
        emitPartsSums(name: name, params: params, args: args, outputs: outs, parts: parts, items: items, count: outputs,
                      instantiate: instantiate, kernel: kernel)
    }

    /// Where the per-item forms put each result: in its output, finished, or where the rows were
    /// split into parts, in the partials (result by result, output by output, part by part).
    private func perItemStores(_ outs: [Operand], finish: String, parts: Int, items: Int) -> String {
        outs.indices.map { r in
            parts == 1 ? "\(pointer(outs[r]))[o] = result\(r)\(finish);" : "partials[\(r * items) + g] = result\(r);"
        }.joined(separator: " ")
    }

    /// The per-item reduction's launch, and where its rows were split into parts, each result's
    /// sum of its parts in order (the partials: result by result, output by output, part by part).
    /// `workItems`: the first kernel's, where they are not `items` (the columns' form's blocks).
    private mutating func emitPartsSums(name: String, params: String, args: [LaunchSpec.Arg], outputs outs: [Operand], parts: Int,
                                        items: Int, count outputs: Int, instantiate: (String, [String: String]) -> String, kernel: Int,
                                        workItems: Int? = nil) {
        if parts == 1 && workItems == nil {
            launch(name, args + [.int(outputs)], items: outputs, local: 1, kernel: kernel)
            return
        }
        let partials = scratch(bytes: outs.count * items * realSize)
        launch(name, args + [.scratch(partials), .int(workItems ?? items)], items: workItems ?? items, local: 1, kernel: kernel)
        for r in outs.indices {
            let sum = name + "_parts" + (r == 0 ? "" : "\(r)")
            generated.append(instantiate(KernelSources.reduceColumns, [
                "$NAME": sum, "$PARAMS": "__global real* partials, \(params)",
                "$KEPT": "", "$LOOPS": "for (int p = 0; p < \(parts); p++)", "$COORDS": "",
                "$PROLOGUE": "v = partials[\(r * items) + o * \(parts) + p];", "$STORE": "\(pointer(outs[r]))[o] = result;",
            ]))
            launch(sum, [.scratch(partials)] + args + [.int(outputs)], items: outputs, local: 64, kernel: kernel)
        }
    }

    /// Sums or means over leading axes of computed values with few outputs (channels-last batch
    /// norm's per-channel sums, `[N·H·W, C]` columns) on CPU devices: a work-item takes up to 4
    /// blocks of `w` neighbouring columns and a part of the rows, its prologue in vectors of `w` (vector
    /// loads along the columns, one value where a load stays), then each output's parts are
    /// added in order. Results sharing the pass each get their accumulators. nil where the space
    /// is not rows by columns, the columns are not a multiple of 4, or the prologue is not
    /// arithmetic (a work-item per column and part, with a reduction at a time, ran at 13 GB/s).
    mutating func emitColumnsVector(name: String, params: String, args: [LaunchSpec.Arg], op: ReduceOp, space: ReductionSpace,
                                    f: FusedCode, loads: [Operand], outputs outs: [Operand],
                                    instantiate: (String, [String: String]) -> String, kernel: Int) -> Bool {
        guard cpuForms, op != .max, space.axes.count == 2, space.axes[0].reduced, !space.axes[1].reduced else { return false }
        let (rows, columns) = (space.axes[0].size, space.axes[1].size)
        guard let w = [16, 8, 4].first(where: { columns % $0 == 0 }) else { return false }
        let vector = "float\(w)", blocks = columns / w
        // A work-item takes every block of a row where there are at most 4 (each row's lines
        // read by one work-item: two work-items on halves of each line ran at 24 GB/s).
        let span = blocks <= 4 ? blocks : 1, groups = blocks / span
        var body: [String] = []
        for s in 0..<span {
            // The prologue for the block at `group * span + s`, its values suffixed `_s`.
            let lines = vectorStatements(f, vector: vector, suffix: "_\(s)") { j -> (String, Bool)? in
                let (down, across) = (space.axes[0].strides[j + 1], space.axes[1].strides[j + 1])
                guard across == 0 || across == 1 else { return nil }
                let at = down == 0 ? "" : " + r * \(down)"
                return across == 1 ? ("vload\(w)(0, \(pointer(loads[j])) + (group * \(span) + \(s)) * \(w)\(at))", true)
                                   : ("\(pointer(loads[j]))[0\(at)]", false)
            }
            guard let lines else { return false }
            body += lines + f.results.indices.map { "acc\($0)_\(s) += v\(f.results[$0])_\(s);" }
        }
        // Enough work-items to keep every core busy to the end; parts of at least 64 rows.
        let parts = max(1, min((256 + groups - 1) / groups, rows / 64)), chunk = (rows + parts - 1) / parts
        let results = f.results.indices, items = parts * columns
        let stores = results.flatMap { r in
            (0..<span).flatMap { s in
                (0..<w).map { "partials[\(r * items) + ((group * \(span) + \(s)) * \(w) + \($0)) * \(parts) + part] = acc\(r)_\(s)[\($0)];" }
            }
        }.joined(separator: " ")
        generated.append(instantiate("""
        __kernel void $NAME($PARAMS__global real* partials, int items) {
            const int g = get_global_id(0);
            if (g >= items) return;
            const int part = g / \(groups), group = g % \(groups);
            \(results.flatMap { r in (0..<span).map { "\(vector) acc\(r)_\($0) = (\(vector))(0);" } }.joined(separator: " "))
            for (int r = part * \(chunk); r < min((part + 1) * \(chunk), \(rows)); r++) {
                \(body.joined(separator: " "))
            }
            \(stores)
        }
        """, [:]))
        emitPartsSums(name: name, params: params, args: args, outputs: outs, parts: parts, items: items, count: columns,
                      instantiate: instantiate, kernel: kernel, workItems: parts * groups)
        return true
    }

    /// The per-item form of a sum or mean with vector registers: a work-item walks the lane
    /// `width` elements at a time (vector loads where a load advances along it, one value where
    /// it stays), in two accumulators per result, then adds the lanes. For float32 programs on
    /// CPU devices, prologues of arithmetic alone, and lanes a multiple of 4 long; else nil.
    /// Batch norm's sums: 8 scalar accumulators ran at 16-18 GB/s on PoCL.
    private func vectorPerItem(space: ReductionSpace, lane: Int, f: FusedCode, loads: [Operand], store: String, parts: Int,
                               chunk: Int) -> String? {
        let length = space.axes[lane].size
        guard cpuForms, let w = [16, 8, 4].first(where: { length % $0 == 0 }) else { return nil }
        let vector = "float\(w)"
        let statements = vectorStatements(f, vector: vector, suffix: "") { j -> (String, Bool)? in
            let step = space.axes[lane].strides[j + 1]
            let row = pointer(loads[j], plus: space.index(operand: j + 1, excluding: lane))
            guard step == 0 || step == 1 else { return nil }
            return step == 1 ? ("vload\(w)(0, \(row) + c\(lane))", true) : ("\(row)[0]", false)
        }
        guard let lines = statements else { return nil }
        let body = lines.joined(separator: " "), results = f.results.indices
        let step = { (u: String, j: Int) in
            "{ const int c\(lane) = \(u); \(body) " + results.map { "acc\($0)_\(j) += v\(f.results[$0]);" }.joined(separator: " ") + " }"
        }
        let lanes = { (v: String) in
            w == 16 ? "sum8(\(v).lo + \(v).hi)" : w == 8 ? "sum8(\(v))" : "((\(v).x + \(v).y) + (\(v).z + \(v).w))"
        }
        let outer = Array(space.reducedAxes.dropLast()), rows = outer.map { space.axes[$0].size }.reduce(1, *)
        return """
        __kernel void $NAME($PARAMS\(parts == 1 ? "" : "__global real* partials, ")int items) {
            const int g = get_global_id(0);
            if (g >= items) return;
            const int o = g / \(parts), part = g % \(parts);
            $KEPT
            \(results.map { "\(vector) acc\($0)_0 = (\(vector))(0), acc\($0)_1 = acc\($0)_0;" }.joined(separator: " "))
            for (int row = part * \(chunk); row < min((part + 1) * \(chunk), \(rows)); row++) {
                \(space.coordinates(of: outer, flat: "row"))
                int e = 0;
                for (; e + \(2 * w) <= \(length); e += \(2 * w)) {
                    \(step("e", 0))
                    \(step("e + \(w)", 1))
                }
                for (; e < \(length); e += \(w)) \(step("e", 0))
            }
            \(results.map { "const \(vector) s\($0) = acc\($0)_0 + acc\($0)_1; const real result\($0) = \(lanes("s\($0)"));" }.joined(separator: " "))
            \(store)
        }
        """
    }

    /// An arithmetic prologue as OpenCL statements over vectors (`vector`) where a value varies
    /// along the vector and scalars where it does not: value i is `v<i><suffix>`; `load(j)` gives
    /// load j's expression and whether it is a vector. nil where an instruction or a load has no
    /// such form.
    private func vectorStatements(_ f: FusedCode, vector: String, suffix: String, load: (Int) -> (String, Bool)?) -> [String]? {
        var lines: [String] = [], wide: [Bool] = []
        for (i, instr) in f.code.enumerated() {
            let rhs: String, isWide: Bool
            switch instr {
            case .load(let j):
                guard let l = load(j) else { return nil }
                (rhs, isWide) = l
            case .constant(let c): (rhs, isWide) = (Self.literal(c), false)
            case .unary(.neg, let a): (rhs, isWide) = ("-v\(a)\(suffix)", wide[a])
            case let .binary(op, a, b):
                let infix: [BinaryOp: String] = [.add: "+", .sub: "-", .mul: "*", .div: "/"]
                guard let o = infix[op] else { return nil }
                (rhs, isWide) = ("v\(a)\(suffix) \(o) v\(b)\(suffix)", wide[a] || wide[b])
            case .unary, .accumulator: return nil
            }
            wide.append(isWide)
            lines.append("const \(isWide ? vector : "real") v\(i)\(suffix) = \(rhs);")
        }
        return lines
    }
}
