import Testing
@testable import KilnCPU
import Kiln

/// The CPU backend's fused elementwise passes (uniform operands, multiplies folded into adds,
/// results written in place) against the code read one element at a time: bitwise equal, at
/// sizes with and without a SIMD tail and split over threads, with outputs that are inputs.
@Suite struct FusedEvaluatorTests {
    /// `code` element by element, on copies of the inputs (of the iteration's size, or one value).
    static func reference<T: KilnFloat>(_ code: FusedCode, _ inputs: [[T]]) -> [[T]] {
        let count = code.shape.count
        var out = code.results.map { _ in [T](repeating: 0, count: count) }
        var v = [T](repeating: 0, count: code.code.count)
        for e in 0..<count {
            for (i, instr) in code.code.enumerated() {
                switch instr {
                case .load(let j): v[i] = inputs[j].count == count ? inputs[j][e] : inputs[j][0]
                case .constant(let c): v[i] = T(c)
                case let .unary(op, a): v[i] = FusedEvaluator<T>.apply(op, v[a])
                case let .binary(op, a, b): v[i] = FusedEvaluator<T>.apply(op, v[a], v[b])
                case .accumulator: v[i] = 0
                }
            }
            for (r, res) in code.results.enumerated() { out[r][e] = v[res] }
        }
        return out
    }

    /// Runs `code` with `inputs` in memory; `targets` names, per result, the input whose memory
    /// it is written to (an update in place), or nil for memory of its own.
    static func run<T: KilnFloat>(_ code: FusedCode, _ inputs: [[T]], shapes: [Shape], targets: [Int?]) -> [[T]] {
        let memory = inputs.map { values -> UnsafeMutablePointer<T> in
            let p = UnsafeMutablePointer<T>.allocate(capacity: values.count)
            p.initialize(from: values, count: values.count)
            return p
        }
        let own = targets.map { $0 == nil ? UnsafeMutablePointer<T>.allocate(capacity: code.shape.count) : nil }
        defer { (memory + own.compactMap { $0 }).forEach { $0.deallocate() } }
        let out = zip(targets, own).map { t, o in t.map { memory[$0] } ?? o! }
        let eval = FusedEvaluator<T>(code, loads: zip(memory, shapes).map { ($0, $1) }, targets: out)
        for _ in 0..<2 where targets.allSatisfy({ $0 == nil }) { eval.run() }  // a rerun reads the same
        if targets.contains(where: { $0 != nil }) { eval.run() }
        return out.map { Array(UnsafeBufferPointer(start: $0, count: code.shape.count)) }
    }

    /// `index[j]`, where given, maps an element of the iteration to input j's element (a
    /// broadcast); the reference reads inputs expanded to the iteration's shape.
    static func check<T: KilnFloat>(_ type: T.Type, _ name: String, _ code: FusedCode, shapes: [Shape], targets: [Int?],
                                    index: [Int: (Int) -> Int] = [:]) {
        var rng = SeededGenerator(seed: 7)
        let inputs = shapes.map { s in rng.uniform(s.count, in: -2...2).map { T($0) } }
        let expanded = inputs.enumerated().map { j, v in index[j].map { f in (0..<code.shape.count).map { v[f($0)] } } ?? v }
        let expected = reference(code, expanded), got = run(code, inputs, shapes: shapes, targets: targets)
        for (r, (e, g)) in zip(expected, got).enumerated() {
            let bad = zip(e, g).enumerated().first { !($0.element.0 == $0.element.1 || ($0.element.0.isNaN && $0.element.1.isNaN)) }
            #expect(bad == nil, "\(name) \(T.self) result \(r) at \(bad?.offset ?? -1): \(bad.map { "\($0.element.1) instead of \($0.element.0)" } ?? "")")
        }
    }

    // Sizes: below one SIMD chunk, with a tail, several blocks (and, for the update, enough to
    // split over two threads).
    static let sizes = [5, 1000, 4099]

