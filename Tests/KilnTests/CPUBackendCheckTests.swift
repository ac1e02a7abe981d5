import Testing
import Kiln

/// The CPU backend's own kernels (float32, fused: BLAS, the vectorized passes, pooling written
/// out for windows that tile the plane) against the oracle, as `kiln selftest --device cpu`
/// runs them: every op case and every training step.
@Suite struct CPUBackendCheckTests {
    @Test func everyCaseMatchesTheOracle() {
        for check in DeviceCheck.all {
            let result = check.check(on: .cpu, fusion: nil)
            #expect(result.passed, "\(result.line(width: 70))")
        }
    }
}

/// Sums over the rows of a tall tensor (bias gradients) on the CPU backend's threads: every
/// column added, whether the columns are split between the threads (wide rows), the rows cut
/// into blocks summed apart (many narrow rows, uneven blocks), or neither.
@Suite struct ColumnSumTests {
    @Test(arguments: [(4099, 48), (4099, 24), (4099, 12), (4099, 600), (16411, 32)])
    func everyColumnIsAdded(rows: Int, width: Int) throws {
        let g = Graph()
        let x = try g.placeholder("x", [rows, width], .float32)
        let s = try x.sum(axes: [0])
        var rng = SeededGenerator(seed: 1)
        let v = rng.uniform(rows * width, in: -1...1).map(Float.init)
        let program = try Compiler.compile(g, fetch: [s], options: CompileOptions(fusion: true, realType: .float32))
        let got = try CPUExecutable<Float>(program: program).run(feeds: [x: try HostTensor(v, shape: x.shape)])[0].doubles
        let want = (0..<width).map { c in (0..<rows).reduce(0.0) { $0 + Double(v[$1 * width + c]) } }
        #expect(maxError(got, want) < 1e-3)
    }
}
