import CVectorMath
import Foundation
import KilnCompiler
import KilnGraph

/// Runs a `Program` on the host, computing every float tensor in `T`.
///
/// Everything a step needs (buffers, index tables, scratch registers) is allocated when the
/// program is loaded; `run` then only copies feeds in and fetches out.
public final class CPUExecutable<T: KilnFloat>: Executable {
    public let program: Program
    public private(set) var counters = ExecutionCounters()
    private var buffers: [UnsafeMutableRawPointer] = []
    /// Space the kernels use one after another (a fused matmul's product, a reduction's input).
    private let workspace: UnsafeMutablePointer<T>
    private var steps: [CPUStep<T>] = []
    /// Check every kernel's outputs for NaN and Inf (default: `CompilerSettings.checkNumerics`,
    /// `KILN_CHECK_NUMERICS=1`).
    public var checkNumerics: Bool
    /// Per-kernel wall time (`CPUSettings.profile`, `KILN_PROFILE=1`), printed when the
    /// executable is released.
    private let profiling: Bool
    private var nanoseconds: [UInt64] = []
    private let allReduce: CPUAllReduce
    /// scatterAdd kernels that sum into touched rows (their dense output is never written).
    private var sparseKernels: Set<Int> = []

    /// Loads `program`, which must have been compiled for `T` (`CompileOptions.realType`).
    /// - Parameter blas: run matmuls through OpenBLAS; false keeps the plain reference loops.
    /// - Parameter collective: the processes the program's all-reduces sum over (none: this one).
    /// - Parameter sparseRows: hand an embedding table's update its gradient as the rows the
    ///   batch touched (`SparseRows`); default: with `blas`, the fast mode.
    /// - Parameter settings: the backend's settings; nil: `CPUSettings.fromEnvironment()`.
    public init(program: Program, blas: Bool = true, collective: Collective? = nil, sparseRows: Bool? = nil,
                settings: CPUSettings? = nil) throws {
        guard program.realType.byteSize == MemoryLayout<T>.size else {
            throw KilnError.invalidArgument(op: "CPUExecutable", message: "program computes in \(program.realType), not \(T.self)")
        }
        self.program = program
        let resolved = try settings ?? CPUSettings.fromEnvironment()
        profiling = resolved.profile
        checkNumerics = try CompilerSettings.fromEnvironment().checkNumerics
        for decl in program.buffers {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(decl.bytes, 64), alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: max(decl.bytes, 64))
            buffers.append(p)
            counters.allocations += 1
        }
        for (loc, value) in program.constants {
            (buffers[loc.buffer] + loc.byteOffset).assumingMemoryBound(to: T.self).pointee = T(value)
        }
        allReduce = CPUAllReduce(program: program, collective: collective)
        counters.allocations += program.buckets.count
        // Embedding gradients as touched rows, except in the reference (plain loops) mode.
        var sparseOut: [Int: SparseRows<T>] = [:], sparseIn: [Int: (Int, SparseRows<T>)] = [:]
        if sparseRows ?? blas {
            for (s, (reader, input)) in SparseRows<T>.candidates(in: program) {
                let k = program.kernels[s]
                let rows = SparseRows<T>(rows: k.outputs[0].shape[0], dim: k.outputs[0].shape[1], positions: k.inputs[0].shape.count)
                sparseOut[s] = rows
                sparseIn[reader] = (input, rows)
                counters.allocations += 1
            }
        }
        sparseKernels = Set(sparseOut.keys)
        workspace = .allocate(capacity: max(program.kernels.map(CPUStep<T>.workspaceCount).max() ?? 1, 1))
        counters.allocations += 1
        steps = try program.kernels.enumerated().map { i, k in
            try CPUStep<T>(kernel: k, buffers: buffers, blas: blas, allReduce: allReduce, sparseOut: sparseOut[i],
                           sparseIn: sparseIn[i].map { (input: $0.0, rows: $0.1) }, workspace: workspace)
        }
        counters.allocations += steps.count
        counters.builds += steps.count
        nanoseconds = [UInt64](repeating: 0, count: steps.count)
        pairs = Self.chunkedPairs(program, steps, chunkBytes: resolved.chunkBytes)
    }

    /// Kernel k and k + 1 run chunk by chunk of images: an unfold (a "same" 3 x 3 one, or any
    /// over channels-last images) and the matmul that reads its patches as rows (a convolution's product), or a matmul and the fold that
    /// reads its rows as patches (its input gradient). Where the patches exceed `chunkBytes`
    /// (conv2's: 27.6 MiB), each chunk's are read back from cache instead of memory. Every
    /// value is computed as it is unchunked.
    struct ChunkedPair {
        let unfoldFirst: Bool
        let chunks: [Range<Int>]
        let rowsPerImage: Int
    }
    private(set) var pairs: [Int: ChunkedPair] = [:]

    private static func chunkedPairs(_ program: Program, _ steps: [CPUStep<T>], chunkBytes: Int) -> [Int: ChunkedPair] {
        var pairs: [Int: ChunkedPair] = [:]
        guard chunkBytes > 0 else { return pairs }
        var k = 0
        while k + 1 < steps.count {
            let (first, second) = (program.kernels[k], program.kernels[k + 1])
            var found: (unfoldFirst: Bool, patches: Operand)?
            if case .node(.unfold) = first.kind, steps[k].images != nil, case .matmul(false, _, _) = second.kind, steps[k + 1].rows != nil,
               second.inputs[0].location == first.outputs[0].location {
                found = (true, first.outputs[0])
            } else if case .matmul = first.kind, steps[k].rows != nil, case .node(.fold) = second.kind, steps[k + 1].images != nil,
                      second.inputs[0].location == first.outputs[0].location {
                found = (false, second.inputs[0])
            }
            // Both kernels' operands are in use until the last chunk: the second's outputs must
            // not lie over memory the first reads or writes (the planner reuses a tensor's
            // memory once its last reader has run, which chunks would run ahead of).
            let apart = second.outputs.allSatisfy { o in (first.inputs + first.outputs).allSatisfy { !CPUStep<T>.overlap(o, $0) } }
            guard apart, let (unfoldFirst, patches) = found, let d = (unfoldFirst ? second : first).matmulDimensions else { k += 1; continue }
            // Patches [N, OH, OW, …]: the matmul's rows are its N·OH·OW pixels.
            let images = patches.shape[0], rowsPerImage = patches.shape[1] * patches.shape[2]
            let bytes = patches.shape.count * MemoryLayout<T>.size
            guard d.m == images * rowsPerImage, bytes > chunkBytes else { k += 1; continue }
            let count = min(images, (bytes + chunkBytes - 1) / chunkBytes)
            let chunks = (0..<count).map { images * $0 / count..<images * ($0 + 1) / count }
            // Every chunk must go to the register blocks, as the whole product does: they take B
            // transposed from 512 rows on (the rows of a chunk with the bias epilogue, else of
            // each thread's part), and OpenBLAS would round differently (the values would then
            // depend on the chunks and the threads).
            if case let .matmul(ta, tb, epilogue) = (unfoldFirst ? second : first).kind {
                let rows = (images / count) * rowsPerImage / (epilogue == nil ? WorkerPool.shared.threads : 1)
                if kiln_gemm_blocks_available() == 0 || !Float.blockedGemm(ta, tb, m: rows, n: d.n) { k += 1; continue }
            }
            pairs[k] = ChunkedPair(unfoldFirst: unfoldFirst, chunks: chunks, rowsPerImage: rowsPerImage)
            k += 2
        }
        return pairs
    }

    /// Runs pair `k`, adding each kernel's time to its own count when profiling; false where a
    /// chunk's rows could not run (the caller then runs the two kernels whole).
    private func runChunked(_ pair: ChunkedPair, at k: Int) -> Bool {
        let (windows, product) = pair.unfoldFirst ? (k, k + 1) : (k + 1, k)
        for r in pair.chunks {
            let rows = r.lowerBound * pair.rowsPerImage..<r.upperBound * pair.rowsPerImage
            for kernel in k...k + 1 {
                let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
                if kernel == windows { steps[kernel].images!(r) } else if !steps[product].rows!(rows) { return false }
                if profiling { nanoseconds[kernel] += DispatchTime.now().uptimeNanoseconds - start }
            }
        }
        return true
    }

    deinit {
        if profiling && counters.runs > 0 { FileHandle.standardError.write(Data((profileReport() + "\n").utf8)) }
        for b in buffers { b.deallocate() }
        workspace.deallocate()
    }

    /// Per kernel: runs, total milliseconds, and GFLOP/s (matmuls) or GB/s (the rest).
    public func profileReport() -> String {
        var lines = ["kernel                              runs   total ms   rate (CPU, \(T.self))"]
        for k in program.kernels.indices.sorted(by: { nanoseconds[$0] > nanoseconds[$1] }) {
            let kernel = program.kernels[k], seconds = Double(nanoseconds[k]) / 1e9
            let rate: String
            if case .matmul = kernel.kind {
                rate = String(format: "%.1f GFLOP/s", Double(kernel.flops * counters.runs) / max(seconds, 1e-12) / 1e9)
            } else {
                rate = String(format: "%.2f GB/s", Double(kernel.bytesMoved(realSize: MemoryLayout<T>.size) * counters.runs) / max(seconds, 1e-12) / 1e9)
            }
            lines.append(kernel.name.padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: "%6d %10.3f   ", counters.runs, seconds * 1e3) + rate)
        }
        return lines.joined(separator: "\n")
    }

    public func write(_ tensor: Tensor, _ value: HostTensor) throws {
        let b = try program.inputBuffer(tensor, kinds: [.parameter, .state])
        try program.check(value, for: tensor)
        store(value, into: b)
    }

    public func read(_ tensor: Tensor) throws -> HostTensor {
        let b = try program.inputBuffer(tensor, kinds: [.parameter, .state])
        let node = tensor.node
        return load(Operand(location: Location(buffer: b, byteOffset: 0), shape: node.shape, dtype: node.dtype, node: node.id))
    }

    public func run(feeds: [Tensor: HostTensor]) throws -> [HostTensor] {
        for (b, value) in try program.feedsByBuffer(feeds) { store(value, into: b) }
        var k = 0
        while k < steps.count {
            if let pair = pairs[k], runChunked(pair, at: k) {
                for i in k...k + 1 {
                    if checkNumerics { try checkOutputs(of: i) }
                    try allReduce.progress()
                }
                k += 2
                continue
            }
            let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
            try steps[k].run()
            if profiling { nanoseconds[k] += DispatchTime.now().uptimeNanoseconds - start }
            if checkNumerics { try checkOutputs(of: k) }
            try allReduce.progress()
            k += 1
        }
        counters.runs += 1
        return program.fetches.map(load)
    }

    private func checkOutputs(of k: Int) throws {
        guard !sparseKernels.contains(k) else { return }   // checked where the update reads it
        let kernel = program.kernels[k]
        for (i, o) in kernel.outputs.enumerated() where o.dtype != .int32 {
            let p = (buffers[o.location.buffer] + o.location.byteOffset).assumingMemoryBound(to: T.self)
            if let e = (0..<o.shape.count).first(where: { !p[$0].isFinite }) {
                throw program.nonFinite(kernel: kernel, output: i, element: e, value: Double(p[e]), run: counters.runs + 1)
            }
        }
    }

    private func store(_ value: HostTensor, into b: Int) {
        let p = buffers[b]
        switch value.storage {
        case .int32(let v): v.withUnsafeBufferPointer { p.copyMemory(from: $0.baseAddress!, byteCount: v.count * 4) }
        // Same type: one copy (this is every step's input batch). Otherwise a conversion.
        case .float32(let v) where T.self == Float.self:
            v.withUnsafeBufferPointer { p.copyMemory(from: $0.baseAddress!, byteCount: v.count * 4) }
        case .float64(let v) where T.self == Double.self:
            v.withUnsafeBufferPointer { p.copyMemory(from: $0.baseAddress!, byteCount: v.count * 8) }
        case .float32(let v): for (i, x) in v.enumerated() { p.assumingMemoryBound(to: T.self)[i] = T(x) }
        case .float64(let v): for (i, x) in v.enumerated() { p.assumingMemoryBound(to: T.self)[i] = T(x) }
        }
    }

    private func load(_ o: Operand) -> HostTensor {
        let p = buffers[o.location.buffer] + o.location.byteOffset
        let n = o.shape.count
        if o.dtype == .int32 {
            return HostTensor(unchecked: o.shape, .int32(Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Int32.self), count: n))))
        }
        let v = UnsafeBufferPointer(start: p.assumingMemoryBound(to: T.self), count: n)
        if T.self == Double.self { return HostTensor(unchecked: o.shape, .float64(v.map { Double($0) })) }
        return HostTensor(unchecked: o.shape, .float32(v.map { Float($0) }))
    }
}
