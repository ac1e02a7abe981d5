import Testing
@testable import KilnOpenCL
import Kiln

/// Awkward sizes (1, 3, 17, 127, 129, 1000, broadcast axes of size 1) for every kernel family
/// on OpenCL, forward and gradient, against the CPU reference; and device faults.
@Suite struct OpenCLShapesTests {
    /// One graph holding every case, so each configuration builds one program.
    static func awkwardGraph(dtype: DType) throws -> (Graph, [Tensor], [Tensor: HostTensor], [String]) {
        let g = Graph()
        var rng = SeededGenerator(seed: 42)
        var values: [Tensor: HostTensor] = [:]
        var outputs: [(String, Tensor)] = []
        func input(_ name: String, _ shape: Shape, _ range: ClosedRange<Double> = -1...1) throws -> Tensor {
            let t = try g.placeholder(name, shape, dtype)
            let v = rng.uniform(shape.count, in: range)
            values[t] = dtype == .float64 ? try HostTensor(v, shape: shape) : try HostTensor(v.map(Float.init), shape: shape)
            return t
        }
        func ids(_ name: String, _ shape: Shape, below: Int) throws -> Tensor {
            let t = try g.placeholder(name, shape, .int32)
            values[t] = try HostTensor((0..<shape.count).map { _ in Int32.random(in: 0..<Int32(below), using: &rng) }, shape: shape)
            return t
        }
        // N of 64 and 128 fill whole vector panels: B untransposed is then read in place.
        for (m, k, n) in [(1, 1, 1), (3, 17, 1), (17, 3, 129), (127, 129, 3), (129, 127, 17), (1000, 3, 17), (1, 1000, 3),
                          (5, 33, 64), (130, 70, 128)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = try input("A\(m)x\(k)\(ta)", ta ? [k, m] : [m, k]), b = try input("B\(k)x\(n)\(tb)", tb ? [n, k] : [k, n])
                outputs.append(("matmul \(m)x\(k)x\(n) \(ta) \(tb)", try g.matmul(a, b, transposeA: ta, transposeB: tb)))
            }
        }
        // B computed by an earlier kernel, so it lives in the arena at an offset.
        let bArena = try input("Barena", [33, 128]) * 1.5
        outputs.append(("matmul with B in the arena", try g.matmul(try input("Aarena", [7, 33]), bArena)))
        let x1000 = try input("x1000", [1000], 0.1...2)
        for op in UnaryOp.allCases { outputs.append(("\(op) [1000]", try g.unary(op, x1000))) }
        let col = try input("col", [129, 1]), row = try input("row", [1, 127]), s = try input("scalar", [])
        for op in BinaryOp.allCases { outputs.append(("\(op) [129,1]x[1,127]", try g.binary(op, col, row))) }
        outputs.append(("div scalar", try g.binary(.div, x1000, s)))
        let r = try input("r", [17, 129, 3])
        for op in ReduceOp.allCases {
            for axes in [[0], [1], [2], [0, 2], [0, 1, 2]] {
                outputs.append(("\(op) \(axes)", try g.reduce(op, r, axes: axes, keepDims: axes.count == 1)))
            }
        }
        outputs.append(("sum of 1000x3", try (try input("wide", [3, 1000])).sum(axes: [1])))
        outputs.append(("transpose", try r.transposed([2, 0, 1])))
        outputs.append(("broadcastTo", try col.broadcast(to: [3, 129, 127])))
        let table = try input("table", [1000, 17])
        let wordIds = try ids("ids", [129, 5], below: 1000)
        outputs.append(("gather", try g.gather(table, ids: wordIds)))
        let logits = try input("logits", [127, 17], -5...5), labels = try ids("labels", [127], below: 17)
        outputs.append(("softmaxCrossEntropy", try g.softmaxCrossEntropy(logits: logits, labels: labels)))
        outputs.append(("accuracy", try g.accuracy(logits: logits, labels: labels)))
        outputs.append(("argmax", try g.argmax(r, axis: 1)))

