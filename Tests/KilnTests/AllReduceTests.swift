import Foundation
import Testing
import Kiln

/// A job of `size` identical processes, in one: every process holds the same values, so a sum
/// is the value times `size`. Records each sum it is asked for.
final class LoopbackCollective: Collective {
    let rank = 0
    let size: Int
    private(set) var sums: [(count: Int, dtype: DType)] = []
    private var open: Set<Int> = []

    init(size: Int) { self.size = size }

    func startSum(_ data: UnsafeMutableRawPointer, count: Int, dtype: DType) throws -> Int {
        switch dtype {
        case .float32: let p = data.assumingMemoryBound(to: Float.self); for i in 0..<count { p[i] *= Float(size) }
        case .float64: let p = data.assumingMemoryBound(to: Double.self); for i in 0..<count { p[i] *= Double(size) }
        case .int32: let p = data.assumingMemoryBound(to: Int32.self); for i in 0..<count { p[i] *= Int32(size) }
        }
        sums.append((count, dtype))
        open.insert(sums.count)
        return sums.count
    }

    func wait(_ handle: Int) throws {
        guard open.remove(handle) != nil else { throw KilnError.device("wait on a handle that is not in flight: \(handle)") }
    }

    func progress() throws {}
}

/// The all-reduce op: its shape and gradient rules, how the compiler buckets and places it,
/// and both backends' start and finish kernels.
@Suite struct AllReduceTests {
    /// Three tensors of different sizes, each doubled and summed across the job.
    static func graph() throws -> (Graph, [Tensor], [Tensor]) {
        let g = Graph()
        let xs = try [[3, 5], [17], [2, 2, 2]].enumerated().map { i, dims in try g.placeholder("x\(i)", Shape(dims)) }
        let ys = try xs.map { try g.allReduce($0 * 2) }
        return (g, xs, ys)
    }

    static func feeds(_ xs: [Tensor]) throws -> [Tensor: HostTensor] {
        var rng = SeededGenerator(seed: 9)
        var out: [Tensor: HostTensor] = [:]
        for x in xs { out[x] = try HostTensor(rng.uniform(x.shape.count, in: -1...1).map(Float.init), shape: x.shape) }
        return out
    }

    @Test func shapeAndGradientRules() throws {
        let g = Graph()
        let x = try g.parameter("x", [2, 3], .float64)
        let y = try g.allReduce(x)
        #expect(y.shape == [2, 3] && y.dtype == .float64)
        let ids = try g.placeholder("ids", [2], .int32)
        #expect(throws: KilnError.self) { try g.allReduce(ids) }
        // dL/dx of L = sum(allReduce(x)^2) is allReduce(2 allReduce(x)): an all-reduce in the
        // backward pass too, and 2x in a single process.
        let loss = try (y * y).sum()
        let grad = try g.gradients(of: loss, wrt: [x])[0]
        #expect(g.nodes.contains { $0.op == .allReduce && $0.role == .backward })
        let values = try HostTensor([1, -2, 3, 0.5, 0, 4] as [Double], shape: [2, 3])
        let exe = try CPUExecutable<Double>(program: Compiler.compile(g, fetch: [grad], options: CompileOptions(realType: .float64)))
        try exe.write(x, values)
        #expect(try exe.run(feeds: [:])[0].doubles == values.doubles.map { 2 * $0 })
    }

