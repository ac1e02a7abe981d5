import Testing
import Kiln

/// A training step's graph: model, gradients and optimizer updates.
func stepGraph(_ model: ClassifierGraph, _ optimizer: Optimizer = Optimizer(.momentum(0.9))) throws -> Optimizer.Feeds {
    let grads = try model.graph.gradients(of: model.loss, wrt: model.parameters.tensors)
    return try optimizer.apply(to: model.graph, parameters: model.parameters.tensors, gradients: grads)
}

@Suite struct CompilerTests {
    /// SGD with momentum, 784-256-128-10 ReLU MLP, batch 128, fetching the loss: 16 kernels.
    /// Forward: 3 matmuls with bias (and ReLU) in their epilogues, 1 softmax cross-entropy.
    /// Backward: 1 softmax cross-entropy gradient; per layer 1 bias-gradient sum, and for layers
    /// 2 and 3 one matmul for the input gradient with the ReLU mask in its epilogue (2); the
    /// three weight-gradient matmuls carry the weights' momentum update in their epilogues (3).
    /// Updates: one elementwise kernel per bias (3). 4 + 1 + 3 + 2 + 3 + 3 = 16.
    @Test func mlpMomentumStepKernelCount() throws {
        let m = try ClassifierGraph.mlp(batch: 128, sizes: [784, 256, 128, 10])
        _ = try stepGraph(m)
        let fused = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(fusion: true))
        #expect(fused.kernels.count == 16, "\(fused.listing())")
        let unfused = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(fusion: false))
        #expect(unfused.kernels.count > 2 * fused.kernels.count)
        // Every update is written in place: no copies at the end of the schedule.
        #expect(!fused.kernels.contains { $0.nodes.isEmpty })
    }

    /// The word-window step (vocab 20000, dim 50, window 5, hidden 128 tanh, 5 classes, batch
    /// 512, momentum) fetching the loss: 15 kernels. Forward (4): gather, the hidden matmul with
    /// bias and tanh in its epilogue, the output matmul with bias, softmax cross-entropy.
    /// Backward (8): softmax gradient; output-bias sum; the output weights' gradient matmul with
    /// their momentum update in its epilogue; the hidden gradient matmul with tanh's derivative
    /// in its epilogue; hidden-bias sum; the hidden weights' gradient matmul with their update;
    /// the window vectors' gradient matmul; the scatter-add into the table's gradient.
    /// Updates (3): the table and the two biases. 4 + 8 + 3 = 15.
    @Test func wordWindowStepKernelCount() throws {
        let m = try ClassifierGraph.wordWindow(batch: 512, vocabulary: 20000, dim: 50, hidden: 128, classes: 5)
        _ = try stepGraph(m)
        let fused = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(fusion: true))
        #expect(fused.kernels.count == 15, "\(fused.listing())")
    }

    /// The memory plan stays within 1.25x of the liveness lower bound.
    @Test(arguments: [false, true])
    func arenaNearLowerBound(fusion: Bool) throws {
        let mlp = try ClassifierGraph.mlp(batch: 128, sizes: [784, 256, 128, 10])
        _ = try stepGraph(mlp)
        let ww = try ClassifierGraph.wordWindow(batch: 512, vocabulary: 20000, dim: 50, hidden: 128, classes: 5)
        _ = try stepGraph(ww)
        for m in [mlp, ww] {
            let p = try Compiler.compile(m.graph, fetch: [m.loss, m.accuracy], options: CompileOptions(fusion: fusion))
            #expect(p.memory.liveLowerBound > 0)
            #expect(Double(p.memory.arenaBytes) <= 1.25 * Double(p.memory.liveLowerBound), "\(p.memory)")
            #expect(p.memory.arenaBytes <= p.memory.transientBytes)
        }
    }
}
