import Testing
@testable import KilnOpenCL
import Kiln

/// Every op case of the catalogue (`OpCases.parity`: awkward sizes, forward and gradient) on
/// OpenCL against the oracle, and the tiled family's tiles and device limits.
@Suite struct OpenCLShapesTests {
    /// Fused with the tiled (GPU) family: every case. Fused with the vector family: the cases
    /// with matmuls (their other kernels are the same as the tiled run's). Unfused: the cases
    /// without (an unfused matmul is the kernel the matmul cases' fetched products already
    /// run). Each run builds one program for all its cases.
    @Test(arguments: [(true, "tiled", nil), (true, "vector", true), (false, nil, false)] as [(Bool, String?, Bool?)])
    func parityCases(fusion: Bool, matmul: String?, withMatmul: Bool?) throws {
        guard let ctx = OpenCLSupport.context else { return }
        let cases = try OpCases.parity.filter { c in try withMatmul.map { try c.kinds().contains(.matmul) == $0 } ?? true }
        let pairs = try CaseGraph(cases).compare(fusion: fusion) {
            try OpenCLExecutable(program: $0, context: ctx, matmul: matmul)
        }
        for p in pairs {
            let (_, rel) = DeviceCheck.errors(p.device, p.oracle)
            #expect(rel < DeviceCheck.opTolerance, "\(p.label) fusion \(fusion) \(matmul ?? "default"): \(rel)")
        }
    }

    /// The vector family with its second register block (`MatmulTuner.wideBlock`, 64 columns):
    /// the cases with matmuls, whose sizes leave partial blocks and panels.
    @Test func wideVectorBlock() throws {
        guard let ctx = OpenCLSupport.context else { return }
        var options = try OpenCLOptions.fromEnvironment()
        options.matmul = .vector
        options.vectorBlock = try .init(rows: MatmulTuner.wideBlock.rows, vectors: MatmulTuner.wideBlock.vectors)
        let cases = try OpCases.parity.filter { try $0.kinds().contains(.matmul) }
        let pairs = try CaseGraph(cases).compare(fusion: true) {
            try OpenCLExecutable(program: $0, context: ctx, options: options)
        }
        for p in pairs {
            let (_, rel) = DeviceCheck.errors(p.device, p.oracle)
            #expect(rel < DeviceCheck.opTolerance, "\(p.label) vector:6x4: \(rel)")
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
