import Foundation
import Testing
@testable import KilnCPU
import CVectorMath
import KilnGraph
import Kiln

/// The C loops of CVectorMath (exp, tanh, GELU, dropout's draws, the fused evaluator's passes, softmax rows; cloned for
/// the CPU's widest vectors) against the Swift code they stand for: the same bits.
@Suite struct VectorMathTests {
    /// A sweep over and past exp's range (overflow, the subnormals, underflow to 0), large
    /// values as masked scores, and the special values.
    static let inputs: [Float] = stride(from: Float(-110), through: 95, by: 0.0137).map { $0 }
        + [0, -0, .nan, .infinity, -.infinity, -1e9, 1e9, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
           .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 88.72, 88.73, -87.33, -103.97, 7.9053, -7.9053]

    static func same(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

    @Test func expMatchesTheScalarPolynomial() {
        let x = Self.inputs
        var r = [Float](repeating: 0, count: x.count)
        Float.exp(x, into: &r, count: x.count)
        let differ = x.indices.filter { !Self.same(r[$0], Float.polynomialExp(x[$0])) }.map { x[$0] }
        let differing = differ.count
        #expect(differing == 0, "exp differs at \(differ.prefix(5))")
        // In place too, and an odd count (the clones' remainder loops).
        var y = Array(x.prefix(1001))
        y.withUnsafeMutableBufferPointer { Float.exp($0.baseAddress!, into: $0.baseAddress!, count: 1001) }
        let inPlace = y.indices.allSatisfy { Self.same(y[$0], Float.polynomialExp(x[$0])) }
        #expect(inPlace)
    }

    /// Eigen's rational tanh, written in Swift as the C loop is.
    static func tanhReference(_ x: Float) -> Float {
        let c: Float = 7.90531110763549805
        let v = Swift.min(Swift.max(x, -c), c), v2 = v * v
        var p: Float = -2.76076847742355e-16
        p = p * v2 + 2.00018790482477e-13
        p = p * v2 - 8.60467152213735e-11
        p = p * v2 + 5.12229709037114e-08
        p = p * v2 + 1.48572235717979e-05
        p = p * v2 + 6.37261928875436e-04
        p = p * v2 + 4.89352455891786e-03
        var q: Float = 1.19825839466702e-06
        q = q * v2 + 1.18534705686654e-04
        q = q * v2 + 2.26843463243900e-03
        q = q * v2 + 4.89352518554385e-03
        return v * p / q
    }

    @Test func tanhMatchesItsSwiftFormAndLibm() {
        let x = Self.inputs
        var r = [Float](repeating: 0, count: x.count)
        Float.tanh(x, into: &r, count: x.count)
        let differ = x.indices.filter { !Self.same(r[$0], Self.tanhReference(x[$0])) }.map { x[$0] }
        let differing = differ.count
        #expect(differing == 0, "tanh differs at \(differ.prefix(5))")
        let worst = x.indices.filter { x[$0].isFinite }.map { abs(Double(r[$0]) - Foundation.tanh(Double(x[$0]))) }.max() ?? 0
        #expect(worst < 1e-6, "tanh off libm by \(worst)")
    }

    /// GELU and its derivative in C against the same steps in Swift (the generic evaluator's), to
    /// the bit, and the derivative against GELU's slope in Double.
    @Test func geluMatchesItsSwiftSteps() {
        let x = Self.inputs.filter { abs($0) < 20 || !$0.isFinite } + stride(from: Float(-6), through: 6, by: 0.001).map { $0 }
        let (a, c): (Float, Float) = (0.044715, 0.7978845608028654)
        func t(_ v: Float) -> Float { Self.tanhReference(c * (v + a * v * v * v)) }
        let gelu = x.map { 0.5 * $0 * (1 + t($0)) }
        let slope = x.map { v -> Float in let t = t(v); return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * a * v * v) }
        var r = [Float](repeating: 0, count: x.count), d = r
        x.withUnsafeBufferPointer { xs in
            r.withUnsafeMutableBufferPointer { FusedEvaluator<Float>.gelu(xs.baseAddress!, $0.baseAddress!, x.count) }
            d.withUnsafeMutableBufferPointer { FusedEvaluator<Float>.geluDerivative(xs.baseAddress!, $0.baseAddress!, x.count) }
        }
        let differ = x.indices.filter { !Self.same(r[$0], gelu[$0]) || !Self.same(d[$0], slope[$0]) }.map { x[$0] }
        let differing = differ.count
        #expect(differing == 0, "gelu differs at \(differ.prefix(5))")
        func g(_ v: Double) -> Double { 0.5 * v * (1 + Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) }
        let worst = x.indices.filter { abs(x[$0]) <= 6 }.map { i -> Double in
            let v = Double(x[i]), h = 1e-4
            return abs(Double(d[i]) - (g(v + h) - g(v - h)) / (2 * h))
        }.max() ?? 0
        #expect(worst < 1e-5, "gelu' off the slope by \(worst)")
        // In place, with an odd count.
        var y = Array(x.prefix(1001))
        y.withUnsafeMutableBufferPointer { FusedEvaluator<Float>.geluDerivative($0.baseAddress!, $0.baseAddress!, 1001) }
        #expect(y.indices.allSatisfy { Self.same(y[$0], slope[$0]) })
    }

