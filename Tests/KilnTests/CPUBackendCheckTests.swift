import Testing
import Kiln
@testable import KilnCPU

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
/// result must equal the plain one whatever the order. With an epilogue the second half's
/// product lies in the workspace after the first's.
@Suite struct SplitOverKTests {
    @Test(arguments: [(false, false, false), (true, false, false), (false, true, false), (true, true, false), (true, false, true)])
    func halvesOfKAddUpToTheProduct(transposeA: Bool, transposeB: Bool, epilogue: Bool) throws {
        let (m, n, k) = (16, 48, 4099)
        let g = Graph()
        let a = try g.placeholder("a", transposeA ? [k, m] : [m, k], .float32)
        let b = try g.placeholder("b", transposeB ? [n, k] : [k, n], .float32)
        let product = try g.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
        let c = epilogue ? try product * 2 - 1 : product
        var rng = SeededGenerator(seed: 3)
        let av = (0..<m * k).map { _ in Float(Int(rng.next() % 5) - 2) }, bv = (0..<k * n).map { _ in Float(Int(rng.next() % 5) - 2) }
        let program = try Compiler.compile(g, fetch: [c], options: CompileOptions(fusion: true, realType: .float32))
        let got = try CPUExecutable<Float>(program: program).run(feeds: [a: try HostTensor(av, shape: a.shape), b: try HostTensor(bv, shape: b.shape)])[0].doubles
        let want = (0..<m * n).map { e -> Double in
            let (i, j) = (e / n, e % n)
            return (0..<k).reduce(0.0) { sum, p in
                sum + Double(av[transposeA ? p * m + i : i * k + p]) * Double(bv[transposeB ? j * k + p : p * n + j])
            }
        }.map { epilogue ? $0 * 2 - 1 : $0 }
        let wrong = zip(got, want).filter { $0 != $1 }.count
        #expect(got.count == want.count && wrong == 0, "\(wrong) of \(want.count) values differ")
    }
}

