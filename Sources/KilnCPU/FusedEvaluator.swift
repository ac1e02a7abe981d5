import CVectorMath
import Foundation
import KilnCompiler
import KilnGraph

/// Evaluates fused SSA code over a block of elements at a time, block after block, one pass per
/// instruction over the block, so a whole chain stays in cache. Registers and index tables are
/// allocated once.
///
/// Passes are what cost (each reads and writes a block), so the plan keeps them few:
/// - values that are the same for every element (constants, scalar loads such as a learning
///   rate, and ops of those) are scalars, never filled into a block;
/// - a multiply whose only reader is an add or subtract is folded into it (`x * s + y`,
///   `y - x * s`, `x * s - y`, s a scalar or a block: one pass; rounded as the two ops, not
///   fused);
/// - a result is written straight into its output when nothing later reads what it overwrites
///   (an optimizer's update writes the parameter and its state in place);
/// - inputs of the iteration's shape are read in place.
/// The momentum update of a 20000 x 50 embedding table: 9 passes and 2 copies -> 3 passes.
final class FusedEvaluator<T: KilnFloat>: @unchecked Sendable {
    /// Elements per block: registers of all instructions together stay within a few hundred KiB.
    static var blockSize: Int { 2048 }
    /// Elements below which a kernel is not worth splitting over threads.
    static var elementsPerWorker: Int { 1 << 16 }

    let code: FusedCode
    let count: Int
    let block: Int
    /// Each worker's registers: `slotCount` blocks, instruction i's values in block `slots[i]`.
    /// A block is reused once every reader of its value has run, so a long chain keeps a few
    /// blocks in L1 rather than one per instruction (batch norm's channels-last gradient: 12
    /// blocks of 8 KiB, twice L1, ran at 15 GB/s).
    let registers: UnsafeMutablePointer<T>
    let slots: [Int]
    let slotCount: Int
    /// Space of the iteration shape's size for the caller (a matmul's product), when asked for:
    /// the code's accumulator.
    let scratch: UnsafeMutablePointer<T>
    /// The whole first result, for callers that need it all (a reduction's input), when no
    /// targets are given.
    let result: UnsafeMutablePointer<T>
    /// Whether `scratch` and `result` are the evaluator's own (not a shared workspace).
    let ownsSpace: Bool
    /// Where the results go, one per result (`[result]` when none were given), and the
    /// accumulator (`scratch`, or none).
    let targets: [UnsafeMutablePointer<T>]
    let accumulator: UnsafeMutablePointer<T>?
    /// How an input is read at the iteration's elements.
    enum Access {
        /// Element for element: the input has the iteration's shape.
        case direct
        /// One value for every element (a scalar, or a tensor of one element).
        case scalar
        /// Broadcast along leading axes (a bias row): element e reads `e % n`.
        case rows(Int)
        /// Broadcast along trailing axes, and leading ones (per-channel values of an image batch):
        /// element e reads `(e / times) % period`.
        case repeated(Int, period: Int)
        /// Broadcast otherwise: the input's offset of each element.
        case table([Int])
        /// A gradient held as the rows a batch touched (zero elsewhere).
        case sparse(SparseRows<T>)
    }
    /// Per input: its base pointer, how it is read, and how many elements its memory holds.
    let loads: [(base: UnsafeMutablePointer<T>, access: Access, extent: Int)]
    /// Threads that evaluate disjoint ranges of a large kernel, each with registers of its own.
    let workers: Int

    /// An operand of a pass: a block of values, or one value for every element.
    enum Arg { case vector(Int), uniform(Int) }
    /// How `x * s` and `y` combine in a folded pass.
    enum Form { case plus, from, minus }
    /// The work for one instruction, in instruction order; folded multiplies have none.
    enum Step {
        case uniform(Int)
        case direct(Int, load: Int)
        case accumulator(Int)
        case table(Int, load: Int, [Int])
        case repeated(Int, load: Int, Int, period: Int)
        case sparse(Int, SparseRows<T>)
        case unary(Int, UnaryOp, Int)
        case binary(Int, BinaryOp, Arg, Arg)
        /// `x * s + y`, `y - x * s` or `x * s - y`; with `relu`, relu of that (a relu that is
        /// the sum's only reader, in the same pass: batch norm's ReLU).
        case scaled(Int, Form, x: Int, s: Int, y: Int, relu: Bool)
        /// The same with a block of factors `s` (channels-last per-channel values).
        case scaledVectors(Int, Form, x: Int, s: Int, y: Int, relu: Bool)
    }
    let steps: [Step]
    /// Whether an instruction has one value for every element.
    let uniform: [Bool]
    /// Where each instruction's value is read: its own index, or its reader's for a folded multiply.
    let readAt: [Int]
    /// The instructions that read each instruction.
    let users: [[Int]]