    /// Dropout's draws in C against KilnGraph's Philox, element for element: sizes with a last
    /// block of one to four elements, ranges of blocks starting anywhere (the threads' parts),
    /// and every element written exactly once.
    @Test func philoxDrawsMatchTheSwiftGenerator() {
        for (count, counter, seed, stream) in [(1001, UInt32(0), UInt32(0), UInt32(0)), (1002, 12345, 1, 2), (1003, 9, 0xDEAD_BEEF, 7),
                                               (1004, 3, 5, 1), (3, 1, 2, 3), (1, 7, 7, 7)] {
            let quarter = (count + 3) / 4
            var r = [Float](repeating: -1, count: count)
            // Three parts, as threads would take them.
            for (b0, b1) in [(0, quarter / 3), (quarter / 3, quarter * 2 / 3), (quarter * 2 / 3, quarter)] {
                kiln_philox_uniform_f32(&r, count, b0, b1, counter, seed, stream)
            }
            let differ = r.indices.filter {
                r[$0] != Float(Philox.uniform(index: UInt32($0), count: count, counter: counter, seed: seed, stream: stream))
            }.count
            #expect(differ == 0, "count \(count), counter \(counter)")
        }
        // Block b gives elements b, B + b, 2B + b, 3B + b: its words in order.
        let w = Philox.block((5, 9, 0, 0), key: (1, 2))
        let words: [Double] = [w.0, w.1, w.2, w.3].map { Double($0 >> 8) / 16_777_216 }
        let elements: [Double] = (0..<4).map { (k: Int) -> Double in
            Philox.uniform(index: UInt32(5 + 250 * k), count: 1000, counter: 9, seed: 1, stream: 2)
        }
        #expect(elements == words)
    }