/// A convolution's unfold and matmul, and its input gradient's matmul and fold, run chunk by
/// chunk of images when the patches are large: the same values to the bit as the kernels run
/// whole, with the bias epilogue in the register blocks and without an epilogue.
@Suite struct ChunkedPairTests {
    /// The program of `fetch` on random `inputs`, run with chunks of at most `chunkBytes` of
    /// patches and run whole: the chunked executable's pairs, and whether every fetched value
    /// has the same bits both ways.
    static func chunkedAndWhole(inputs: [Tensor], fetch: [Tensor], chunkBytes: Int, seed: UInt64) throws
        -> (pairs: [Int: CPUExecutable<Float>.ChunkedPair], sameBits: Bool) {
        var rng = SeededGenerator(seed: seed)
        var feeds: [Tensor: HostTensor] = [:]
        for t in inputs { feeds[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1).map(Float.init), shape: t.shape) }
        let program = try Compiler.compile(fetch[0].graph, fetch: fetch, options: CompileOptions(fusion: true, realType: .float32))
        var small = CPUSettings(), whole = CPUSettings()
        small.chunkBytes = chunkBytes
        whole.chunkBytes = .max
        let chunked = try CPUExecutable<Float>(program: program, settings: small)
        let got = try chunked.run(feeds: feeds), want = try CPUExecutable<Float>(program: program, settings: whole).run(feeds: feeds)
        let same = zip(got, want).allSatisfy { $0.floats.map(\.bitPattern) == $1.floats.map(\.bitPattern) }
        return (chunked.pairs, got.count == want.count && same)
    }

    /// Without a bias the forward product has no epilogue: chunks of 4 images (1024 rows), each
    /// thread's part of a chunk still in the register blocks on two threads (on more, not
    /// chunked: the values must match either way).
    @Test func chunksWithoutBiasGiveTheWholeKernelsValues() throws {
        let (n, c, h, w, out) = (8, 16, 16, 16, 32)
        let g = Graph(), window = try Window2D(3, padding: 1)
        let x = try g.placeholder("x", [n, c, h, w], .float32)
        let weight = try g.placeholder("w", [out, c * 9], .float32)
        let product = try g.unfold(x, window: window).reshaped([n * h * w, c * 9]).matmul(weight, transposeB: true)
        let (pairs, sameBits) = try Self.chunkedAndWhole(inputs: [x, weight], fetch: [product], chunkBytes: 600_000, seed: 7)
        #expect(pairs.count == (WorkerPool.shared.threads <= 2 ? 1 : 0))
        #expect(sameBits)
    }

    @Test func chunksGiveTheWholeKernelsValues() throws {
        let (n, c, h, w, out) = (6, 16, 16, 16, 32)
        let g = Graph(), window = try Window2D(3, padding: 1)
        let x = try g.placeholder("x", [n, c, h, w], .float32)
        let weight = try g.placeholder("w", [out, c * 9], .float32)
        let bias = try g.placeholder("b", [out], .float32)
        let upstream = try g.placeholder("dy", [n * h * w, out], .float32)
        let product = try g.unfold(x, window: window).reshaped([n * h * w, c * 9]).matmul(weight, transposeB: true) + bias
        let folded = try g.fold(try upstream.matmul(weight).reshaped([n, h, w, c, 3, 3]), window: window, height: h, width: w)
        // 2 images of 147 KiB of patches a chunk: 3 chunks of 512 rows.
        let (pairs, sameBits) = try Self.chunkedAndWhole(inputs: [x, weight, bias, upstream], fetch: [product, folded],
                                                         chunkBytes: 300_000, seed: 5)
        #expect(pairs.count == 2 && pairs.values.allSatisfy { $0.chunks.count == 3 })
        #expect(sameBits)
    }

    /// A convolution of channels-last images, differentiated: its unfold and product, and its
    /// input gradient's product and fold (made after the weight gradient, so that it runs
    /// right before the fold) run by chunks, with the whole kernels' values.
    @Test func channelsLastPairsChunk() throws {
        let (n, c, h, w, out) = (6, 16, 16, 16, 32)
        let g = Graph(), window = try Window2D(3, padding: 1).channelsLast(true)
        let x = try g.placeholder("x", [n, h, w, c], .float32)
        let weight = try g.placeholder("w", [out, 9 * c], .float32), bias = try g.placeholder("b", [out], .float32)
        let upstream = try g.placeholder("dy", [n * h * w, out], .float32)
        let product = try g.unfold(x, window: window).reshaped([n * h * w, 9 * c]).matmul(weight, transposeB: true) + bias
        let grads = try g.gradients(of: (product * upstream).sum(), wrt: [x, weight])
        let (pairs, sameBits) = try Self.chunkedAndWhole(inputs: [x, weight, bias, upstream], fetch: [product] + grads,
                                                         chunkBytes: 300_000, seed: 8)
        #expect(pairs.count == 2 && pairs.values.allSatisfy { $0.chunks.count == 3 })
        #expect(sameBits)
    }

    /// Forward only (an evaluation program), the activation that the unfold reads dies with it;
    /// had the planner put the product there, chunks would overwrite images a later chunk still
    /// unfolds (the CPU backend then runs such a pair whole). The planner keeps the unfold's
    /// input in use until the product has run, so the pair runs by chunks, with the whole
    /// kernels' values.
    @Test func unfoldInputStaysApartFromTheProduct() throws {
        let (n, c, h, w, out) = (6, 16, 16, 16, 32)
        let g = Graph(), window = try Window2D(3, padding: 1)
        let x = try g.placeholder("x", [n, c, h, w], .float32)
        let weight = try g.placeholder("w", [out, c * 9], .float32), bias = try g.placeholder("b", [out], .float32)
        // With the bias in the register blocks' epilogue, chunks of 512 rows would be taken.
        let product = try g.unfold(try x.relu(), window: window).reshaped([n * h * w, c * 9]).matmul(weight, transposeB: true) + bias
        let y = try product.reshaped([n, h, w, out]).sum(axes: [1, 2])
        let (pairs, sameBits) = try Self.chunkedAndWhole(inputs: [x, weight, bias], fetch: [y], chunkBytes: 300_000, seed: 6)
        #expect(pairs.count == 1)
        #expect(sameBits)
    }
}