    /// Per instruction: the target it writes straight into (an index into `targets`).
    let directTargets: [Int?]
    /// Instructions whose values repeat a row of `period` values along the iteration (a load
    /// broadcast along leading axes, a bias row or channels-last per-channel values, and ops of
    /// such rows and constants): computed by `prepare()` once a run, over a block and one row
    /// more, so that any block's values are these from its offset in the row; no block copies
    /// or recomputes them (channels-last batch norm's per-channel arithmetic).
    let period: [Int?]
    /// In instruction order, the instructions with a period.
    let periodic: [Int]
    let patterns: [UnsafeMutablePointer<T>?]
    /// The uniform instructions the same in every block (constants, scalar loads, ops of them),
    /// in order, and room for their values: `prepare()` computes those the patterns read.
    let invariants: [Int]
    let invariantValues: UnsafeMutablePointer<T>

    /// Results go to `targets` (one per result), or with none the first to `result`. With
    /// `scratch`, the caller writes the accumulator (a matmul's product) into `scratch` before
    /// each run. `sparse` gives loads (by input index) that read a `SparseRows` instead of memory.
    /// `workspace` (at least the code's shape of values) holds `scratch` or `result` instead of
    /// space of the evaluator's own: the executable's kernels run one at a time and share it.
    ///
    /// `minimumBlock`: the most elements a caller of `withValues` asks for at once.
    ///
    /// `alignRuns`: where inputs are broadcast along trailing axes (per-channel values of an
    /// image batch), blocks are cut so that none crosses a run of equal values, and such an
    /// input is one value per block, as a scalar is (`runBlock`). Only `run()` keeps to those
    /// blocks.
    init(_ code: FusedCode, loads: [(UnsafeMutablePointer<T>, Shape)], targets: [UnsafeMutablePointer<T>] = [],
         scratch needScratch: Bool = false, sparse: [Int: SparseRows<T>] = [:], workspace: UnsafeMutablePointer<T>? = nil,
         alignRuns: Bool = false, minimumBlock: Int = 0) {
        self.code = code
        count = code.shape.count
        let shape = code.shape
        let read = Set(code.code.compactMap { instr -> Int? in if case .load(let j) = instr { return j }; return nil })
        let accesses: [Access] = loads.enumerated().map { i, load in
            let s = load.1
            if !read.contains(i) || sparse[i] != nil || s == shape { return .direct }
            if s.count == 1 { return .scalar }
            return Self.broadcast(stridedOffsets(shape, s.broadcastStrides(to: shape)), inputCount: s.count)
        }
        let runBlock = alignRuns ? Self.runBlock(accesses.compactMap { if case let .repeated(n, _) = $0 { return n }; return nil }) : nil
        // Loads repeating a short row (channels-last per-channel values) each hold a block of
        // their pattern in L1 beside the registers: smaller blocks keep all of it there
        // (batch norm's channels-last gradient: 2.5 -> 1.45 ms a step at 512 instead of 2048).
        let rowLoads = accesses.contains { if case .rows(let n) = $0 { return n <= 512 }; return false }
        block = runBlock ?? min(max(rowLoads ? 512 : Self.blockSize, minimumBlock), max(count, 1))
        // Large kernels (an embedding table's update) are bound by memory bandwidth, which one
        // core does not fill: split them over the cores, a block range each.
        workers = max(1, min(WorkerPool.shared.threads, count / Self.elementsPerWorker))
        // One of the two is needed at most: a matmul's product, or a reduction's input.
        let shared = workspace.flatMap { needScratch != targets.isEmpty ? $0 : nil }
        ownsSpace = shared == nil
        scratch = shared ?? .allocate(capacity: needScratch ? max(count, 1) : 1)
        result = shared ?? .allocate(capacity: targets.isEmpty ? max(count, 1) : 1)
        self.targets = targets.isEmpty ? [result] : targets
        accumulator = needScratch ? scratch : nil
        // A matmul's operands are loads its epilogue need not read: no index table for those.
        self.loads = loads.enumerated().map { i, load in
            let (base, s) = load
            if let rows = sparse[i], read.contains(i) { return (base, .sparse(rows), s.count) }
            return (base, accesses[i], s.count)
        }

        let instrs = code.code
        var uniform = [Bool](repeating: false, count: instrs.count)
        var users = [[Int]](repeating: [], count: instrs.count)
        for (i, instr) in instrs.enumerated() {
            switch instr {
            case .load(let j):
                switch self.loads[j].access {
                case .scalar: uniform[i] = true
                case .repeated: uniform[i] = runBlock != nil
                default: break
                }
            case .accumulator: break
            case .constant: uniform[i] = true
            case let .unary(_, a): uniform[i] = uniform[a]; users[a].append(i)
            case let .binary(_, a, b): uniform[i] = uniform[a] && uniform[b]; users[a].append(i); users[b].append(i)
            }
        }
        // Uniform values the same in every block (not a per-block load of repeated values).
        var invariant = [Bool](repeating: false, count: instrs.count)
        var period = [Int?](repeating: nil, count: instrs.count)
        for (i, instr) in instrs.enumerated() {
            switch instr {
            case .load(let j):
                switch self.loads[j].access {
                case .scalar: invariant[i] = true
                case .rows(let n): period[i] = n
                default: break
                }
            case .constant: invariant[i] = true
            case .accumulator: break
            case let .unary(_, a): (invariant[i], period[i]) = (invariant[a], period[a])
            case let .binary(_, a, b):
                invariant[i] = invariant[a] && invariant[b]
                if let n = period[a] ?? period[b], period[a] ?? n == n, period[b] ?? n == n,
                   period[a] != nil || invariant[a], period[b] != nil || invariant[b] {
                    period[i] = n
                }
            }
        }
        let results = Set(code.results)
        // A multiply read once by an add or subtract of another block: one pass for both.
        func foldable(_ m: Int, into j: Int) -> (x: Int, s: Int)? {
            guard !results.contains(m), users[m] == [j], period[m] == nil, case let .binary(.mul, p, q) = instrs[m] else { return nil }
            return uniform[p] ? (q, p) : (p, q)
        }
        var folded = Set<Int>()
        var readAt = Array(instrs.indices)
        var steps: [Step] = []
        for (i, instr) in instrs.enumerated() {
            if uniform[i] { steps.append(.uniform(i)); continue }
            if period[i] != nil { continue }
            switch instr {
            case .load(let j):
                switch self.loads[j].access {
                case .direct: steps.append(.direct(i, load: j))
                case .table(let t): steps.append(.table(i, load: j, t))
                case .rows: break
                case let .repeated(n, period): steps.append(.repeated(i, load: j, n, period: period))
                case .sparse(let rows): steps.append(.sparse(i, rows))
                case .scalar: break
                }
            case .accumulator: steps.append(.accumulator(i))
            case .constant: break
            case let .unary(op, a): steps.append(.unary(i, op, a))
            case let .binary(op, a, b):
                if op == .add || op == .sub, !uniform[a], !uniform[b] {
                    if let (x, s) = foldable(a, into: i) {
                        folded.insert(a)
                        readAt[a] = i
                        let form: Form = op == .add ? .plus : .minus
                        steps.append(uniform[s] ? .scaled(i, form, x: x, s: s, y: b, relu: false) : .scaledVectors(i, form, x: x, s: s, y: b, relu: false))
                        continue
                    }
                    if let (x, s) = foldable(b, into: i) {
                        folded.insert(b)
                        readAt[b] = i
                        let form: Form = op == .add ? .plus : .from
                        steps.append(uniform[s] ? .scaled(i, form, x: x, s: s, y: a, relu: false) : .scaledVectors(i, form, x: x, s: s, y: a, relu: false))
                        continue
                    }
                }
                steps.append(.binary(i, op, uniform[a] ? .uniform(a) : .vector(a), uniform[b] ? .uniform(b) : .vector(b)))
            }
        }
        // The folded multiplies were appended as steps before their readers were seen.
        steps = steps.filter {
            if case let .binary(i, _, _, _) = $0 { return !folded.contains(i) }
            return true
        }
        // A relu that alone reads a scaled sum (not itself a result), and comes right after it,
        // is applied in its pass (nothing computed between them, so registers are assigned as
        // for the two passes).
        var merged: [Step] = []
        for step in steps {
            if case let .unary(j, .relu, a) = step, j == a + 1, let last = merged.last, !results.contains(a), users[a] == [j] {
                switch last {
                case let .scaled(i, form, x, s, y, false) where i == a:
                    merged[merged.count - 1] = .scaled(j, form, x: x, s: s, y: y, relu: true)
                    readAt[a] = j
                    continue
                case let .scaledVectors(i, form, x, s, y, false) where i == a:
                    merged[merged.count - 1] = .scaledVectors(j, form, x: x, s: s, y: y, relu: true)
                    readAt[a] = j
                    continue
                default: break
                }
            }
            merged.append(step)
        }
        self.steps = merged
        self.uniform = uniform
        self.readAt = readAt
        self.users = users
        directTargets = Self.planTargets(code: code, steps: self.steps, loads: self.loads, users: users, readAt: readAt,
                                         accumulator: accumulator, targets: self.targets)
        self.period = period
        periodic = instrs.indices.filter { period[$0] != nil }
        invariants = periodic.isEmpty ? [] : instrs.indices.filter { invariant[$0] }
        invariantValues = .allocate(capacity: max(instrs.count, 1))
        let block = self.block
        patterns = instrs.indices.map { i in period[i].map { .allocate(capacity: block + $0) } }
        (slots, slotCount) = Self.assignSlots(steps: self.steps, users: users, readAt: readAt, results: code.results, count: instrs.count)
        registers = .allocate(capacity: max(block * slotCount * workers, 1))
    }