    /// The fused evaluator's passes for Float (C, in chunks of 16 and a tail) against the scalar
    /// op, for every op and each operand a block or a scalar, also in place.
    @Test func binaryPassesMatchTheScalarOps() {
        let special: [Float] = [0, -0, 1, -1, .nan, .infinity, -.infinity, 3.5, 1e-40, -2.25]
        let n = 37
        let x = (0..<n).map { special[$0 % special.count] * ($0 < 10 ? 1 : Float($0) / 7) }
        let y = (0..<n).map { special[($0 * 3 + 1) % special.count] * ($0 < 20 ? 1 : Float($0) / 5) }
        for op in BinaryOp.allCases {
            var r = [Float](repeating: 7, count: n)
            x.withUnsafeBufferPointer { xs in y.withUnsafeBufferPointer { ys in r.withUnsafeMutableBufferPointer { rs in
                FusedEvaluator<Float>.binary(op, rs.baseAddress!, UnsafeMutablePointer(mutating: xs.baseAddress!), UnsafeMutablePointer(mutating: ys.baseAddress!), n)
            } } }
            let vv = (0..<n).allSatisfy { Self.same(r[$0], FusedEvaluator<Float>.apply(op, x[$0], y[$0])) }
            #expect(vv, "\(op) block-block")
            for s in special {
                x.withUnsafeBufferPointer { xs in r.withUnsafeMutableBufferPointer { rs in
                    FusedEvaluator<Float>.binary(op, rs.baseAddress!, UnsafeMutablePointer(mutating: xs.baseAddress!), s, n)
                } }
                let vs = (0..<n).allSatisfy { Self.same(r[$0], FusedEvaluator<Float>.apply(op, x[$0], s)) }
                #expect(vs, "\(op) block-scalar \(s)")
                // In place: r is y.
                var z = y
                z.withUnsafeMutableBufferPointer { zs in FusedEvaluator<Float>.binary(op, zs.baseAddress!, s, zs.baseAddress!, n) }
                let sv = (0..<n).allSatisfy { Self.same(z[$0], FusedEvaluator<Float>.apply(op, s, y[$0])) }
                #expect(sv, "\(op) scalar-block \(s) in place")
            }
        }
        typealias Evaluator = FusedEvaluator<Float>
        func plus(_ x: Float, _ s: Float, _ y: Float) -> Float { x * s + y }
        func from(_ x: Float, _ s: Float, _ y: Float) -> Float { y - x * s }
        func minus(_ x: Float, _ s: Float, _ y: Float) -> Float { x * s - y }
        let forms: [(Evaluator.Form, (Float, Float, Float) -> Float)] = [(.plus, plus), (.from, from), (.minus, minus)]
        for (form, f) in forms {
            var r = x
            r.withUnsafeMutableBufferPointer { rs in y.withUnsafeBufferPointer { ys in
                FusedEvaluator<Float>.scaled(form, rs.baseAddress!, rs.baseAddress!, 1.5, UnsafeMutablePointer(mutating: ys.baseAddress!), n)
            } }
            let same = (0..<n).allSatisfy { Self.same(r[$0], f(x[$0], 1.5, y[$0])) }
            #expect(same, "scaled \(form)")
            // The same with relu in the pass, by a scalar and by a block of factors.
            let s = (0..<n).map { special[($0 * 7 + 2) % special.count] }
            var rs = x, rv = x
            rs.withUnsafeMutableBufferPointer { rp in y.withUnsafeBufferPointer { yp in
                FusedEvaluator<Float>.scaled(form, rp.baseAddress!, rp.baseAddress!, 1.5, UnsafeMutablePointer(mutating: yp.baseAddress!), n, relu: true)
            } }
            rv.withUnsafeMutableBufferPointer { rp in y.withUnsafeBufferPointer { yp in s.withUnsafeBufferPointer { sp in
                FusedEvaluator<Float>.scaledVectors(form, rp.baseAddress!, rp.baseAddress!, UnsafeMutablePointer(mutating: sp.baseAddress!),
                                                    UnsafeMutablePointer(mutating: yp.baseAddress!), n, relu: true)
            } } }
            let relu = { (v: Float) -> Float in FusedEvaluator<Float>.apply(.relu, v) }
            #expect((0..<n).allSatisfy { Self.same(rs[$0], relu(f(x[$0], 1.5, y[$0]))) }, "scaled \(form) relu")
            #expect((0..<n).allSatisfy { Self.same(rv[$0], relu(f(x[$0], s[$0], y[$0]))) }, "scaled vectors \(form) relu")
        }
    }

