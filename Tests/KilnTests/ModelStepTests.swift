import Foundation
import Testing
import Kiln

/// The general training API: a user's module, any loss, any batch size.
@Suite struct ModelStepTests {
    final class Net: Module {
        let hidden = Linear(3, 8), out = Linear(8, 2)
        func callAsFunction(_ x: Tensor) throws -> Tensor { try out(hidden(x).tanh()) }
    }

    final class Tied: Module {
        let embedding = Embedding(vocabulary: 5, dim: 3)
        let blocks = [Linear(3, 3), Linear(3, 3, bias: false)]
        let head: Linear? = Linear(3, 1)
    }

    static func batch(_ rows: Int, seed: UInt64) throws -> [String: HostTensor] {
        var rng = SeededGenerator(seed: seed)
        return ["x": try HostTensor(rng.uniform(rows * 3, in: -1...1).map(Float.init), shape: [rows, 3]),
                "y": try HostTensor(rng.uniform(rows * 2, in: -1...1).map(Float.init), shape: [rows, 2])]
    }

    static func mse(_ optimizer: Optimizer = Optimizer(.momentum(0.9)), device: DeviceKind = .cpu) throws -> ModelStep<Net> {
        try ModelStep(model: Net(), optimizer: optimizer, device: device, seed: 3) { net, b in try mseLoss(net(b["x"]), b["y"]) }
    }

    @Test func parametersAreFoundAndNamedByTheirPaths() {
        let names = Tied().namedParameters().map(\.name)
        #expect(names == ["embedding.table", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "head.weight", "head.bias"])
        #expect(Net().namedParameters().map(\.name) == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"])
    }

    /// Programs of other batch sizes see the newest parameters: the loss a training run
    /// reports (computed before its update) equals what an evaluation at that batch gave
    /// after the previous update on a program of another size, both ways.
    @Test(arguments: DeviceKind.allCases)
    func everyBatchSizeSharesTheParameters(device: DeviceKind) throws {
        if device == .gpu, OpenCLSupport.context == nil { return }
        let step = try Self.mse(device: device)
        let b8 = try Self.batch(8, seed: 1), b5 = try Self.batch(5, seed: 2)
        let before = try step.evaluate(b5).loss
        try step.train(b8, learningRate: 0.1)
        let evaluated5 = try step.evaluate(b5).loss
        #expect(evaluated5 != before)
        #expect(abs(try step.train(b5, learningRate: 0.1).loss - evaluated5) < 1e-6)
        let evaluated8 = try step.evaluate(b8).loss
        #expect(abs(try step.train(b8, learningRate: 0.1).loss - evaluated8) < 1e-6)
        #expect(step.steps == 3)
    }