    /// A register block for each instruction a pass computes, and for each result (which may
    /// be saved or filled into its own); a block is free again after its value's last reader
    /// (the step a folded multiply's reader runs at), results never.
    static func assignSlots(steps: [Step], users: [[Int]], readAt: [Int], results: [Int], count: Int) -> (slots: [Int], count: Int) {
        var needs = [Bool](repeating: false, count: count)
        for step in steps {
            switch step {
            case .table(let i, _, _), .repeated(let i, _, _, _), .sparse(let i, _), .unary(let i, _, _), .binary(let i, _, _, _),
                 .scaled(let i, _, _, _, _, _), .scaledVectors(let i, _, _, _, _, _):
                needs[i] = true
            case .uniform, .direct, .accumulator: break
            }
        }
        for r in results { needs[r] = true }
        let kept = Set(results)
        var lastRead = [Int](repeating: -1, count: count)
        for i in 0..<count { lastRead[i] = users[i].map { readAt[$0] }.max() ?? i }
        var slots = [Int](repeating: 0, count: count), free: [Int] = [], total = 0
        // (slot, free after this instruction)
        var busy: [(slot: Int, until: Int)] = []
        for i in 0..<count where needs[i] {
            busy.removeAll { entry in
                guard entry.until < i else { return false }
                free.append(entry.slot)
                return true
            }
            if let s = free.popLast() { slots[i] = s } else { slots[i] = total; total += 1 }
            busy.append((slots[i], kept.contains(i) ? Int.max : lastRead[i]))
        }
        return (slots, Swift.max(total, 1))
    }

