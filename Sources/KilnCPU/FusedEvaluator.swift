import KilnCompiler
import KilnGraph

/// Evaluates fused SSA code one instruction at a time over a block of elements, block after
/// block: each instruction's register holds one block, so a whole chain stays in cache.
/// Registers and index tables are allocated once.
final class FusedEvaluator<T: KilnFloat> {
    /// Elements per block: registers of all instructions together stay within a few hundred KiB.
    static var blockSize: Int { 2048 }

    let code: FusedCode
    let count: Int
    let block: Int
    let registers: UnsafeMutablePointer<T>
    /// Space of the iteration shape's size for the caller (a matmul's product), when asked for.
    let scratch: UnsafeMutablePointer<T>
    /// The whole first result, for callers that need it all (a reduction's input), when asked for.
    let result: UnsafeMutablePointer<T>
    /// Per input: its base pointer and, when it is broadcast, the offset of each element.
    let loads: [(UnsafeMutablePointer<T>, [Int]?)]

    init(_ code: FusedCode, loads: [(UnsafeMutablePointer<T>, Shape)], scratch needScratch: Bool = false, result needResult: Bool = false) {
        self.code = code
        count = code.shape.count
        block = min(Self.blockSize, max(count, 1))
        registers = .allocate(capacity: max(block * code.code.count, 1))
        scratch = .allocate(capacity: needScratch ? max(count, 1) : 1)
        result = .allocate(capacity: needResult ? max(count, 1) : 1)
        self.loads = loads.map { base, shape in
            (base, shape == code.shape ? nil : stridedOffsets(code.shape, shape.broadcastStrides(to: code.shape)))
        }
    }

    deinit {
        registers.deallocate()
        scratch.deallocate()
        result.deallocate()
    }

    /// Runs the code and copies the results to `targets` (or, with no targets, the first
    /// result to `result`); returns `result`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @discardableResult
    func run(accumulator: UnsafeMutablePointer<T>?, into targets: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<T> {
        var start = 0
        while start < count {
            let n = min(block, count - start)
            evaluate(start: start, n: n, accumulator: accumulator)
            if targets.isEmpty {
                (result + start).update(from: registers + code.results[0] * block, count: n)
            } else {
                for (t, res) in zip(targets, code.results) { (t + start).update(from: registers + res * block, count: n) }
            }
            start += n
        }
        return result
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func evaluate(start: Int, n: Int, accumulator: UnsafeMutablePointer<T>?) {
        for (i, instr) in code.code.enumerated() {
            let r = registers + i * block
            switch instr {
            case .load(let j):
                let (base, table) = loads[j]
                if let table { for e in 0..<n { r[e] = base[table[start + e]] } } else { r.update(from: base + start, count: n) }
            case .accumulator:
                r.update(from: accumulator! + start, count: n)
            case .constant(let c):
                r.update(repeating: T(c), count: n)
            case let .unary(op, a):
                let x = registers + a * block
                switch op {
                case .neg: for e in 0..<n { r[e] = -x[e] }
                case .exp: for e in 0..<n { r[e] = T.exp(x[e]) }
                case .log: for e in 0..<n { r[e] = T.log(x[e]) }
                case .sqrt: for e in 0..<n { r[e] = T.squareRoot(x[e]) }
                case .tanh: for e in 0..<n { r[e] = T.tanh(x[e]) }
                case .sigmoid: for e in 0..<n { r[e] = 1 / (1 + T.exp(-x[e])) }
                case .relu: for e in 0..<n { r[e] = x[e] > 0 ? x[e] : 0 }
                }
            case let .binary(op, a, b):
                let x = registers + a * block, y = registers + b * block
                switch op {
                case .add: for e in 0..<n { r[e] = x[e] + y[e] }
                case .sub: for e in 0..<n { r[e] = x[e] - y[e] }
                case .mul: for e in 0..<n { r[e] = x[e] * y[e] }
                case .div: for e in 0..<n { r[e] = x[e] / y[e] }
                case .maximum: for e in 0..<n { r[e] = x[e] >= y[e] ? x[e] : y[e] }
                case .minimum: for e in 0..<n { r[e] = x[e] <= y[e] ? x[e] : y[e] }
                case .greater: for e in 0..<n { r[e] = x[e] > y[e] ? 1 : 0 }
                case .equal: for e in 0..<n { r[e] = x[e] == y[e] ? 1 : 0 }
                }
            }
        }
    }
}