    /// The optimizer's state moves with the parameters: training on a second program (another
    /// feed signature) continues the momentum of the first, as one program would.
    @Test func optimizerStateFollowsAcrossPrograms() throws {
        let a = try Self.mse(), b = try Self.mse()
        let b8 = try Self.batch(8, seed: 1)
        var tagged = b8
        tagged["tag"] = try HostTensor([Float(1)], shape: .scalar)   // another signature: another program
        let lossesA = try (0..<3).map { _ in try a.train(b8, learningRate: 0.1).loss }
        let lossesB = try [b8, tagged, b8].map { try b.train($0, learningRate: 0.1).loss }
        for (x, y) in zip(lossesA, lossesB) { #expect(abs(x - y) < 1e-6, "\(lossesA) vs \(lossesB)") }
    }

    @Test func aRegressionTrains() throws {
        let step = try Self.mse(.adam())
        var rng = SeededGenerator(seed: 9)
        let x = rng.uniform(64 * 3, in: -1...1)
        var y: [Double] = []
        for r in 0..<64 {
            let a: Double = sin(2 * x[3 * r]) * x[3 * r + 1], b: Double = x[3 * r + 2] * x[3 * r + 2]
            y += [a, b]
        }
        let data = ["x": try HostTensor(x.map(Float.init), shape: [64, 3]), "y": try HostTensor(y.map(Float.init), shape: [64, 2])]
        let first = try step.train(data, learningRate: 0.01).loss
        for _ in 0..<300 { try step.train(data, learningRate: 0.01) }
        let last = try step.evaluate(data).loss
        #expect(last < first / 10, "\(first) -> \(last)")
    }

    @Test func savedParametersLoadIntoANewModel() throws {
        let step = try Self.mse()
        try step.train(try Self.batch(8, seed: 1), learningRate: 0.1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-modelstep-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try step.save(to: path, optimizerState: true)
        let file = try SafeTensorsFile.read(path: path)
        #expect(file.tensors.keys.contains("optimizer.hidden.weight.v") && file.tensors.keys.contains("hidden.weight"))
        #expect(file.metadata["optimizer_steps"] == "1")
        let other = try ModelStep(model: Net(), optimizer: Optimizer(.momentum(0.9)), device: .cpu, seed: 99) { net, b in
            try mseLoss(net(b["x"]), b["y"])
        }
        try other.load(from: path)
        #expect(other.steps == 1)
        let b5 = try Self.batch(5, seed: 4)
        #expect(try other.evaluate(b5).loss == step.evaluate(b5).loss)
        #expect(try other.train(b5, learningRate: 0.1).loss == step.train(b5, learningRate: 0.1).loss)

        final class Wider: Module { let hidden = Linear(3, 9), out = Linear(9, 2) }
        let wider = try ModelStep(model: Wider(), optimizer: .adam(), device: .cpu) { m, b in try mseLoss(m.out(m.hidden(b["x"])), b["y"]) }
        do {
            try wider.load(from: path)
            Issue.record("parameters of another shape were loaded")
        } catch { #expect("\(error)".contains("hidden.weight is [3, 8], the model's is [3, 9]"), "\(error)") }
    }

    @Test func badUseIsAnError() throws {
        let b8 = try Self.batch(8, seed: 1)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        // A [N] target against [N, 1] predictions would broadcast to [N, N].
        let broadcast = try ModelStep(model: Net(), optimizer: .adam(), device: .cpu) { net, b in
            try mseLoss(net(b["x"]).sum(axes: [1], keepDims: true), b["y"].sum(axes: [1]))
        }
        #expect(message { try broadcast.train(b8, learningRate: 0.1) }.contains("prediction [8, 1] and target [8] differ"))
        let notScalar = try ModelStep(model: Net(), optimizer: .adam(), device: .cpu) { net, b in try net(b["x"]) }
        #expect(message { try notScalar.train(b8, learningRate: 0.1) }.contains("the loss must be a float scalar, got float32 [8, 2]"))
        final class Unused: Module { let used = Linear(3, 2), spare = Linear(2, 2) }
        let unused = try ModelStep(model: Unused(), optimizer: .adam(), device: .cpu) { m, b in try mseLoss(m.used(b["x"]), b["y"]) }
        #expect(message { try unused.train(b8, learningRate: 0.1) }.contains("does not depend on spare.weight [2, 2], spare.bias [2]"))
        let step = try Self.mse()
        var doubles = b8
        doubles["x"] = try HostTensor([Double](repeating: 0, count: 24), shape: [8, 3])
        #expect(message { try step.train(doubles, learningRate: 0.1) }.contains("float64"))
        #expect(message { try step.train(["x": b8["x"]!], learningRate: 0.1) }.contains("no input named 'y'"))
        #expect(message { try step.train(b8, learningRate: 0) }.contains("learning rate must be a positive number"))
        #expect(step.steps == 0)
    }

    /// The losses against values computed here in Double from their definitions (PyTorch's).
    @Test func lossesMatchTheirDefinitions() throws {
        let g = Graph()
        let p: [Double] = [0.5, -1.5, 2.0, 0.25, -0.75, 3.0], t: [Double] = [0.0, -1.0, 0.5, 0.25, 1.0, -2.0]
        let pt = try g.placeholder("p", [2, 3], .float64), tt = try g.placeholder("t", [2, 3], .float64)
        let d = zip(p, t).map { $0 - $1 }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        let sigmoid = { (x: Double) in 1 / (1 + exp(-x)) }
        let bceTargets = t.map { sigmoid($0) }
        let bt = try g.placeholder("bt", [2, 3], .float64)
        let expected: [(Tensor, Double)] = [
            (try mseLoss(pt, tt), mean(d.map { $0 * $0 })),
            (try l1Loss(pt, tt), mean(d.map(abs))),
            (try huberLoss(pt, tt, delta: 1), mean(d.map { abs($0) < 1 ? 0.5 * $0 * $0 : abs($0) - 0.5 })),
            (try binaryCrossEntropyWithLogits(pt, bt), mean(zip(p, bceTargets).map { x, y in -(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))) })),
        ]
        let feeds: [Tensor: HostTensor] = [pt: try HostTensor(p, shape: [2, 3]), tt: try HostTensor(t, shape: [2, 3]),
                                           bt: try HostTensor(bceTargets, shape: [2, 3])]
        let got = try CPUReference<Double>().run(g, feeds: feeds, fetch: expected.map(\.0))
        for (i, (v, e)) in zip(got, expected).enumerated() { #expect(abs(v.scalarValue - e.1) < 1e-12, "loss \(i): \(v.scalarValue) vs \(e.1)") }
    }

    /// Cross-entropy with label smoothing and an ignore index, and NLL, against PyTorch's
    /// definitions computed here in Double; and their gradients against finite differences.
    @Test func crossEntropyWithSmoothingAndIgnoredLabels() throws {
        let g = Graph()
        let logits: [Double] = [1.0, -0.5, 2.0, 0.3, 0.0, 1.5, -1.0, 0.7, 2.5, -0.2, 0.4, 0.9]
        let labels: [Int32] = [2, -100, 0, 1]
        let z = try g.placeholder("z", [4, 3], .float64), y = try g.placeholder("y", [4], .int32)
        let eps = 0.1
        var total = 0.0, nll = 0.0, counted = 0.0
        for r in 0..<4 where labels[r] != -100 {
            let row = Array(logits[r * 3..<r * 3 + 3]), m = row.max()!
            let lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
            let logp = row.map { $0 - lse }
            total += -(1 - eps) * logp[Int(labels[r])] - eps / 3 * logp.reduce(0, +)
            nll += -logp[Int(labels[r])]
            counted += 1
        }
        let ce = try crossEntropy(z, y, labelSmoothing: eps, ignoreIndex: -100)
        let nl = try nllLoss(logSoftmax(z), y, ignoreIndex: -100)
        let values: [Tensor: HostTensor] = [z: try HostTensor(logits, shape: [4, 3]), y: try HostTensor(labels, shape: [4])]
        let got = try CPUReference<Double>().run(g, feeds: values, fetch: [ce, nl])
        #expect(abs(got[0].scalarValue - total / counted) < 1e-12)
        #expect(abs(got[1].scalarValue - nll / counted) < 1e-12)
        for loss in [ce, nl] {
            for r in try GradientCheck.run(g, loss: loss, wrt: [z], values: values) {
                #expect(r.maxRelativeError < 1e-6, "\(r.name): \(r.maxRelativeError)")
            }
        }
    }
}
