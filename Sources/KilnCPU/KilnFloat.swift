import CVectorMath
import COpenBLAS
import Foundation

/// The float types the CPU backend computes in: the math it needs, for Float and Double.
public protocol KilnFloat: BinaryFloatingPoint, SIMDScalar, Codable, Sendable {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    static func squareRoot(_ x: Self) -> Self
    /// `r[i] = tanh(x[i])` for `count` elements (Float: a vectorizable rational approximation
    /// within 4e-7 of tanh; Double: the C library's).
    static func tanh(_ x: UnsafePointer<Self>, into r: UnsafeMutablePointer<Self>, count: Int)
    /// `r[i] = exp(x[i])` for `count` elements (Float: a vectorizable polynomial within 2 ulp
    /// of exp; Double: the C library's). `r` may be `x`.
    static func exp(_ x: UnsafePointer<Self>, into r: UnsafeMutablePointer<Self>, count: Int)
    /// C = op(A) · op(B) for row-major A (`lda` columns), B (`ldb` columns), C (`m` rows of
    /// `ldc` columns, `n` of them written), through OpenBLAS on the calling thread.
    static func gemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int,
                     b: UnsafePointer<Self>, ldb: Int, c: UnsafeMutablePointer<Self>, ldc: Int)
}

private func blasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: KilnFloat {
    public static func exp(_ x: Float) -> Float { polynomialExp(x) }
    public static func log(_ x: Float) -> Float { Foundation.log(x) }
    public static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
    public static func erf(_ x: Float) -> Float { Foundation.erf(x) }
    public static func squareRoot(_ x: Float) -> Float { x.squareRoot() }

    /// Eigen's float tanh: an odd degree-13 over even degree-6 rational function on
    /// [-7.905, 7.905], where tanh rounds to ±1 beyond; no calls and no branches, so the loop
    /// vectorizes (libm's tanhf is a call per element). In C (CVectorMath), cloned for the
    /// CPU's widest vectors.
    public static func tanh(_ x: UnsafePointer<Float>, into r: UnsafeMutablePointer<Float>, count: Int) {
        kiln_tanh_f32(x, r, count)
    }
    /// `polynomialExp` of each element, in C (CVectorMath) cloned for the CPU's widest vectors:
    /// the same operations in the same order, so the same bits.
    public static func exp(_ x: UnsafePointer<Float>, into r: UnsafeMutablePointer<Float>, count: Int) {
        kiln_exp_f32(x, r, count)
    }

    /// Cephes' expf: e^x = 2^n · e^g with n = round(x / ln 2) and g = x − n·ln 2 (ln 2 in two
    /// parts), e^g a degree-7 polynomial, within 2 ulp; 2^n as two halves, so that overflow to
    /// infinity and underflow through the subnormals come out of the multiplication. No calls
    /// and no branches, so loops over it vectorize; libm's expf is a call per element, and slow
    /// where it underflows, as masked attention scores (−10⁹) do. Every float exp of the CPU
    /// backend is this one, so per-element and vectorized evaluation agree to the bit.
    @inline(__always) static func polynomialExp(_ v: Float) -> Float {
        let c = v.isNaN ? 0 : Swift.min(Swift.max(v, -104), 89)
        // Rounded to the nearest integer by adding and taking away 1.5·2^23 (rounded() is a
        // libm call without SSE4.1); n is then in the sum's low mantissa bits.
        let t = c * 1.44269504088896341 + 12582912
        let fx = t - 12582912
        let g = c - fx * 0.693359375 + fx * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * g + 1.3981999507e-3
        p = p * g + 8.3334519073e-3
        p = p * g + 4.1665795894e-2
        p = p * g + 1.6666665459e-1
        p = p * g + 5.0000001201e-1
        let y = p * (g * g) + g + 1
        let n = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000, h = n >> 1
        let twoH = Float(bitPattern: UInt32(bitPattern: (h &+ 127) << 23))
        let twoRest = Float(bitPattern: UInt32(bitPattern: (n &- h &+ 127) << 23))
        return v.isNaN ? v : y * twoH * twoRest
    }
    public static func gemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if blockedGemm(ta, tb, m: m, n: n), kiln_gemm_blocks_f32(ta ? 1 : 0, tb ? 1 : 0, m, n, k, a, lda, b, ldb, c, ldc, nil, 0) != 0 { return }
        cblas_sgemm(CblasRowMajor, blasTranspose(ta), blasTranspose(tb), blasint(m), blasint(n), blasint(k), 1,
                    a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)), 0, c, blasint(max(ldc, 1)))
    }
}