    @Test(arguments: sizes + [2 * FusedEvaluator<Float>.elementsPerWorker + 17])
    func momentumUpdateInPlace(count: Int) {
        // p' = p - lr * (0.9 v + g), v' = 0.9 v + g; results written into p and v themselves.
        let code = FusedCode(shape: [count], code: [
            .load(0), .load(1), .load(2), .constant(0.9), .binary(.mul, 2, 3), .load(3), .binary(.add, 4, 5),
            .binary(.mul, 1, 6), .binary(.sub, 0, 7),
        ], results: [8, 6], nodes: Array(repeating: nil, count: 9))
        let shapes: [Shape] = [[count], [], [count], [count]]
        Self.check(Float.self, "momentum", code, shapes: shapes, targets: [0, 2])
        Self.check(Double.self, "momentum", code, shapes: shapes, targets: [0, 2])
        Self.check(Float.self, "momentum apart", code, shapes: shapes, targets: [nil, nil])
    }

    @Test(arguments: sizes)
    func foldedFormsAndUniformOperands(count: Int) {
        // x*s - y, y - s*x, s*x + y with s = c * scalar input, a uniform result, and every op
        // with a uniform operand on either side.
        var code: [Instr] = [.load(0), .load(1), .load(2), .constant(1.5), .binary(.mul, 2, 3)]  // 4: s
        code += [.binary(.mul, 0, 4), .binary(.sub, 5, 1)]        // 6: x*s - y
        code += [.binary(.mul, 4, 0), .binary(.sub, 1, 7)]        // 8: y - s*x
        code += [.binary(.mul, 4, 1), .binary(.add, 9, 0)]        // 10: s*y + x
        var results = [6, 8, 10, 4]
        for op in BinaryOp.allCases {
            code.append(.binary(op, 0, 4)); results.append(code.count - 1)
            code.append(.binary(op, 4, 1)); results.append(code.count - 1)
            code.append(.binary(op, 0, 1)); results.append(code.count - 1)
        }
        for op in UnaryOp.allCases { code.append(.unary(op, 1)); results.append(code.count - 1) }
        let fused = FusedCode(shape: [count], code: code, results: results, nodes: Array(repeating: nil, count: code.count))
        let shapes: [Shape] = [[count], [count], []]
        Self.check(Float.self, "forms", fused, shapes: shapes, targets: Array(repeating: nil, count: results.count))
        Self.check(Double.self, "forms", fused, shapes: shapes, targets: Array(repeating: nil, count: results.count))
    }

    @Test(arguments: sizes)
    func inPlaceOnlyWhereNothingReadsLater(count: Int) {
        // a = 2x into x's memory, then b = x + 1 must still read the old x; y passed through as
        // a result while y + s is written into y's memory.
        let code = FusedCode(shape: [count], code: [
            .load(0), .constant(2), .binary(.mul, 0, 1), .constant(1), .binary(.add, 0, 3), .load(1), .load(2), .binary(.add, 5, 6),
        ], results: [2, 4, 5, 7], nodes: Array(repeating: nil, count: 8))
        // Results: 2x -> x's memory, x + 1 -> own, y (passed through) -> own, y + s -> y's memory.
        let shapes: [Shape] = [[count], [count], [1]]
        Self.check(Float.self, "in place", code, shapes: shapes, targets: [0, nil, nil, 1])
        Self.check(Double.self, "in place", code, shapes: shapes, targets: [0, nil, nil, 1])
        // Two results swapping two inputs' memory: x <- y, y <- x + 1.
        let swap = FusedCode(shape: [count], code: [.load(0), .load(1), .constant(1), .binary(.add, 0, 2)],
                             results: [1, 3], nodes: Array(repeating: nil, count: 4))
        Self.check(Float.self, "swap", swap, shapes: [[count], [count]], targets: [0, 1])
    }

