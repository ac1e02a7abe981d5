import Dispatch
import Foundation
import KilnCompiler
import KilnGraph

/// Evaluates fused SSA code one instruction at a time over a block of elements, block after
/// block: each instruction's register holds one block, so a whole chain stays in cache.
/// Registers and index tables are allocated once.
final class FusedEvaluator<T: KilnFloat>: @unchecked Sendable {
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
    /// How an input is read at the iteration's elements.
    enum Access {
        /// Element for element: the input has the iteration's shape.
        case direct
        /// One value for every element (a scalar, or a tensor of one element).
        case scalar
        /// Broadcast: the input's offset of each element.
        case table([Int])
        /// A gradient held as the rows a batch touched (zero elsewhere).
        case sparse(SparseRows<T>)
    }
    /// Per input: its base pointer and how it is read.
    let loads: [(UnsafeMutablePointer<T>, Access)]
    /// Threads that evaluate disjoint ranges of a large kernel, each with registers of its own.
    let workers: Int

    /// `sparse` gives loads (by input index) that read a `SparseRows` instead of memory.
    init(_ code: FusedCode, loads: [(UnsafeMutablePointer<T>, Shape)], scratch needScratch: Bool = false, result needResult: Bool = false,
         sparse: [Int: SparseRows<T>] = [:]) {
        self.code = code
        count = code.shape.count
        block = min(Self.blockSize, max(count, 1))
        // Large kernels (an embedding table's update) are bound by memory bandwidth, which one
        // core does not fill: split them over the cores, a block range each.
        workers = max(1, min(CPUThreads.count, count / Self.elementsPerWorker))
        registers = .allocate(capacity: max(block * code.code.count * workers, 1))
        scratch = .allocate(capacity: needScratch ? max(count, 1) : 1)
        result = .allocate(capacity: needResult ? max(count, 1) : 1)
        self.loads = loads.enumerated().map { i, load in
            let (base, shape) = load
            if let rows = sparse[i] { return (base, .sparse(rows)) }
            if shape == code.shape { return (base, .direct) }
            if shape.count == 1 { return (base, .scalar) }
            return (base, .table(stridedOffsets(code.shape, shape.broadcastStrides(to: code.shape))))
        }
    }

    /// Elements below which a kernel is not worth splitting over threads.
    static var elementsPerWorker: Int { 1 << 16 }

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
        if workers == 1 {
            run(blocks: 0..<(count + block - 1) / block, registers: registers, accumulator: accumulator, into: targets)
        } else {
            let blocks = (count + block - 1) / block, workers = self.workers
            // Each worker writes disjoint ranges of the targets and has registers of its own.
            let shared = UncheckedSendable((accumulator, targets))
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                run(blocks: blocks * w / workers..<blocks * (w + 1) / workers,
                    registers: registers + w * block * code.code.count, accumulator: shared.value.0, into: shared.value.1)
            }
        }
        return result
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func run(blocks: Range<Int>, registers: UnsafeMutablePointer<T>, accumulator: UnsafeMutablePointer<T>?,
                     into targets: [UnsafeMutablePointer<T>]) {
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<T>.self, capacity: max(code.code.count, 1)) { values in
            for b in blocks {
                let start = b * block, n = min(block, count - start)
                evaluate(start: start, n: n, registers: registers, accumulator: accumulator, values: values.baseAddress!)
                if targets.isEmpty {
                    (result + start).update(from: values[code.results[0]], count: n)
                } else {
                    // A result that is an input's own memory is saved first: writing one target
                    // may overwrite an input that another result passes through.
                    if targets.count > 1 {
                        for res in code.results where values[res] != registers + res * block {
                            (registers + res * block).update(from: values[res], count: n)
                            values[res] = registers + res * block
                        }
                    }
                    for (t, res) in zip(targets, code.results) where t + start != values[res] {
                        (t + start).update(from: values[res], count: n)
                    }
                }
            }
        }
    }

    /// Computes one block: `values[i]` points at instruction i's `n` values, which are the
    /// input's own memory for direct loads and the accumulator (nothing is copied) and the
    /// instruction's register otherwise.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func evaluate(start: Int, n: Int, registers: UnsafeMutablePointer<T>, accumulator: UnsafeMutablePointer<T>?,
                          values: UnsafeMutablePointer<UnsafeMutablePointer<T>>) {
        for (i, instr) in code.code.enumerated() {
            let r = registers + i * block
            values[i] = r
            switch instr {
            case .load(let j):
                let (base, access) = loads[j]
                switch access {
                case .direct: values[i] = base + start
                case .scalar: r.update(repeating: base[0], count: n)
                case .table(let table): for e in 0..<n { r[e] = base[table[start + e]] }
                case .sparse(let rows): rows.load(start: start, n: n, into: r)
                }
            case .accumulator:
                values[i] = accumulator! + start
            case .constant(let c):
                r.update(repeating: T(c), count: n)
            case let .unary(op, a):
                let x = values[a]
                switch op {
                case .neg: for e in 0..<n { r[e] = -x[e] }
                case .exp: for e in 0..<n { r[e] = T.exp(x[e]) }
                case .log: for e in 0..<n { r[e] = T.log(x[e]) }
                case .sqrt: for e in 0..<n { r[e] = T.squareRoot(x[e]) }
                case .tanh: T.tanh(x, into: r, count: n)
                case .sigmoid: for e in 0..<n { r[e] = 1 / (1 + T.exp(-x[e])) }
                case .relu: for e in 0..<n { r[e] = x[e] > 0 ? x[e] : 0 }
                }
            case let .binary(op, a, b):
                let x = values[a], y = values[b]
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

/// Pointers handed to worker threads that touch disjoint parts of them.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