extension Float {
    /// Whether a product goes to the register-blocked kernel (`kiln_gemm_blocks_f32`) rather
    /// than OpenBLAS: C at most 320 columns wide (a multiple of 16), where the blocks beat
    /// OpenBLAS's kernels, tuned for wide products (one core, `scripts/gemm_blocks_bench.c`: the
    /// CNN's conv2 forward 12544x288x64 1.4-1.5x, its weight gradient 1.1x, the MLP's products
    /// 1.1-1.2x, a 512³ product 0.97x). With B transposed it is copied first, which pays from
    /// about 512 rows of C on. A weight gradient under 16 columns wide (conv1's [32, 9]) is
    /// computed transposed: 1.5x OpenBLAS there.
    static func blockedGemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int) -> Bool {
        if n % 16 == 0 { return n <= 320 && (!tb || m >= 512) }
        return ta && !tb && m % 16 == 0 && m <= 320
    }

    /// C `[m, n]` = op(A) · op(B) + `bias` (n values, added to each row), then ReLU with
    /// `relu`, through the register blocks split over the worker pool (`splitProduct`): a
    /// Linear's or convolution's epilogue applied as the blocks are stored, instead of a pass
    /// over C. False where the blocks do not apply, or a part could not run (its copy of B
    /// found no memory): the caller's other path then computes the whole product.
    static func blockedGemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>,
                            bias: UnsafePointer<Float>?, relu: Bool) -> Bool {
        guard n % 16 == 0, k > 0, blockedGemm(ta, tb, m: m, n: n), kiln_gemm_blocks_available() != 0 else { return false }
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: WorkerPool.shared.threads) { done in
            done.initialize(repeating: 1)
            splitProduct(m: m, n: n, k: k) { p, rows, columns in
                let (r0, c0) = (rows.lowerBound, columns.lowerBound)
                done[p] = kiln_gemm_blocks_f32(ta ? 1 : 0, tb ? 1 : 0, rows.count, columns.count, k, ta ? a + r0 : a + r0 * lda, lda,
                                               tb ? b + c0 * ldb : b + c0, ldb, c + r0 * n + c0, n, bias.map { $0 + c0 }, relu ? 1 : 0)
            }
            return !done.contains(0)
        }
    }
}

extension Double: KilnFloat {
    public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    public static func log(_ x: Double) -> Double { Foundation.log(x) }
    public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    public static func erf(_ x: Double) -> Double { Foundation.erf(x) }
    public static func squareRoot(_ x: Double) -> Double { x.squareRoot() }
    public static func tanh(_ x: UnsafePointer<Double>, into r: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { r[i] = Foundation.tanh(x[i]) }
    }
    public static func exp(_ x: UnsafePointer<Double>, into r: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { r[i] = Foundation.exp(x[i]) }
    }
    public static func gemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
                            b: UnsafePointer<Double>, ldb: Int, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, blasTranspose(ta), blasTranspose(tb), blasint(m), blasint(n), blasint(k), 1,
                    a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)), 0, c, blasint(max(ldc, 1)))
    }
}

