import Testing
import Kiln

/// Whole training steps: fused against unfused, OpenCL against the CPU reference, and the
/// promise that a compiled step allocates and builds nothing after the first run.
@Suite struct StepTests {
    static func models() throws -> [(String, ClassifierGraph, Optimizer)] {
        [("mlp momentum", try .mlp(batch: 16, sizes: [20, 17, 9, 5]), Optimizer(.momentum(0.9))),
         ("mlp adam", try .mlp(batch: 16, sizes: [20, 17, 9, 5], activation: .tanh), .adam()),
         ("mlp nesterov wd", try .mlp(batch: 3, sizes: [7, 129, 3], activation: .sigmoid), Optimizer(.nesterov(0.8), weightDecay: 0.01)),
         ("word window momentum", try .wordWindow(batch: 8, vocabulary: 30, dim: 4, hidden: 7, classes: 5), Optimizer(.momentum(0.9))),
         ("word window adamw", try .wordWindow(batch: 5, vocabulary: 11, dim: 3, hidden: 6, classes: 4), .adamW())]
    }

    /// Seeded batches for a model.
    static func batches(_ m: ClassifierGraph, count: Int, seed: UInt64) throws -> [(HostTensor, HostTensor)] {
        try (0..<count).map { i in
            let b = try m.randomBatch(seed: seed &+ UInt64(i))
            return (b[m.input]!, b[m.labels]!)
        }
    }

    /// Runs `steps` steps of a compiled step and returns the losses and the final state.
    static func train(_ m: ClassifierGraph, _ feeds: Optimizer.Feeds, _ exe: Executable, steps: Int) throws -> ([Double], [String: [Double]]) {
        for (t, v) in try m.parameters.initialValues(seed: 7) { try exe.write(t, v) }
        var losses: [Double] = []
        for (i, (x, y)) in try batches(m, count: steps, seed: 11).enumerated() {
            var f = try feeds.values(step: i + 1, learningRate: 0.05)
            f[m.input] = x
            f[m.labels] = y
            losses.append(try exe.run(feeds: f)[0].scalarValue)
        }
        var state: [String: [Double]] = [:]
        for decl in exe.program.buffers where decl.kind == .parameter || decl.kind == .state {
            state[decl.name] = try exe.read(m.graph.tensor(decl.node!)).doubles
        }
        return (losses, state)
    }

    static func compare(_ a: ([Double], [String: [Double]]), _ b: ([Double], [String: [Double]]), tolerance: Double, _ what: String) {
        #expect(maxError(a.0, b.0) < tolerance, "\(what): losses \(a.0) vs \(b.0)")
        #expect(a.1.keys.sorted() == b.1.keys.sorted())
        for (name, v) in a.1 { #expect(maxError(v, b.1[name] ?? []) < tolerance, "\(what): \(name)") }
    }

    /// The reference: the unfused step on the CPU in Double.
    static func reference(_ m: ClassifierGraph, _ feeds: Optimizer.Feeds, steps: Int) throws -> ([Double], [String: [Double]]) {
        let p = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(fusion: false, realType: .float64))
        return try train(m, feeds, CPUExecutable<Double>(program: p), steps: steps)
    }

    @Test func fusedMatchesUnfusedOnCPU() throws {
        for (name, m, opt) in try Self.models() {
            let feeds = try stepGraph(m, opt)
            let fused = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(fusion: true, realType: .float64))
            let got = try Self.train(m, feeds, CPUExecutable<Double>(program: fused), steps: 3)
            Self.compare(got, try Self.reference(m, feeds, steps: 3), tolerance: 1e-12, "\(name) fused vs unfused, CPU")
        }
    }

    /// OpenCL in float32, fused and unfused, within 1e-4 of the reference after 3 steps.
    @Test(arguments: [false, true])
    func openCLMatchesReference(fusion: Bool) throws {
        guard let ctx = OpenCLSupport.context else { return }
        for (name, m, opt) in try Self.models() {
            let feeds = try stepGraph(m, opt)
            let p = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(fusion: fusion, realType: .float32))
            let got = try Self.train(m, feeds, OpenCLExecutable(program: p, context: ctx), steps: 3)
            Self.compare(got, try Self.reference(m, feeds, steps: 3), tolerance: 1e-4, "\(name) OpenCL fusion \(fusion)")
        }
    }

    /// After the first step, 100 more allocate nothing and build nothing; each uploads only its
    /// feeds and downloads only its fetches.
    @Test(arguments: DeviceKind.allCases)
    func stepsAllocateAndBuildNothing(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        let m = try ClassifierGraph.mlp(batch: 8, sizes: [6, 5, 3])
        let step = try TrainingStep(model: m, optimizer: Optimizer(.momentum(0.9)), device: device, seed: 1)
        let data = try Self.batches(m, count: 1, seed: 2)[0]
        try step.run(input: data.0, labels: data.1, learningRate: 0.1)
        let before = step.executable.counters
        for _ in 0..<100 { try step.run(input: data.0, labels: data.1, learningRate: 0.1) }
        let after = step.executable.counters
        #expect(after.allocations == before.allocations)
        #expect(after.builds == before.builds)
        #expect(after.runs == before.runs + 100)
        if device == .gpu {
            // Feeds: x, labels, learning rate. Fetches: loss, accuracy.
            #expect(after.uploads - before.uploads == 300)
            #expect(after.downloads - before.downloads == 200)
        }
    }

    /// An update reads the old value of everything: one SGD step equals p - lr * grad computed
    /// by a separate gradient program.
    @Test func sgdStepMatchesGradient() throws {
        let m = try ClassifierGraph.mlp(batch: 4, sizes: [5, 4, 3])
        let params = m.parameters.tensors
        let grads = try m.graph.gradients(of: m.loss, wrt: params)
        let init_ = try m.parameters.initialValues(seed: 3)
        let (x, y) = try Self.batches(m, count: 1, seed: 4)[0]
        var values = init_
        values[m.input] = x
        values[m.labels] = y
        let g = try CPUReference<Double>().run(m.graph, feeds: values, fetch: grads)
        let feeds = try Optimizer(.sgd).apply(to: m.graph, parameters: params, gradients: grads)
        let p = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(realType: .float64))
        let exe = try CPUExecutable<Double>(program: p)
        for (t, v) in init_ { try exe.write(t, v) }
        var f = try feeds.values(step: 1, learningRate: 0.5)
        f[m.input] = x
        f[m.labels] = y
        _ = try exe.run(feeds: f)
        for (i, t) in params.enumerated() {
            let expected = zip(init_[t]!.doubles, g[i].doubles).map { $0 - 0.5 * $1 }
            #expect(maxError(try exe.read(t).doubles, expected) < 1e-6, "\(t.node.label)")
        }
    }
}