        // Gradients of everything differentiable, through a weighted sum of the outputs.
        var loss = try (outputs[0].1 * 1).sum()
        for (name, t) in outputs.dropFirst() where t.dtype != .int32 && !["accuracy", "argmax"].contains(name) && !name.hasPrefix("greater") && !name.hasPrefix("equal") {
            loss = try loss + t.mean() * 0.5
        }
        let wrt = values.keys.filter { $0.dtype != .int32 }.sorted { $0.id < $1.id }
        let grads = try g.gradients(of: loss, wrt: wrt)
        let names = outputs.map(\.0) + wrt.map { "gradient of \($0.node.label)" }
        return (g, outputs.map(\.1) + grads, values, names)
    }

    /// Unfused and fused with the device's matmul family; fused with each family forced, so the
    /// GPU's local-memory kernels are checked on PoCL too.
    @Test(arguments: [(false, nil), (true, "tiled"), (true, "vector")] as [(Bool, String?)])
    func awkwardShapes(fusion: Bool, matmul: String?) throws {
        guard let ctx = OpenCLSupport.context else { return }
        let (g, fetch, values, names) = try Self.awkwardGraph(dtype: .float32)
        let (device, reference) = try openCLAndReference(g, fetch: fetch, values: values, fusion: fusion, context: ctx, matmul: matmul)
        for (name, (d, r)) in zip(names, zip(device, reference)) {
            #expect(d.shape == r.shape, "\(name)")
            #expect(maxError(d.doubles, r.doubles) < 2e-4, "\(name) fusion \(fusion): \(maxError(d.doubles, r.doubles))")
        }
    }

    /// The tiled family with the large GPU tile and an uneven one, at edges and at exact
    /// multiples of the tile (no bounds checks), every transpose, with a bias epilogue.
    @Test(arguments: ["tiled:128x128x16:8x8", "tiled:32x64x8:2x8"])
    func tiles(matmul: String) throws {
        guard let ctx = OpenCLSupport.context else { return }
        let g = Graph()
        var rng = SeededGenerator(seed: 5)
        var values: [Tensor: HostTensor] = [:]
        var fetch: [Tensor] = []
        for (m, k, n) in [(130, 70, 129), (256, 32, 128)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = try g.placeholder("A\(m)\(ta)\(tb)", ta ? [k, m] : [m, k]), b = try g.placeholder("B\(n)\(ta)\(tb)", tb ? [n, k] : [k, n])
                let bias = try g.placeholder("bias\(m)\(ta)\(tb)", [n])
                for t in [a, b, bias] { values[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1).map(Float.init), shape: t.shape) }
                fetch.append(try g.matmul(a, b, transposeA: ta, transposeB: tb) + bias)
            }
        }
        let (device, reference) = try openCLAndReference(g, fetch: fetch, values: values, fusion: true, context: ctx, matmul: matmul)
        for (i, (d, r)) in zip(device, reference).enumerated() {
            #expect(maxError(d.doubles, r.doubles) < 2e-4, "\(matmul) matmul \(i): \(maxError(d.doubles, r.doubles))")
        }
    }

    /// The large tile only where it fits the device's local memory and work-group size (in
    /// float64 it needs 33,024 bytes: over a 32 KiB device); a fixed tile that does not fit is
    /// refused with both figures.
    @Test func tilesFitTheDevice() throws {
        let g = Graph()
        let a = try g.placeholder("a", [512, 512], .float64), b = try g.placeholder("b", [512, 512], .float64)
        let program = try Compiler.compile(g, fetch: [try g.matmul(a, b)], options: CompileOptions(realType: .float64))
        let roomy = try OpenCLCodegen(program: program, matmul: .tiled, localMemoryBytes: 48 << 10, maxWorkGroupSize: 1024)
        #expect(roomy.source.contains("__local real As[16][128 + 1]"))
        let tight = try OpenCLCodegen(program: program, matmul: .tiled, localMemoryBytes: 32 << 10, maxWorkGroupSize: 1024)
        #expect(tight.source.contains("__local real As[16][64 + 1]"))
        do {
            _ = try OpenCLCodegen(program: program, matmul: .tiled, tile: .large, localMemoryBytes: 32 << 10, maxWorkGroupSize: 1024)
            Issue.record("a tile larger than local memory was accepted")
        } catch { #expect("\(error)".contains("33024 bytes") && "\(error)".contains("32768"), "\(error)") }
        #expect(throws: KilnError.self) { try OpenCLCodegen.Tile.parse("128x128x16:3x8") }
    }

    /// A kernel that does not compile gives an error carrying the compiler's build log.
    @Test func brokenKernelReportsBuildLog() throws {
        guard let ctx = OpenCLSupport.context else { return }
        do {
            _ = try CLProgram(ctx, source: "__kernel void broken(__global float* x) { x[0] = undefined_name; }")
            Issue.record("a broken kernel built")
        } catch {
            let m = "\(error)"
            #expect(m.contains("clBuildProgram") && m.contains("CL_BUILD_PROGRAM_FAILURE") && m.contains("undefined_name"), "\(m)")
        }
    }

    /// Asking for more memory than the device has names the bytes asked and available.
    @Test func tooMuchMemoryIsNamed() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let g = Graph()
        let huge = try g.placeholder("huge", [1 << 20, 1 << 16])
        let program = try Compiler.compile(g, fetch: [try huge.exp()])
        do {
            _ = try OpenCLExecutable(program: program, context: ctx)
            Issue.record("a 512 GiB program loaded")
        } catch {
            let m = "\(error)"
            #expect(m.contains("bytes") && m.contains(ctx.device.name), "\(m)")
        }
    }

    /// Ids and labels out of range are refused before upload, naming the op and the value.
    @Test func badIdsAreRefusedOnTheHost() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let m = try ClassifierGraph.wordWindow(batch: 2, vocabulary: 10, dim: 3, hidden: 4, classes: 3)
        let exe = try OpenCLExecutable(program: Compiler.compile(m.graph, fetch: [m.loss]), context: ctx)
        for (t, v) in try m.parameters.initialValues(seed: 1) { try exe.write(t, v) }
        let goodIds = try HostTensor([Int32](repeating: 1, count: 10), shape: [2, 5])
        do {
            _ = try exe.run(feeds: [m.input: try HostTensor([0, 1, 2, 3, 10, 0, 0, 0, 0, 0] as [Int32], shape: [2, 5]),
                                    m.labels: try HostTensor([0, 1] as [Int32], shape: [2])])
            Issue.record("id 10 accepted")
        } catch { #expect("\(error)".contains("id 10") && "\(error)".contains("[0, 10)"), "\(error)") }
        do {
            _ = try exe.run(feeds: [m.input: goodIds, m.labels: try HostTensor([0, 3] as [Int32], shape: [2])])
            Issue.record("label 3 accepted")
        } catch { #expect("\(error)".contains("label 3") && "\(error)".contains("[0, 3)"), "\(error)") }
    }
}
