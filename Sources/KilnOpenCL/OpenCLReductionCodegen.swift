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
    /// `instantiate` fills Kernels/reduce_columns.cl (the parts' sum) with the reduction's
    /// common values.
    mutating func emitReductionPerItem(name: String, params: String, args: [LaunchSpec.Arg], space: ReductionSpace, lane: Int,
                                       f: FusedCode, loads: [Operand], output: Operand, instantiate: (String, [String: String]) -> String,
                                       outputs: Int, kernel: Int) {
        let outer = space.reducedAxes.dropLast()
        let rows = outer.map { space.axes[$0].size }.reduce(1, *), length = space.axes[lane].size
        // Enough work-items to keep every core busy to the end (rows split into parts).
        let parts = min(rows, max(1, (256 + outputs - 1) / outputs)), chunk = (rows + parts - 1) / parts
        // A load at lane coordinate `c<lane>`: its row's start as a pointer offset, the lane's step as the index.
        let (body, values) = statements(f, loads: loads, gid: "gid", at: { j in
            (space.index(operand: j + 1, excluding: lane), space.index(operand: j + 1, axes: [lane]))
        })
        let step = { (u: String) in "{ const int c\(lane) = \(u); real v; \(body) v = \(values[0]); ACC = COMBINE(ACC, v); }" }
        let unrolled = (0..<8).map { step("e + \($0)").replacingOccurrences(of: "ACC", with: "acc\($0)") }.joined(separator: "\n            ")
        let tail = step("e").replacingOccurrences(of: "ACC", with: "acc0")
        let store = parts == 1 ? "$STORE" : "partials[g] = result;"
        var text = """
        __kernel void $NAME($PARAMS\(parts == 1 ? "" : "__global real* partials, ")int items) {
            const int g = get_global_id(0);
            if (g >= items) return;
            const int o = g / \(parts), part = g % \(parts);
            $KEPT
            real acc0 = $IDENTITY, acc1 = acc0, acc2 = acc0, acc3 = acc0, acc4 = acc0, acc5 = acc0, acc6 = acc0, acc7 = acc0;
            for (int row = part * \(chunk); row < min((part + 1) * \(chunk), \(rows)); row++) {
                \(space.coordinates(of: Array(outer), flat: "row"))
                int e = 0;
                for (; e + 8 <= \(length); e += 8) {
                    \(unrolled)
                }
                for (; e < \(length); e++) \(tail)
            }
            const real result = COMBINE(COMBINE(COMBINE(acc0, acc1), COMBINE(acc2, acc3)), COMBINE(COMBINE(acc4, acc5), COMBINE(acc6, acc7)))\(parts == 1 ? "$FINISH" : "");
            \(store)
        }
        """
        text = instantiate(text, [:])
        text = text.replacingOccurrences(of: "COMBINE", with: instantiate("$COMBINE", [:]))
        generated.append(text)
        if parts == 1 {
            launch(name, args + [.int(outputs)], items: outputs, local: 1, kernel: kernel)
            return
        }
        let partials = scratch(bytes: parts * outputs * realSize)
        generated.append(instantiate(KernelSources.reduceColumns, [
            "$NAME": name + "_parts", "$PARAMS": "__global real* partials, \(params)",
            "$KEPT": "", "$LOOPS": "for (int p = 0; p < \(parts); p++)", "$COORDS": "",
            "$PROLOGUE": "v = partials[o * \(parts) + p];",
        ]))
        launch(name, args + [.scratch(partials), .int(parts * outputs)], items: parts * outputs, local: 1, kernel: kernel)
        launch(name + "_parts", [.scratch(partials)] + args + [.int(outputs)], items: outputs, local: 64, kernel: kernel)
    }
}