extension KilnFloat {
    /// `batches` matmuls of consecutive `[m, k]` and `[k, n]` matrices into consecutive
    /// `[m, n]` ones: one matmul split over the threads, or several spread whole over them.
    /// `offsets`: where each matrix of A and of B starts (strided views); nil: one after another.
    static func batchedGemm(_ ta: Bool, _ tb: Bool, batches: Int, m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int,
                            b: UnsafePointer<Self>, ldb: Int, c: UnsafeMutablePointer<Self>, offsets: ([Int], [Int])? = nil) {
        guard batches > 1 else {
            return parallelGemm(ta, tb, m: m, n: n, k: k, a: a + (offsets?.0[0] ?? 0), lda: lda, b: b + (offsets?.1[0] ?? 0), ldb: ldb, c: c)
        }
        let pool = WorkerPool.shared
        let parts = 2 * m * n * k * batches >= 1 << 20 ? min(pool.threads, batches) : 1
        pool.run(parts: parts) { p in
            for i in batches * p / parts..<batches * (p + 1) / parts {
                let (ao, bo) = offsets.map { ($0.0[i], $0.1[i]) } ?? (i * m * k, i * k * n)
                gemm(ta, tb, m: m, n: n, k: k, a: a + ao, lda: lda, b: b + bo, ldb: ldb, c: c + i * m * n, ldc: n)
            }
        }
    }

    /// Halves of k a product is computed in, one per thread, then added (2), or 1. For a
    /// long k and a small C (a convolution's weight gradient, 64 x 288 over 25088 pixels),
    /// where splitting C would leave each thread a strip too narrow for whole register blocks
    /// (conv2's: 144 columns, 64 + 64 + 16). Two halves whatever the threads, so the result
    /// does not depend on their number.
    static func kHalves(m: Int, n: Int, k: Int) -> Int {
        k >= 64 * Swift.max(m, n) && m * n <= 1 << 16 && 2 * m * n * k >= 1 << 20 ? 2 : 1
    }

    /// C `[m, n]` = op(A) · op(B) (as `gemm`), split over the worker pool's threads
    /// (`splitProduct`).
    static func parallelGemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int,
                             b: UnsafePointer<Self>, ldb: Int, c: UnsafeMutablePointer<Self>) {
        splitProduct(m: m, n: n, k: k) { _, rows, columns in
            let (r0, c0) = (rows.lowerBound, columns.lowerBound)
            gemm(ta, tb, m: rows.count, n: columns.count, k: k, a: ta ? a + r0 : a + r0 * lda, lda: lda,
                 b: tb ? b + c0 * ldb : b + c0, ldb: ldb, c: c + r0 * n + c0, ldc: n)
        }
    }

    /// Runs `part(index, rows, columns)` for each block of C `[m, n]` a product is split into
    /// over the worker pool's threads: ranges of C's rows, or of its columns when it has fewer
    /// rows than columns (starting at multiples of 16, so each part's rows of C stay aligned);
    /// one block, on the calling thread, below about a million flops, where splitting costs
    /// more than it saves. Empty blocks are skipped.
    static func splitProduct(m: Int, n: Int, k: Int, _ part: (Int, Range<Int>, Range<Int>) -> Void) {
        let pool = WorkerPool.shared
        let parts = 2 * m * n * k >= 1 << 20 ? min(pool.threads, max(m, n) / 16) : 1
        guard parts > 1 else { return part(0, 0..<m, 0..<n) }
        pool.run(parts: parts) { p in
            if m >= n {
                let (r0, r1) = (m * p / parts, m * (p + 1) / parts)
                if r1 > r0 { part(p, r0..<r1, 0..<n) }
            } else {
                let c0 = p == 0 ? 0 : n * p / parts & ~15, c1 = p == parts - 1 ? n : n * (p + 1) / parts & ~15
                if c1 > c0 { part(p, 0..<m, c0..<c1) }
            }
        }
    }
}

/// A pointer to `T` as one to Float, for the C kernels' Float paths (where `T` is Float).
@inline(__always) func floats<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float> {
    UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
}

@inline(__always) func floats<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}