    /// Computes the periodic instructions' patterns from the inputs' current values: `run()`
    /// does it; callers of `withValues` must, once per run before the first call. The same
    /// passes as a block's, so the same values.
    func prepare() {
        guard !periodic.isEmpty else { return }
        let scalar = invariantValues
        for i in invariants {
            switch code.code[i] {
            case .load(let j): scalar[i] = loads[j].base[0]
            case .constant(let c): scalar[i] = T(c)
            case let .unary(op, a): scalar[i] = Self.apply(op, scalar[a])
            case let .binary(op, a, b): scalar[i] = Self.apply(op, scalar[a], scalar[b])
            case .accumulator: break
            }
        }
        for i in periodic {
            let p = patterns[i]!, n = block + period[i]!
            switch code.code[i] {
            case .load(let j):
                let row = period[i]!
                var e = 0
                while e < n {
                    let c = min(row, n - e)
                    (p + e).update(from: loads[j].base, count: c)
                    e += c
                }
            case let .unary(op, a): Self.unaryPass(op, p, patterns[a]!, n)
            case let .binary(op, a, b):
                switch (patterns[a], patterns[b]) {
                case let (x?, y?): Self.binary(op, p, x, y, n)
                case let (x?, nil): Self.binary(op, p, x, scalar[b], n)
                case let (nil, y?): Self.binary(op, p, scalar[a], y, n)
                case (nil, nil): break
                }
            case .constant, .accumulator: break
            }
        }
    }

    /// Blocks that no run of `runs` (the lengths of equal values of inputs broadcast along
    /// trailing axes) crosses: the shortest run, or a part of it that divides it, when every
    /// run is a multiple of it; nil where there is none, or blocks would be too short for their
    /// passes to pay (the CNN's runs: 784 and 196).
    static func runBlock(_ runs: [Int]) -> Int? {
        guard let q = runs.min(), q >= 128, runs.allSatisfy({ $0 % q == 0 }) else { return nil }
        guard let parts = (1...q).first(where: { q % $0 == 0 && q / $0 <= blockSize }) else { return nil }
        return q / parts >= 128 ? q / parts : nil
    }

    /// A broadcast read as one of the two simple patterns when its offsets follow one.
    static func broadcast(_ table: [Int], inputCount n: Int) -> Access {
        let count = table.count
        if n > 0, count % n == 0, table.indices.allSatisfy({ table[$0] == $0 % n }) { return .rows(n) }
        // Runs of `times` equal offsets, cycling through the input (`times` is the first run's length).
        let times = table.firstIndex { $0 != table[0] } ?? count
        if n > 0, times > 0, count % (times * n) == 0, table.indices.allSatisfy({ table[$0] == ($0 / times) % n }) {
            return .repeated(times, period: n)
        }
        return .table(table)
    }

    deinit {
        for p in patterns { p?.deallocate() }
        invariantValues.deallocate()
        registers.deallocate()
        if ownsSpace {
            scratch.deallocate()
            result.deallocate()
        }
    }