    /// Softmax rows in C against the CPU backend's steps in Swift (its row maximum and sum, the
    /// scalar exp): rows of 128 and of 37 (past the last 8), masked scores (-inf, -1e9) and
    /// large values among them.
    @Test func softmaxRowsMatchTheSwiftSteps() {
        var rng = SeededGenerator(seed: 11)
        for n in [128, 37, 1] {
            let rows = 5
            var x = rng.uniform(rows * n, in: -8...8).map(Float.init)
            x[0] = -.infinity; x[min(1, n - 1)] = -1e9; x[x.count - 1] = 80
            var y = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { ys in
                kiln_softmax_rows_f32(xs.baseAddress!, ys.baseAddress!, rows, n)
            } }
            var expected = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { xs in expected.withUnsafeMutableBufferPointer { es in
                for r in 0..<rows {
                    let xr = xs.baseAddress! + r * n, er = es.baseAddress! + r * n
                    let m = RowReductions<Float>.max(xr, n)
                    for k in 0..<n { er[k] = Float.polynomialExp(xr[k] - m) }
                    let scale = 1 / RowReductions<Float>.sum(er, n)
                    for k in 0..<n { er[k] *= scale }
                }
            } }
            let same = x.indices.allSatisfy { Self.same(y[$0], expected[$0]) }
            #expect(same, "softmax rows of \(n)")
        }
    }

    /// The tiled transpose at sizes with and without whole 8 x 8 tiles, over a range of rows
    /// (as a thread takes): exactly the input's values, nothing written outside the range.
    @Test func transposeMovesEveryElement() {
        for (rows, cols) in [(1, 1), (8, 8), (9, 17), (16, 7), (33, 40), (784, 32)] {
            let x = (0..<rows * cols).map { Float($0) }
            for (r0, r1) in [(0, rows), (rows / 16 * 8, rows)] {
                var y = [Float](repeating: -1, count: rows * cols)
                kiln_transpose_f32(x, &y, rows, cols, r0, r1)
                var wrong: [(Int, Int)] = []
                for r in 0..<rows {
                    for c in 0..<cols {
                        let want: Float = (r0..<r1).contains(r) ? x[r * cols + c] : -1
                        if y[c * rows + r] != want { wrong.append((r, c)) }
                    }
                }
                #expect(wrong.isEmpty, "\(rows) x \(cols), rows \(r0)..<\(r1): \(wrong.prefix(3))")
            }
        }
    }

    /// Row sums in C add as the Swift loop does: the same bits, at lengths around its eight
    /// accumulators and a channel's 784.
    @Test func rowSumsMatchTheSwiftLoop() {
        var rng = SeededGenerator(seed: 9)
        let x = rng.uniform(2000, in: -3...3).map(Float.init)
        x.withUnsafeBufferPointer { p in
            for n in [0, 1, 7, 8, 9, 63, 784, 1001, 2000] {
                let c = kiln_sum_f32(p.baseAddress!, n), swift = RowReductions<Float>.swiftSum(p.baseAddress!, n)
                #expect(c.bitPattern == swift.bitPattern, "n \(n): \(c) against \(swift)")
            }
        }
    }

    /// Column sums of rows in C add each column in row order, as a loop over the rows adding
    /// into memory does: the same bits, for widths around its 64-, 48-, 32- and 16-column
    /// groups and the tail, and rows with a stride past their width.
    @Test func addRowsMatchesTheRowLoop() {
        var rng = SeededGenerator(seed: 11)
        let x = rng.uniform(200 * 150, in: -3...3).map(Float.init)
        for (w, ld) in [(1, 1), (15, 15), (16, 16), (32, 32), (48, 50), (64, 64), (80, 80), (117, 150), (144, 149)] {
            for count in [0, 1, 7, 200] {
                let start = rng.uniform(w, in: -1...1).map(Float.init)
                var c = start, loop = start
                x.withUnsafeBufferPointer { p in
                    c.withUnsafeMutableBufferPointer { kiln_add_rows_f32($0.baseAddress!, p.baseAddress!, count, w, ld) }
                    for r in 0..<count { for j in 0..<w { loop[j] += p[r * ld + j] } }
                }
                #expect(zip(c, loop).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(count) rows of \(w) (stride \(ld))")
            }
        }
    }

    /// Negation, square root and relu in C against Swift's scalar ops (the evaluator's `apply`):
    /// the special values (relu of NaN and -0 is +0), lengths past a vector, and in place.
    @Test func unaryPassesMatchTheScalarOps() {
        let x = Self.inputs + Self.inputs.map { -$0 * 0.37 }
        for op in [UnaryOp.neg, .sqrt, .relu] {
            for n in [0, 5, 16, 37, x.count] {
                var r = [Float](repeating: 7, count: n), inPlace = Array(x.prefix(n))
                x.withUnsafeBufferPointer { xs in r.withUnsafeMutableBufferPointer { rs in
                    FusedEvaluator<Float>.unaryPass(op, rs.baseAddress!, UnsafeMutablePointer(mutating: xs.baseAddress!), n)
                } }
                inPlace.withUnsafeMutableBufferPointer { FusedEvaluator<Float>.unaryPass(op, $0.baseAddress!, $0.baseAddress!, n) }
                #expect((0..<n).allSatisfy { Self.same(r[$0], FusedEvaluator<Float>.apply(op, x[$0])) }, "\(op), \(n) values")
                #expect((0..<n).allSatisfy { Self.same(inPlace[$0], r[$0]) }, "\(op) in place, \(n) values")
            }
        }
    }

    /// The register-blocked GEMM (AVX-512) against plain loops, exactly: small integers, so
    /// every sum is exact in any order. Rows around the block's 6, every column width it
    /// splits into (64, 48, 32, 16 at the end), k past one chunk of 512 (accumulated in chunks
    /// of 256), every transpose, operands with padded rows, C's padding left alone, and a bias
    /// and ReLU applied as the blocks are stored.
    @Test func blockedGemmMatchesPlainLoops() {
        guard kiln_gemm_blocks_available() != 0 else {
            var c = [Float](repeating: 0, count: 16)
            let done = kiln_gemm_blocks_f32(0, 0, 1, 16, 1, [1], 1, [Float](repeating: 1, count: 16), 16, &c, 16, nil, 0)
            #expect(done == 0)
            return
        }
        var rng = SeededGenerator(seed: 11)
        // Every form at widths of whole vectors; and weight gradients under 16 wide (conv1's
        // 32 x 9), computed transposed.
        let wide = [(1, 16, 1), (5, 32, 9), (6, 48, 64), (7, 64, 3), (13, 80, 513), (9, 112, 600), (11, 96, 530), (100, 144, 700), (37, 288, 31)]
            .flatMap { s in [(false, false), (false, true), (true, false), (true, true)].map { (s, $0) } }
        let narrow = [(32, 9, 700), (16, 5, 33), (48, 1, 8)].map { ($0, (true, false)) }
        for (index, ((m, n, k), (ta, tb))) in (wide + narrow).enumerated() {
            // A bias on every third case, ReLU on every other (C's values either sign).
            let (withBias, relu) = (index % 3 == 1 && n % 16 == 0, index % 2 == 1 && n % 16 == 0)
            let bias = (0..<n).map { Float($0 % 5 - 2) }
            let pad = 3
            let (aRows, aCols) = ta ? (k, m) : (m, k), (bRows, bCols) = tb ? (n, k) : (k, n)
            let (lda, ldb, ldc) = (aCols + pad, bCols + pad, n + pad)
            let a = (0..<aRows * lda).map { _ in Float(Int.random(in: -4...4, using: &rng)) }
            let b = (0..<bRows * ldb).map { _ in Float(Int.random(in: -4...4, using: &rng)) }
            var c = [Float](repeating: .nan, count: m * ldc)
            let done = withBias ? kiln_gemm_blocks_f32(ta ? 1 : 0, tb ? 1 : 0, m, n, k, a, lda, b, ldb, &c, ldc, bias, relu ? 1 : 0)
                : kiln_gemm_blocks_f32(ta ? 1 : 0, tb ? 1 : 0, m, n, k, a, lda, b, ldb, &c, ldc, nil, relu ? 1 : 0)
            #expect(done == 1)
            var wrong: [String] = []
            for i in 0..<m {
                for j in 0..<ldc {
                    var want = Float.nan
                    if j < n {
                        want = 0
                        for p in 0..<k { want += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]) }
                        if withBias { want += bias[j] }
                        if relu { want = want > 0 ? want : 0 }
                    }
                    if !(c[i * ldc + j] == want || (want.isNaN && c[i * ldc + j].isNaN)) { wrong.append("[\(i), \(j)] \(c[i * ldc + j]) != \(want)") }
                }
            }
            #expect(wrong.count == 0, "\(m)x\(k)x\(n) ta \(ta) tb \(tb) bias \(withBias) relu \(relu): \(wrong.prefix(3))")
        }
        // C's width not a multiple of 16, A not transposed: left to OpenBLAS, nothing written.
        var c = [Float](repeating: .nan, count: 20)
        let done = kiln_gemm_blocks_f32(0, 0, 1, 20, 1, [Float](repeating: 1, count: 1), 1, [Float](repeating: 1, count: 20), 20, &c, 20, nil, 0)
        #expect(done == 0)
        #expect(c.allSatisfy { $0.isNaN })
    }
}
