import Testing
@testable import KilnCPU
import KilnCompiler
import Kiln

/// Seeded random chains of elementwise ops (with broadcasting and fan-out), fused against
/// unfused on both backends, forward and gradient.
@Suite struct FusionTests {
    static func randomChains(count: Int, seed: UInt64, dtype: DType) throws -> (Graph, [Tensor], [Tensor: HostTensor]) {
        var rng = SeededGenerator(seed: seed)
        let g = Graph()
        var values: [Tensor: HostTensor] = [:]
        var fetch: [Tensor] = []
        let shapes: [Shape] = [[4, 5], [1, 5], [4, 1], [], [3, 4, 5], [5]]
        let safeUnary: [UnaryOp] = [.neg, .exp, .tanh, .sigmoid, .relu]
        var inputs: [Tensor] = []
        for c in 0..<count {
            var pool: [Tensor] = []
            for i in 0..<3 {
                let shape = shapes[Int.random(in: 0..<shapes.count, using: &rng)]
                let t = try g.placeholder("c\(c)x\(i)", shape, dtype)
                let v = rng.uniform(shape.count, in: -1...1)
                values[t] = dtype == .float64 ? try HostTensor(v, shape: shape) : try HostTensor(v.map(Float.init), shape: shape)
                pool.append(t)
                inputs.append(t)
            }
            for _ in 0..<Int.random(in: 3...8, using: &rng) {
                let a = pool[Int.random(in: 0..<pool.count, using: &rng)]
                if Bool.random(using: &rng) {
                    pool.append(try g.unary(safeUnary[Int.random(in: 0..<safeUnary.count, using: &rng)], a))
                } else {
                    let b = pool[Int.random(in: 0..<pool.count, using: &rng)]   // may be a again: fan-out
                    let ops: [BinaryOp] = [.add, .sub, .mul, .maximum, .minimum]
                    pool.append(try g.binary(ops[Int.random(in: 0..<ops.count, using: &rng)], a, b))
                }
            }
            fetch.append(pool.last!)
        }
        var loss = try fetch[0].sum()
        for t in fetch.dropFirst() { loss = try loss + t.sum() }
        return (g, fetch + (try g.gradients(of: loss, wrt: inputs)), values)
    }