    /// Decides which results are written straight into their targets: those computed by a pass
    /// (not an input read in place), whose target is either apart from every input or is
    /// exactly an input of the iteration's shape that nothing reads after that pass.
    private static func planTargets(code: FusedCode, steps: [Step], loads: [(base: UnsafeMutablePointer<T>, access: Access, extent: Int)],
                                    users: [[Int]], readAt: [Int], accumulator: UnsafeMutablePointer<T>?,
                                    targets: [UnsafeMutablePointer<T>]) -> [Int?] {
        let count = code.shape.count
        var direct = [Int?](repeating: nil, count: code.code.count)
        let computed = Set(steps.compactMap { step -> Int? in
            switch step {
            case .table(let i, _, _), .repeated(let i, _, _, _), .sparse(let i, _), .unary(let i, _, _), .binary(let i, _, _, _),
                 .scaled(let i, _, _, _, _, _), .scaledVectors(let i, _, _, _, _, _): return i
            case .uniform, .direct, .accumulator: return nil
            }
        })
        // The memory each instruction reads in place: (instruction, start, elements, read element for element).
        var reads: [(instr: Int, start: UnsafeMutablePointer<T>, extent: Int, inPlace: Bool)] = []
        for (k, instr) in code.code.enumerated() {
            switch instr {
            case .load(let j):
                let load = loads[j]
                switch load.access {
                case .sparse: continue
                case .direct: reads.append((k, load.base, load.extent, true))
                default: reads.append((k, load.base, load.extent, false))
                }
            case .accumulator:
                if let accumulator { reads.append((k, accumulator, count, true)) }
            default: continue
            }
        }
        let results = Set(code.results)
        for (t, i) in zip(targets.indices, code.results) where computed.contains(i) && direct[i] == nil {
            let target = targets[t]
            let safe = reads.allSatisfy { read in
                if read.start + read.extent <= target || target + count <= read.start { return true }
                // The same memory, read element for element: safe when every reader of it
                // reads at or before this pass and the input is not passed through as a result.
                guard read.inPlace, read.start == target, read.extent == count, !results.contains(read.instr) else { return false }
                return users[read.instr].allSatisfy { readAt[$0] <= i }
            }
            if safe { direct[i] = t }
        }
        return direct
    }

    /// Runs the code into its targets; returns `result`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @discardableResult
    func run() -> UnsafeMutablePointer<T> {
        prepare()
        let blocks = (count + block - 1) / block, workers = self.workers
        // Each worker writes disjoint ranges of the targets and has registers of its own.
        WorkerPool.shared.run(parts: workers) { w in
            run(blocks: blocks * w / workers..<blocks * (w + 1) / workers,
                registers: registers + w * block * slotCount)
        }
        return result
    }

    /// Computes elements `start..<start + n` (n at most `block`) in worker `worker`'s registers
    /// and hands `body` each result's values, none written to a target: a reduction adds them
    /// up as they come (its input never stored whole). A result with one value for every
    /// element is filled into its register, as `run` fills it into its target.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func withValues(start: Int, count n: Int, worker: Int, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<T>>) -> Void) {
        precondition(n <= block && worker < workers, "withValues: \(n) values in worker \(worker) exceed blocks of \(block) in \(workers)")
        let k = code.code.count, own = registers + worker * block * slotCount
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<T>.self, capacity: max(k, 1)) { values in
            withUnsafeTemporaryAllocation(of: T.self, capacity: max(k, 1)) { scalars in
                let (values, scalars) = (values.baseAddress!, scalars.baseAddress!)
                evaluate(start: start, n: n, registers: own, values: values, scalars: scalars, direct: false)
                for res in code.results where uniform[res] {
                    values[res] = own + slots[res] * block
                    values[res].update(repeating: scalars[res], count: n)
                }
                body(values)
            }
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func run(blocks: Range<Int>, registers: UnsafeMutablePointer<T>) {
        let n = code.code.count
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<T>.self, capacity: max(n, 1)) { values in
            withUnsafeTemporaryAllocation(of: T.self, capacity: max(n, 1)) { scalars in
                let values = values.baseAddress!, scalars = scalars.baseAddress!
                for b in blocks {
                    let start = b * block, m = min(block, count - start)
                    evaluate(start: start, n: m, registers: registers, values: values, scalars: scalars)
                    // A result that is an input's own memory is saved first: writing one target
                    // may overwrite an input that another result passes through.
                    if targets.count > 1 {
                        for res in code.results where !uniform[res] && values[res] != registers + slots[res] * block
                            && directTargets[res].map({ targets[$0] + start }) != values[res] {
                            (registers + slots[res] * block).update(from: values[res], count: m)
                            values[res] = registers + slots[res] * block
                        }
                    }
                    // (A uniform result has no block pointer: it is always filled.)
                    for (t, res) in zip(targets, code.results) where uniform[res] || t + start != values[res] {
                        if uniform[res] { (t + start).update(repeating: scalars[res], count: m) }
                        else { (t + start).update(from: values[res], count: m) }
                    }
                }
            }
        }
    }

    /// Computes one block: `values[i]` points at instruction i's `n` values (an input's own
    /// memory for inputs read in place and the accumulator, the output it is written straight
    /// into, or its register); `scalars[i]` holds the value of a uniform instruction.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func evaluate(start: Int, n: Int, registers: UnsafeMutablePointer<T>,
                          values: UnsafeMutablePointer<UnsafeMutablePointer<T>>, scalars: UnsafeMutablePointer<T>, direct: Bool = true) {
        func out(_ i: Int) -> UnsafeMutablePointer<T> {
            let r = (direct ? directTargets[i] : nil).map { targets[$0] + start } ?? registers + slots[i] * block
            values[i] = r
            return r
        }
        for i in periodic { values[i] = patterns[i]! + start % period[i]! }
        for step in steps {
            switch step {
            case .uniform(let i):
                switch code.code[i] {
                case .load(let j):
                    // A per-channel value is one value per block where blocks keep within runs.
                    if case let .repeated(times, period) = loads[j].access { scalars[i] = loads[j].base[(start / times) % period] }
                    else { scalars[i] = loads[j].base[0] }
                case .constant(let c): scalars[i] = T(c)
                case let .unary(op, a): scalars[i] = Self.apply(op, scalars[a])
                case let .binary(op, a, b): scalars[i] = Self.apply(op, scalars[a], scalars[b])
                case .accumulator: break
                }
            case let .direct(i, j): values[i] = loads[j].base + start
            case .accumulator(let i): values[i] = accumulator! + start
            case let .repeated(i, j, times, period):
                let r = out(i), base = loads[j].base
                var e = 0
                while e < n {
                    let k = (start + e) / times, c = min((k + 1) * times - start - e, n - e)
                    (r + e).update(repeating: base[k % period], count: c)
                    e += c
                }
            case let .table(i, j, table):
                let r = out(i), base = loads[j].base
                for e in 0..<n { r[e] = base[table[start + e]] }
            case let .sparse(i, rows): rows.load(start: start, n: n, into: out(i))
            case let .unary(i, op, a):
                Self.unaryPass(op, out(i), values[a], n)
            case let .binary(i, op, a, b):
                let r = out(i)
                switch (a, b) {
                case let (.vector(a), .vector(b)): Self.binary(op, r, values[a], values[b], n)
                case let (.vector(a), .uniform(b)): Self.binary(op, r, values[a], scalars[b], n)
                case let (.uniform(a), .vector(b)): Self.binary(op, r, scalars[a], values[b], n)
                case (.uniform, .uniform): break   // uniform instructions have no pass
                }
            case let .scaled(i, form, x, s, y, relu):
                let r = out(i)
                Self.scaled(form, r, values[x], scalars[s], values[y], n, relu: relu)
            case let .scaledVectors(i, form, x, s, y, relu):
                let r = out(i)
                Self.scaledVectors(form, r, values[x], values[s], values[y], n, relu: relu)
            }
        }
    }
}

