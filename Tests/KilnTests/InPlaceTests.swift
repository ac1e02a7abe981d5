import Testing
@testable import KilnCompiler
@testable import KilnCPU
import KilnGraph
import Kiln
import KilnOpenCL

/// Elementwise kernels written over an input that dies with them (`CompileOptions.inPlace`,
/// the CPU backend's): only where no later kernel reads that input and it is a transient
/// tensor of the output's shape, and a training step computes the same bits as with every
/// output in memory of its own.
@Suite struct InPlaceTests {
    /// A small CNN (conv-BN-ReLU-pool twice, dropout, two Linear layers) with Adam.
    static func cnnStep() throws -> (ClassifierGraph, Optimizer.Feeds) {
        let model = try ModelSpec.cnn(channels: [1, 4, 8], image: [8, 8], hidden: 16).build(batch: 6)
        let feeds = try TrainingStep.appendStep(to: model, optimizer: .adam()).feeds
        return (model, feeds)
    }

    static func program(_ model: ClassifierGraph, inPlace: Bool) throws -> Program {
        try Compiler.compile(model.graph, fetch: [model.loss, model.accuracy],
                             options: CompileOptions(fusion: true, realType: .float32, recompute: false, inPlace: inPlace))
    }

    @Test func outputsTakeOnlyInputsThatDieThere() throws {
        let (model, _) = try Self.cnnStep()
        let program = try Self.program(model, inPlace: true), nodes = program.graph.nodes
        // The tensor an operand holds, through reshapes (views of their input's memory).
        func base(_ id: Int) -> Int { nodes[id].op == .reshape ? base(nodes[id].inputs[0]) : id }
        let fetched = Set(program.fetches.map { base($0.node) })
        var placed = 0
        // Arena tensors only: an optimizer's update is written into its parameter as before.
        for (k, kernel) in program.kernels.enumerated() {
            for o in kernel.outputs where o.location.buffer == 0 {
                guard let i = kernel.inputs.first(where: { $0.location == o.location }) else { continue }
                placed += 1
                guard case .elementwise(let code) = kernel.kind else {
                    Issue.record("\(kernel.name) writes over an input and is not elementwise")
                    continue
                }
                #expect(i.shape == code.shape && o.shape == code.shape, "\(kernel.name)")
                let readLater = program.kernels[(k + 1)...].contains { $0.inputs.contains { base($0.node) == base(i.node) } }
                #expect(!readLater && !fetched.contains(base(i.node)), "\(kernel.name) writes over \(i.shape) that is read later")
            }
        }
        // Batch norm's centred values over the convolution's output, and its input gradient
        // over the pooling gradient, in both layers.
        #expect(placed >= 4, "\(placed) outputs over inputs")
        let apart = try Self.program(model, inPlace: false)
        #expect(apart.kernels.allSatisfy { k in !k.outputs.contains { o in o.location.buffer == 0 && k.inputs.contains { $0.location == o.location } } })
    }

    /// Three Adam steps of the CNN with and without outputs over inputs, on the CPU backend and
    /// (where there is a device) OpenCL: the same bits on each.
    @Test(arguments: ["cpu", "opencl"])
    func aStepComputesTheSameBits(backend: String) throws {
        let context = backend == "opencl" ? OpenCLSupport.context : nil
        if backend == "opencl" && context == nil { return }
        let (model, feeds) = try Self.cnnStep()
        var rng = SeededGenerator(seed: 3)
        let input = try HostTensor(rng.uniform(model.input.shape.count, in: 0...1).map(Float.init), shape: model.input.shape)
        let labels = try HostTensor((0..<6).map { Int32($0 % 10) }, shape: [6])
        var runs: [[HostTensor]] = []
        for inPlace in [true, false] {
            let program = try Self.program(model, inPlace: inPlace)
            let exe: Executable = try context.map { try OpenCLExecutable(program: program, context: $0) } ?? CPUExecutable<Float>(program: program)
            for (t, v) in try model.parameters.initialValues(seed: 5) { try exe.write(t, v) }
            var out: [HostTensor] = []
            for step in 1...3 {
                var f = try feeds.values(step: step, learningRate: 1e-3)
                f[model.input] = input
                f[model.labels] = labels
                f[try model.graph.stepCounter()] = try HostTensor([Int32(step)], shape: .scalar)
                out += try exe.run(feeds: f)
            }
            runs.append(out + (try model.parameters.tensors.map { try exe.read($0) }))
        }
        #expect(runs[0].count == runs[1].count)
        for (a, b) in zip(runs[0], runs[1]) { #expect(a.floats.map(\.bitPattern) == b.floats.map(\.bitPattern)) }
    }
}
