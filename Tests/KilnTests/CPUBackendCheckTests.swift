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

/// Products with a long k and a small C (a convolution's weight gradient) computed in two
/// halves of k, one per thread, then added: small integers, so every sum is exact and the
/// result must equal the plain one whatever the order.
@Suite struct SplitOverKTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func halvesOfKAddUpToTheProduct(transposeA: Bool, transposeB: Bool) throws {
        let (m, n, k) = (16, 48, 4099)
        let g = Graph()
        let a = try g.placeholder("a", transposeA ? [k, m] : [m, k], .float32)
        let b = try g.placeholder("b", transposeB ? [n, k] : [k, n], .float32)
        let c = try g.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
        var rng = SeededGenerator(seed: 3)
        let av = (0..<m * k).map { _ in Float(Int(rng.next() % 5) - 2) }, bv = (0..<k * n).map { _ in Float(Int(rng.next() % 5) - 2) }
        let program = try Compiler.compile(g, fetch: [c], options: CompileOptions(fusion: true, realType: .float32))
        let got = try CPUExecutable<Float>(program: program).run(feeds: [a: try HostTensor(av, shape: a.shape), b: try HostTensor(bv, shape: b.shape)])[0].doubles
        let want = (0..<m * n).map { e -> Double in
            let (i, j) = (e / n, e % n)
            return (0..<k).reduce(0.0) { sum, p in
                sum + Double(av[transposeA ? p * m + i : i * k + p]) * Double(bv[transposeB ? j * k + p : p * n + j])
            }
        }
        let wrong = zip(got, want).filter { $0 != $1 }.count
        #expect(got.count == want.count && wrong == 0, "\(wrong) of \(want.count) values differ")
    }
}