// The passes. `r` may be exactly one of the inputs (an update in place), never a partial
// overlap: the SIMD loops load a chunk before storing it, so they need no aliasing check
// (a plain loop's vectorized form is skipped when its check sees the same memory).
extension FusedEvaluator {
    static func apply(_ op: UnaryOp, _ x: T) -> T {
        switch op {
        case .neg: return -x
        case .exp: return T.exp(x)
        case .log: return T.log(x)
        case .sqrt: return T.squareRoot(x)
        case .tanh:
            // The same approximation as a block's (for Float), so a value does not depend on
            // whether it is uniform.
            var x = x, r = x
            T.tanh(&x, into: &r, count: 1)
            return r
        case .sigmoid: return 1 / (1 + T.exp(-x))
        case .relu: return x > 0 ? x : 0
        case .gelu:
            var v = x, r = x
            gelu(&v, &r, 1)
            return r
        case .geluDerivative:
            var v = x, r = x
            geluDerivative(&v, &r, 1)
            return r
        case .erf: return T.erf(x)
        }
    }

    /// GELU's tanh approximation over `n` values, with the block tanh; `r` may be `x`. Float:
    /// the same steps in C (CVectorMath), the same bits.
    static func gelu(_ x: UnsafePointer<T>, _ r: UnsafeMutablePointer<T>, _ n: Int) {
        if T.self == Float.self { return kiln_gelu_f32(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), float(r), n) }
        withGeluTanh(x, n) { t in for e in 0..<n { r[e] = 0.5 * x[e] * (1 + t[e]) } }
    }

    /// GELU's derivative over `n` values, with the block tanh; `r` may be `x`. Float: in C, as
    /// `gelu`.
    static func geluDerivative(_ x: UnsafePointer<T>, _ r: UnsafeMutablePointer<T>, _ n: Int) {
        if T.self == Float.self {
            return kiln_gelu_derivative_f32(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), float(r), n)
        }
        withGeluTanh(x, n) { u in
            let (a, c): (T, T) = (0.044715, 0.7978845608028654)
            for e in 0..<n {
                let (v, t) = (x[e], u[e])
                r[e] = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * a * v * v)
            }
        }
    }

    /// tanh(√(2/π)·(x + 0.044715·x³)) of `n` values, with the block tanh, handed to `body`.
    private static func withGeluTanh(_ x: UnsafePointer<T>, _ n: Int, _ body: (UnsafePointer<T>) -> Void) {
        withUnsafeTemporaryAllocation(of: T.self, capacity: n) { u in
            let (a, c): (T, T) = (0.044715, 0.7978845608028654)
            for e in 0..<n { u[e] = c * (x[e] + a * x[e] * x[e] * x[e]) }
            T.tanh(u.baseAddress!, into: u.baseAddress!, count: n)
            body(u.baseAddress!)
        }
    }

    static func apply(_ op: BinaryOp, _ x: T, _ y: T) -> T {
        switch op {
        case .add: return x + y
        case .sub: return x - y
        case .mul: return x * y
        case .div: return x / y
        case .maximum: return x >= y ? x : y
        case .minimum: return x <= y ? x : y
        case .greater: return x > y ? 1 : 0
        case .equal: return x == y ? 1 : 0
        case .select: return x != 0 ? y : 0
        }
    }

    // Float: the C loops of CVectorMath, cloned for the CPU's widest vectors (the same bits).
    // Double: each arithmetic case is its own loop over 16-element chunks (closures passed to a
    // shared loop were not inlined: a call per chunk); the tail and the comparisons go element
    // by element.
    static func binary(_ op: BinaryOp, _ r: UnsafeMutablePointer<T>, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int) {
        if T.self == Float.self { return kiln_binary_vv_f32(op.code, float(r), float(x), float(y), n) }
        let chunks = stride(from: 0, to: n & ~15, by: 16)
        switch op {
        case .add: for e in chunks { put(r, e, get(x, e) + get(y, e)) }
        case .sub: for e in chunks { put(r, e, get(x, e) - get(y, e)) }
        case .mul: for e in chunks { put(r, e, get(x, e) * get(y, e)) }
        case .div: for e in chunks { put(r, e, get(x, e) / get(y, e)) }
        case .maximum: for e in 0..<n { r[e] = x[e] >= y[e] ? x[e] : y[e] }
        case .minimum: for e in 0..<n { r[e] = x[e] <= y[e] ? x[e] : y[e] }
        case .greater: for e in 0..<n { r[e] = x[e] > y[e] ? 1 : 0 }
        case .equal: for e in 0..<n { r[e] = x[e] == y[e] ? 1 : 0 }
        case .select: for e in 0..<n { r[e] = x[e] != 0 ? y[e] : 0 }
        }
        if op.isArithmetic { for e in n & ~15..<n { r[e] = apply(op, x[e], y[e]) } }
    }

    static func binary(_ op: BinaryOp, _ r: UnsafeMutablePointer<T>, _ x: UnsafeMutablePointer<T>, _ y: T, _ n: Int) {
        if T.self == Float.self { return kiln_binary_vs_f32(op.code, float(r), float(x), unsafeBitCast(y, to: Float.self), n) }
        let chunks = stride(from: 0, to: n & ~15, by: 16)
        switch op {
        case .add: for e in chunks { put(r, e, get(x, e) + y) }
        case .sub: for e in chunks { put(r, e, get(x, e) - y) }
        case .mul: for e in chunks { put(r, e, get(x, e) * y) }
        case .div: for e in chunks { put(r, e, get(x, e) / y) }
        case .maximum: for e in 0..<n { r[e] = x[e] >= y ? x[e] : y }
        case .minimum: for e in 0..<n { r[e] = x[e] <= y ? x[e] : y }
        case .greater: for e in 0..<n { r[e] = x[e] > y ? 1 : 0 }
        case .equal: for e in 0..<n { r[e] = x[e] == y ? 1 : 0 }
        case .select: for e in 0..<n { r[e] = x[e] != 0 ? y : 0 }
        }
        if op.isArithmetic { for e in n & ~15..<n { r[e] = apply(op, x[e], y) } }
    }

    static func binary(_ op: BinaryOp, _ r: UnsafeMutablePointer<T>, _ x: T, _ y: UnsafeMutablePointer<T>, _ n: Int) {
        if T.self == Float.self { return kiln_binary_sv_f32(op.code, float(r), unsafeBitCast(x, to: Float.self), float(y), n) }
        let chunks = stride(from: 0, to: n & ~15, by: 16)
        switch op {
        case .add: for e in chunks { put(r, e, x + get(y, e)) }
        case .sub: for e in chunks { put(r, e, x - get(y, e)) }
        case .mul: for e in chunks { put(r, e, x * get(y, e)) }
        case .div: for e in chunks { put(r, e, x / get(y, e)) }
        case .maximum: for e in 0..<n { r[e] = x >= y[e] ? x : y[e] }
        case .minimum: for e in 0..<n { r[e] = x <= y[e] ? x : y[e] }
        case .greater: for e in 0..<n { r[e] = x > y[e] ? 1 : 0 }
        case .equal: for e in 0..<n { r[e] = x == y[e] ? 1 : 0 }
        case .select: for e in 0..<n { r[e] = x != 0 ? y[e] : 0 }
        }
        if op.isArithmetic { for e in n & ~15..<n { r[e] = apply(op, x, y[e]) } }
    }

    /// `x * s + y`, `y - x * s` or `x * s - y`, each product rounded before the sum; with
    /// `relu`, relu of each (Float: in the same pass).
    static func scaled(_ form: Form, _ r: UnsafeMutablePointer<T>, _ x: UnsafeMutablePointer<T>, _ s: T, _ y: UnsafeMutablePointer<T>, _ n: Int,
                       relu: Bool = false) {
        if T.self == Float.self {
            let code: Int32 = (form == .plus ? 0 : form == .from ? 1 : 2) + (relu ? 4 : 0)
            return kiln_scaled_f32(code, float(r), float(x), unsafeBitCast(s, to: Float.self), float(y), n)
        }
        let chunks = stride(from: 0, to: n & ~15, by: 16)
        switch form {
        case .plus: for e in chunks { put(r, e, get(x, e) * s + get(y, e)) }
        case .from: for e in chunks { put(r, e, get(y, e) - get(x, e) * s) }
        case .minus: for e in chunks { put(r, e, get(x, e) * s - get(y, e)) }
        }
        for e in n & ~15..<n {
            switch form {
            case .plus: r[e] = x[e] * s + y[e]
            case .from: r[e] = y[e] - x[e] * s
            case .minus: r[e] = x[e] * s - y[e]
            }
        }
        if relu { unaryPass(.relu, r, r, n) }
    }

    static func unaryPass(_ op: UnaryOp, _ r: UnsafeMutablePointer<T>, _ x: UnsafeMutablePointer<T>, _ n: Int) {
        // Float: negation, square roots (Adam's, over a whole parameter) and relu in C, cloned for
        // the widest vectors (Swift's loops were SSE2 at best, square roots one at a time).
        if T.self == Float.self, let code: Int32 = op == .neg ? 0 : op == .sqrt ? 1 : op == .relu ? 2 : nil {
            return kiln_unary_f32(code, float(r), float(x), n)
        }
        switch op {
        case .neg: negate(r, x, n)
        case .exp: T.exp(x, into: r, count: n)
        case .log: for e in 0..<n { r[e] = T.log(x[e]) }
        case .sqrt: for e in 0..<n { r[e] = T.squareRoot(x[e]) }
        case .tanh: T.tanh(x, into: r, count: n)
        case .sigmoid: for e in 0..<n { r[e] = 1 / (1 + T.exp(-x[e])) }
        case .relu: for e in 0..<n { r[e] = x[e] > 0 ? x[e] : 0 }
        case .gelu: gelu(x, r, n)
        case .geluDerivative: geluDerivative(x, r, n)
        case .erf: for e in 0..<n { r[e] = T.erf(x[e]) }
        }
    }

    static func scaledVectors(_ form: Form, _ r: UnsafeMutablePointer<T>, _ x: UnsafeMutablePointer<T>, _ s: UnsafeMutablePointer<T>,
                              _ y: UnsafeMutablePointer<T>, _ n: Int, relu: Bool = false) {
        if T.self == Float.self {
            let code: Int32 = (form == .plus ? 0 : form == .from ? 1 : 2) + (relu ? 4 : 0)
            return kiln_scaled_vv_f32(code, float(r), float(x), float(s), float(y), n)
        }
        for e in 0..<n {
            let p = x[e] * s[e]
            switch form {
            case .plus: r[e] = p + y[e]
            case .from: r[e] = y[e] - p
            case .minus: r[e] = p - y[e]
            }
        }
        if relu { unaryPass(.relu, r, r, n) }
    }

    static func negate(_ r: UnsafeMutablePointer<T>, _ x: UnsafeMutablePointer<T>, _ n: Int) {
        for e in stride(from: 0, to: n & ~15, by: 16) { put(r, e, -get(x, e)) }
        for e in n & ~15..<n { r[e] = -x[e] }
    }

    /// `p` as the Float pointer it is where T is Float.
    @inline(__always) static func float(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
    }

    @inline(__always) static func get(_ p: UnsafeMutablePointer<T>, _ e: Int) -> SIMD16<T> {
        UnsafeRawPointer(p + e).loadUnaligned(as: SIMD16<T>.self)
    }

    @inline(__always) static func put(_ p: UnsafeMutablePointer<T>, _ e: Int, _ v: SIMD16<T>) {
        UnsafeMutableRawPointer(p + e).storeBytes(of: v, as: SIMD16<T>.self)
    }
}

extension BinaryOp {
    /// add, sub, mul, div: the ops with a SIMD loop.
    var isArithmetic: Bool { self == .add || self == .sub || self == .mul || self == .div }

    /// The op's code for CVectorMath's passes (vector_math.h).
    var code: Int32 {
        switch self {
        case .add: 0
        case .sub: 1
        case .mul: 2
        case .div: 3
        case .maximum: 4
        case .minimum: 5
        case .greater: 6
        case .equal: 7
        case .select: 8
        }
    }
}