    /// Small buckets split the tensors; every start follows its tensors' producers and every
    /// finish precedes the first reader of its sums.
    @Test func bucketsArePlacedBetweenProducersAndReaders() throws {
        let m = try ClassifierGraph.mlp(batch: 16, sizes: [20, 17, 9, 5])
        _ = try TrainingStep.appendStep(to: m, optimizer: Optimizer(.momentum(0.9)), dataParallel: true)
        let g = m.graph
        let grads = g.nodes.filter { $0.op == .allReduce }
        #expect(grads.count == 6)
        for capacity in [1, 400, 1 << 20] {
            let p = try Compiler.compile(g, fetch: [m.loss, m.accuracy], options: CompileOptions(realType: .float32, bucketBytes: capacity))
            let expected = capacity == 1 ? 6 : capacity == 1 << 20 ? 1 : nil
            if let expected { #expect(p.buckets.count == expected, "capacity \(capacity)") }
            #expect(Set(p.buckets.flatMap(\.nodes)) == Set(grads.map(\.id)))
            for bucket in p.buckets where bucket.nodes.count > 1 { #expect(bucket.elements * 4 <= capacity) }
            var written: [Int: Int] = [:]
            for (k, kernel) in p.kernels.enumerated() {
                for o in kernel.outputs { written[o.node] = k }
            }
            for (k, kernel) in p.kernels.enumerated() {
                switch kernel.kind {
                case .allReduceStart(let b):
                    #expect(kernel.inputs.count == p.buckets[b].nodes.count)
                    for i in kernel.inputs { #expect((written[i.node] ?? -1) < k, "start of bucket \(b) runs before \(g.nodes[i.node].label) is computed") }
                case .allReduceFinish(let b):
                    let start = try #require(p.kernels.firstIndex { if case .allReduceStart(b) = $0.kind { return true }; return false })
                    #expect(start < k)
                    for later in p.kernels[..<k] {
                        #expect(!later.inputs.contains { kernel.outputs.map(\.node).contains($0.node) }, "a sum is read before its finish")
                    }
                default: break
                }
            }
        }
    }

    /// Both backends, with a job of 3 and of 1 (on OpenCL, host staging and device copies).
    @Test(arguments: [nil, 1, 3] as [Int?])
    func sumsOnBothBackends(size: Int?) throws {
        let (g, xs, ys) = try Self.graph()
        let feeds = try Self.feeds(xs)
        let factor = Double(2 * (size ?? 1))
        let options = CompileOptions(realType: .float32, bucketBytes: 64)   // splits into several buckets
        let program = try Compiler.compile(g, fetch: ys, options: options)
        #expect(program.buckets.count >= 2)
        var executables: [(String, Executable)] = [("cpu", try CPUExecutable<Float>(program: program, collective: size.map(LoopbackCollective.init)))]
        if let context = OpenCLSupport.context {
            executables.append(("opencl", try OpenCLExecutable(program: program, context: context, collective: size.map(LoopbackCollective.init))))
        }
        for (name, exe) in executables {
            for _ in 0..<2 {
                let out = try exe.run(feeds: feeds)
                for (x, y) in zip(xs, out) {
                    #expect(maxError(y.doubles, feeds[x]!.doubles.map { $0 * factor }) < 1e-6, "\(name), job of \(size.map(String.init) ?? "none")")
                }
            }
        }
    }

    /// A step whose job holds 2 identical processes, each weighting its gradient by 1/2,
    /// follows the plain step, on both devices; and it still allocates and builds nothing after
    /// its first run.
    @Test(arguments: DeviceKind.allCases)
    func dataParallelStepMatchesThePlainStep(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        for make in [{ try ClassifierGraph.mlp(batch: 16, sizes: [20, 17, 9, 5]) },
                     { try ClassifierGraph.wordWindow(batch: 8, vocabulary: 30, dim: 4, hidden: 7, classes: 5) }] {
            let plainModel = try make(), jobModel = try make()
            let plain = try TrainingStep(model: plainModel, optimizer: Optimizer(.momentum(0.9)), device: device, seed: 4)
            let loopback = LoopbackCollective(size: 2)
            let job = try TrainingStep(model: jobModel, optimizer: Optimizer(.momentum(0.9)), device: device, seed: 4, collective: loopback)
            for (x, y) in try StepTests.batches(plainModel, count: 4, seed: 3) {
                let a = try plain.run(input: x, labels: y, learningRate: 0.1).loss
                let b = try job.run(input: x, labels: y, learningRate: 0.1).loss
                #expect(abs(a - b) <= 1e-5 * abs(a), "\(device): \(a) vs \(b)")
            }
            for (name, v) in try plain.state() { #expect(maxError(v.doubles, try job.state()[name]!.doubles) < 1e-5, "\(name)") }
            let before = job.executable.counters, sums = loopback.sums.count
            let (x, y) = try StepTests.batches(plainModel, count: 1, seed: 8)[0]
            for _ in 0..<10 { try job.run(input: x, labels: y, learningRate: 0.1) }
            let after = job.executable.counters
            #expect(after.allocations == before.allocations && after.builds == before.builds)
            #expect(loopback.sums.count - sums == 10 * job.program.buckets.count)
        }
    }
}