    /// A relu right after a scaled sum that only it reads is applied in the sum's pass (batch
    /// norm's ReLU): by a scalar and by per-channel values of channels-last images, in each
    /// form; a sum that is also a result, or a relu that does not follow it, keeps its own pass.
    @Test(arguments: sizes)
    func reluInTheScaledSumsPass(count: Int) {
        let c = 4, rows = (count + c - 1) / c
        let code: [Instr] = [.load(0), .load(1), .load(2), .load(3),
                             .binary(.mul, 0, 1), .binary(.add, 4, 2), .unary(.relu, 5),      // 6: relu(x*s + t), s, t per channel
                             .binary(.mul, 0, 3), .binary(.sub, 2, 7), .unary(.relu, 8),      // 9: relu(t - x*k), k scalar
                             .binary(.mul, 0, 3), .binary(.sub, 10, 2), .unary(.relu, 11),    // 12: relu(x*k - t), the sum a result too
                             .binary(.mul, 0, 1), .binary(.add, 13, 2), .unary(.neg, 0), .unary(.relu, 14)]  // 16: a pass between
        let fused = FusedCode(shape: [rows, c], code: code, results: [6, 9, 12, 11, 16], nodes: Array(repeating: nil, count: code.count))
        let shapes: [Shape] = [[rows, c], [c], [c], []]
        let index: [Int: (Int) -> Int] = [1: { $0 % c }, 2: { $0 % c }]
        Self.check(Float.self, "relu in the pass", fused, shapes: shapes, targets: Array(repeating: nil, count: 5), index: index)
        Self.check(Double.self, "relu in the pass", fused, shapes: shapes, targets: Array(repeating: nil, count: 5), index: index)
        // Which passes took their relu: the first two sums, not the one that is a result nor the last.
        let memory = UnsafeMutablePointer<Float>.allocate(capacity: rows * c)
        defer { memory.deallocate() }
        let eval = FusedEvaluator<Float>(fused, loads: shapes.map { (memory, $0) })
        let merged = eval.steps.compactMap { step -> Int? in
            switch step {
            case let .scaled(i, _, _, _, _, true), let .scaledVectors(i, _, _, _, _, true): return i
            default: return nil
            }
        }
        #expect(merged == [6, 9], "relu merged into the passes of \(merged)")
    }

    /// Broadcast inputs: a row along leading axes, a column along trailing ones (both copied in
    /// stretches), and another pattern (an index table), across block boundaries.
    @Test func broadcastInputs() {
        let (m, n) = (37, 70)   // 2590 elements: blocks of 2048 end inside a row
        let code = FusedCode(shape: [m, n], code: [.load(0), .load(1), .binary(.add, 0, 1), .load(2), .binary(.mul, 2, 3)],
                             results: [4, 1, 3], nodes: Array(repeating: nil, count: 5))
        let index: [Int: (Int) -> Int] = [1: { $0 % n }, 2: { $0 / n }]
        Self.check(Float.self, "row and column", code, shapes: [[m, n], [n], [m, 1]], targets: [nil, nil, nil], index: index)
        Self.check(Double.self, "row and column", code, shapes: [[m, n], [n], [m, 1]], targets: [nil, nil, nil], index: index)
        let (a, b, c) = (3, 37, 40)
        let middle = FusedCode(shape: [a, b, c], code: [.load(0), .load(1), .binary(.sub, 0, 1)], results: [2],
                               nodes: Array(repeating: nil, count: 3))
        Self.check(Float.self, "middle axis", middle, shapes: [[a, b, c], [a, 1, c]], targets: [nil],
                   index: [1: { ($0 / (b * c)) * c + $0 % c }])
        #expect({ if case .rows(70) = FusedEvaluator<Float>.broadcast((0..<140).map { $0 % 70 }, inputCount: 70) { return true }; return false }())
        #expect({ if case .repeated(4, 5) = FusedEvaluator<Float>.broadcast((0..<20).map { $0 / 4 }, inputCount: 5) { return true }; return false }())
        // Per-channel values of an image batch [2, 3, 4]: runs of 4, cycling through 3 channels.
        #expect({ if case .repeated(4, 3) = FusedEvaluator<Float>.broadcast((0..<24).map { ($0 / 4) % 3 }, inputCount: 3) { return true }; return false }())
        let (p, q, r) = (2, 5, 6)
        let channels = FusedCode(shape: [p, q, r], code: [.load(0), .load(1), .binary(.mul, 0, 1)], results: [2],
                                 nodes: Array(repeating: nil, count: 3))
        Self.check(Float.self, "per channel", channels, shapes: [[p, q, r], [1, q, 1]], targets: [nil],
                   index: [1: { ($0 / r) % q }])
        #expect({ if case .table = FusedEvaluator<Float>.broadcast([0, 2, 1, 3], inputCount: 4) { return true }; return false }())
    }
}