    @Test func chainsOnCPU() throws {
        let (g, fetch, values) = try Self.randomChains(count: 30, seed: 9, dtype: .float64)
        let fused = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: true, realType: .float64))
        let unfused = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: false, realType: .float64))
        #expect(fused.kernels.count < unfused.kernels.count / 2)
        let a = try CPUExecutable<Double>(program: fused).run(feeds: values)
        let b = try CPUExecutable<Double>(program: unfused).run(feeds: values)
        for (i, (x, y)) in zip(a, b).enumerated() { #expect(maxError(x.doubles, y.doubles) < 1e-12, "fetch \(i)") }
    }

    @Test func chainsOnOpenCL() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let (g, fetch, values) = try Self.randomChains(count: 30, seed: 9, dtype: .float32)
        let (device, reference) = try openCLAndReference(g, fetch: fetch, values: values, fusion: true, context: ctx)
        for (i, (x, y)) in zip(device, reference).enumerated() { #expect(maxError(x.doubles, y.doubles) < 1e-4, "fetch \(i)") }
    }

    /// Batch norm's centered values, read by the variance's kernel and the normalization's:
    /// computed in both instead of stored (one kernel fewer), or stored with recomputation off,
    /// and the same results either way.
    @Test func cheapValuesAreComputedWhereTheyAreRead() throws {
        let g = Graph()
        let x = try g.placeholder("x", [4, 3, 5, 5], .float64)
        let mean = try x.mean(axes: [0, 2, 3], keepDims: true)
        let centered = try x - mean
        let variance = try (centered * centered).mean(axes: [0, 2, 3], keepDims: true)
        let y = try (centered / (variance + 1e-5).sqrt()).relu()
        let on = try Compiler.compile(g, fetch: [y, variance], options: CompileOptions(fusion: true, realType: .float64))
        let off = try Compiler.compile(g, fetch: [y, variance], options: CompileOptions(fusion: true, realType: .float64, recompute: false))
        #expect(on.kernels.count == off.kernels.count - 1, "\(on.listing())\n\(off.listing())")
        var rng = SeededGenerator(seed: 3)
        let values = [x: try HostTensor(rng.uniform(x.shape.count, in: -2...3), shape: x.shape)]
        let a = try CPUExecutable<Double>(program: on).run(feeds: values)
        let b = try CPUExecutable<Double>(program: off).run(feeds: values)
        for (i, (u, v)) in zip(a, b).enumerated() { #expect(maxError(u.doubles, v.doubles) < 1e-12, "fetch \(i)") }
    }
    /// Batch norm's gradient sums: three reductions of one space, none reading another, share
    /// one kernel; a fourth that reads one of them's result does not join it. The same results
    /// as unfused on the CPU backend and, where OpenCL exists, in both reduction forms
    /// (a work-item per part of an output; a work-group per output with the tiled family).
    @Test func reductionsOfOneSpaceShareAPass() throws {
        func build(_ dtype: DType) throws -> (Graph, [Tensor], [Tensor: HostTensor]) {
            let g = Graph()
            let x = try g.placeholder("x", [4, 3, 9, 10], dtype), dy = try g.placeholder("dy", [4, 3, 9, 10], dtype)
            let axes = [0, 2, 3]
            let centered = try x - x.mean(axes: axes, keepDims: true)
            let s1 = try dy.sum(axes: axes, keepDims: true)
            let s2 = try (dy * centered).sum(axes: axes, keepDims: true)
            let s3 = try (centered * centered).sum(axes: axes, keepDims: true)
            let s4 = try (dy * s1 - centered).sum(axes: axes, keepDims: true)
            let dx = try dy - centered * s2 / (s3 + 1) - s4
            var rng = SeededGenerator(seed: 5)
            func host(_ v: [Double], _ shape: Shape) throws -> HostTensor {
                dtype == .float64 ? try HostTensor(v, shape: shape) : try HostTensor(v.map(Float.init), shape: shape)
            }
            let values = [x: try host(rng.uniform(x.shape.count, in: -2...3), x.shape), dy: try host(rng.uniform(dy.shape.count, in: -1...1), dy.shape)]
            return (g, [dx, s1, s2, s3, s4], values)
        }
        try expectSharedPasses([3], build)
    }
    /// Compiles `build`'s graph (Double, then float32) with fusion: shared reduction passes of
    /// `counts` results, and the same values as unfused on the CPU backend and on OpenCL (both
    /// matmul families).
    func expectSharedPasses(_ counts: [Int], _ build: (DType) throws -> (Graph, [Tensor], [Tensor: HostTensor])) throws {
        let (g, fetch, values) = try build(.float64)
        let all = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: true, realType: .float64))
        let shared = all.kernels.filter { if case .reduce(_, _, let f) = $0.kind { return f.results.count > 1 }; return false }
        #expect(shared.map(\.outputs.count) == counts, "\(all.listing())")
        let unfused = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: false, realType: .float64))
        let a = try CPUExecutable<Double>(program: all).run(feeds: values)
        let b = try CPUExecutable<Double>(program: unfused).run(feeds: values)
        for (i, (u, v)) in zip(a, b).enumerated() { #expect(maxError(u.doubles, v.doubles) < 1e-12, "fetch \(i)") }
        guard let ctx = OpenCLSupport.context else { return }
        let (g32, fetch32, values32) = try build(.float32)
        for family in [nil, "tiled"] {
            let (device, reference) = try openCLAndReference(g32, fetch: fetch32, values: values32, fusion: true, context: ctx, matmul: family)
            for (i, (x, y)) in zip(device, reference).enumerated() {
                #expect(maxError(x.doubles, y.doubles) < 1e-4, "\(family ?? "default") family, fetch \(i)")
            }
        }
    }

    /// A reduction made after another's reader joins that one's pass when everything it reads
    /// is computed before the pass (batch norm's gradient: the upstream's sum is made after the
    /// variance's path reads the other sums): one pass, the same values as unfused, on both
    /// backends.
    @Test func laterReductionsJoinAnEarlierPass() throws {
        func build(_ dtype: DType) throws -> (Graph, [Tensor], [Tensor: HostTensor]) {
            let g = Graph()
            let x = try g.placeholder("x", [4, 3, 5, 6], dtype), dy = try g.placeholder("dy", [4, 3, 5, 6], dtype)
            let axes = [0, 2, 3]
            let s1 = try (dy * x).sum(axes: axes, keepDims: true)
            let twice = try s1 * 2                         // a kernel that reads s1, made before s2
            let s2 = try (-dy).sum(axes: axes, keepDims: true)
            var rng = SeededGenerator(seed: 6)
            func host(_ v: [Double], _ shape: Shape) throws -> HostTensor {
                dtype == .float64 ? try HostTensor(v, shape: shape) : try HostTensor(v.map(Float.init), shape: shape)
            }
            let values = [x: try host(rng.uniform(x.shape.count, in: -2...3), x.shape), dy: try host(rng.uniform(dy.shape.count, in: -1...1), dy.shape)]
            return (g, [try x * twice + s2, twice], values)
        }
        try expectSharedPasses([2], build)
    }

    /// Per-channel sums of computed values on the CPU backend, added run by run as they are
    /// computed (several runs a block, outputs split between threads): the same bits as summing
    /// the stored values (fusion off), shared or not.
    @Test func sumsOverRunsMatchTheStoredValues() throws {
        let g = Graph()
        let x = try g.placeholder("x", [64, 12, 30, 30], .float32), dy = try g.placeholder("dy", [64, 12, 30, 30], .float32)
        let axes = [0, 2, 3]
        // The last: one value for every element (a scalar broadcast), filled in before it is added.
        let s = try g.placeholder("s", [], .float32)
        let fetch = [try (x * dy).sum(axes: axes), try (x - dy).sum(axes: axes), try (x * x).mean(axes: axes),
                     try (-dy).sum(axes: axes, keepDims: true), try (s * 2).broadcast(to: x.shape).sum(axes: axes)]
        var rng = SeededGenerator(seed: 3)
        let values = [x: try HostTensor(rng.uniform(x.shape.count, in: -2...3).map(Float.init), shape: x.shape),
                      dy: try HostTensor(rng.uniform(dy.shape.count, in: -1...1).map(Float.init), shape: dy.shape),
                      s: try HostTensor([Float(0.3)], shape: [])]
        let fused = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: true, realType: .float32))
        #expect(fused.kernels.contains { if case .reduce(_, _, let f) = $0.kind { return f.results.count > 1 }; return false })
        let unfused = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: false, realType: .float32))
        let a = try CPUExecutable<Float>(program: fused).run(feeds: values)
        let b = try CPUExecutable<Float>(program: unfused).run(feeds: values)
        for (i, (u, v)) in zip(a, b).enumerated() {
            #expect(u.floats.map(\.bitPattern) == v.floats.map(\.bitPattern), "fetch \(i): \(maxError(u.doubles, v.doubles))")
        }
    }

    /// Epilogues of a bias and ReLU on the CPU backend, applied as the register blocks store C:
    /// the same bits as the product, the add and the ReLU as kernels of their own; a ReLU before
    /// the bias is not that chain and keeps the evaluator.
    @Test func biasAndReLUEpiloguesMatchTheirKernels() throws {
        let g = Graph()
        let x = try g.placeholder("x", [96, 40], .float32), w = try g.placeholder("w", [40, 48], .float32)
        let bias = try g.placeholder("bias", [48], .float32)
        let product = try g.matmul(x, w)
        let fetch = [try (product + bias).relu(), try product + bias, try product.relu(), try product.relu() + bias]
        var rng = SeededGenerator(seed: 5)
        let values = [x: try HostTensor(rng.uniform(x.shape.count, in: -1...1).map(Float.init), shape: x.shape),
                      w: try HostTensor(rng.uniform(w.shape.count, in: -1...1).map(Float.init), shape: w.shape),
                      bias: try HostTensor(rng.uniform(48, in: -1...1).map(Float.init), shape: [48])]
        for f in fetch {
            let fused = try Compiler.compile(g, fetch: [f], options: CompileOptions(fusion: true, realType: .float32))
            #expect(fused.kernels.count == 1)
            let unfused = try Compiler.compile(g, fetch: [f], options: CompileOptions(fusion: false, realType: .float32))
            let a = try CPUExecutable<Float>(program: fused).run(feeds: values)[0]
            let b = try CPUExecutable<Float>(program: unfused).run(feeds: values)[0]
            #expect(a.floats.map(\.bitPattern) == b.floats.map(\.bitPattern), "\(f): \(maxError(a.doubles, b.doubles))")
        }
        // Which of them are the chain: bias then ReLU, bias, ReLU; not ReLU then bias.
        let forms = try fetch.map { f -> Bool in
            let program = try Compiler.compile(g, fetch: [f], options: CompileOptions(fusion: true, realType: .float32))
            return program.kernels.contains {
                guard case let .matmul(_, _, .some(code)) = $0.kind else { return false }
                return CPUStep<Float>.biasAndReLU(code, loads: $0.inputs.map(\.shape), columns: 48) != nil
            }
        }
        #expect(forms == [true, true, true, false])
        // Code the compiler does not make today, read as written: a ReLU of the product alone,
        // beside an unused sum, is not the chain; the add's operands in either order are.
        let loads: [Shape] = [[4, 8], [8, 16], [16]]
        func code(_ c: [Instr]) -> FusedCode { FusedCode(shape: [4, 16], code: c, results: [c.count - 1], nodes: c.map { _ in nil }) }
        #expect(CPUStep<Float>.biasAndReLU(code([.accumulator, .load(2), .binary(.add, 0, 1), .unary(.relu, 0)]), loads: loads, columns: 16) == nil)
        #expect(CPUStep<Float>.biasAndReLU(code([.accumulator, .load(2), .binary(.add, 1, 0), .unary(.relu, 2)]), loads: loads, columns: 16)
            .map { $0.bias == 2 && $0.relu } == true)
        #expect(CPUStep<Float>.biasAndReLU(code([.accumulator, .load(0), .binary(.add, 0, 1)]), loads: loads, columns: 16) == nil)
    }

    /// Shared reductions in the forms that take them one at a time (sums over rows: the column
    /// form; few elements per output: a work-item per output): the same values.
    @Test func sharedReductionsInOtherFormsRunApart() throws {
        let g = Graph()
        let a = try g.placeholder("a", [2000, 24], .float32), b = try g.placeholder("b", [2000, 24], .float32)
        let c = try g.placeholder("c", [300, 5], .float32), d = try g.placeholder("d", [300, 5], .float32)
        let fetch = [try (a * 2).sum(axes: [0]), try (b - 1).sum(axes: [0]), try c.sum(axes: [1]), try (d * d).sum(axes: [1])]
        var rng = SeededGenerator(seed: 8)
        var values: [Tensor: HostTensor] = [:]
        for x in [a, b, c, d] { values[x] = try HostTensor(rng.uniform(x.shape.count, in: -1...1).map(Float.init), shape: x.shape) }
        let program = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: true, realType: .float32))
        let shared = program.kernels.filter { if case .reduce(_, _, let f) = $0.kind { return f.results.count > 1 }; return false }
        #expect(shared.map(\.outputs.count) == [2, 2], "\(program.listing())")
        guard let ctx = OpenCLSupport.context else { return }
        for family in [nil, "tiled"] {
            let (device, reference) = try openCLAndReference(g, fetch: fetch, values: values, fusion: true, context: ctx, matmul: family)
            for (i, (x, y)) in zip(device, reference).enumerated() {
                #expect(maxError(x.doubles, y.doubles) < 1e-4, "\(family ?? "default") family, fetch \(i)")
            }
        }
    }
}
