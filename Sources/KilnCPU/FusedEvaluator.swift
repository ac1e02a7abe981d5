import KilnCompiler
import KilnGraph

/// Evaluates fused SSA code one instruction at a time over all elements: a register of the
/// iteration shape's size per instruction, allocated once.
final class FusedEvaluator<T: KilnFloat> {
    let code: FusedCode
    let count: Int
    let registers: UnsafeMutablePointer<T>
    /// Space of the iteration shape's size for the caller (a matmul's product).
    let scratch: UnsafeMutablePointer<T>
    /// Per input: its base pointer and, when it is broadcast, the offset of each element.
    let loads: [(UnsafeMutablePointer<T>, [Int]?)]

    init(_ code: FusedCode, loads: [(UnsafeMutablePointer<T>, Shape)]) {
        self.code = code
        count = code.shape.count
        registers = .allocate(capacity: max(count * code.code.count, 1))
        scratch = .allocate(capacity: max(count, 1))
        self.loads = loads.map { base, shape in
            (base, shape == code.shape ? nil : stridedOffsets(code.shape, shape.broadcastStrides(to: code.shape)))
        }
    }

    deinit {
        registers.deallocate()
        scratch.deallocate()
    }

    /// Runs the code and copies the results to `targets`; returns the first result's register.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @discardableResult
    func run(accumulator: UnsafeMutablePointer<T>?, into targets: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<T> {
        let n = count
        for (i, instr) in code.code.enumerated() {
            let r = registers + i * n
            switch instr {
            case .load(let j):
                let (base, table) = loads[j]
                if let table { for e in 0..<n { r[e] = base[table[e]] } } else { r.update(from: base, count: n) }
            case .accumulator:
                r.update(from: accumulator!, count: n)
            case .constant(let c):
                r.update(repeating: T(c), count: n)
            case let .unary(op, a):
                let x = registers + a * n
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
                let x = registers + a * n, y = registers + b * n
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
        for (t, res) in zip(targets, code.results) { t.update(from: registers + res * n, count: n) }
        return registers + code.results[0] * n
    }
}
