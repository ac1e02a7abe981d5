import Foundation
import Testing
import Kiln

/// Philox against its published answers, and dropout: its statistics, evaluation, and masks that
/// repeat on every backend and across a resumed run.
@Suite struct DropoutTests {
    /// Known-answer vectors of Philox4x32-10 from Random123's kat_vectors.
    @Test func philoxGivesThePublishedAnswers() {
        let zero = Philox.block((0, 0, 0, 0), key: (0, 0))
        #expect([zero.0, zero.1, zero.2, zero.3] == [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
        let ones = Philox.block((.max, .max, .max, .max), key: (.max, .max))
        #expect([ones.0, ones.1, ones.2, ones.3] == [0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD])
        let pi = Philox.block((0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), key: (0xA409_3822, 0x299F_31D0))
        #expect([pi.0, pi.1, pi.2, pi.3] == [0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1])
    }

    final class Net: Module {
        let fc = Linear(20, 20, name: "fc")
        let drop: Dropout
        init(_ p: Double) throws { drop = try Dropout(p, seed: 7) }
    }

    /// Training keeps about 1 - p of the values, scaled by 1 / (1 - p); evaluation is the identity.
    @Test func dropsAndScalesWhileTrainingOnly() throws {
        let g = Graph()
        g.training = true
        let x = try g.placeholder("x", [100, 100])
        let drop = try Dropout(0.3)
        let y = try drop(x)
        let counter = try g.stepCounter()
        let out = try CPUReference<Double>().run(g, feeds: [x: try HostTensor([Float](repeating: 1, count: 10_000), shape: [100, 100]),
                                                            counter: try HostTensor([Int32(5)], shape: .scalar)], fetch: [y])[0].doubles
        let kept = out.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / 10_000 - 0.7) < 0.02, "kept \(kept.count)")
        #expect(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
        let e = Graph()
        let xe = try e.placeholder("x", [3, 4])
        #expect(try drop(xe) == xe)
    }

    /// Steps draw new masks; a run restored at step 2 continues as the run that never stopped,
    /// to the bit (CPU), because the masks come from the step counter alone.
    @Test func aResumedRunDrawsTheSameMasks() throws {
        var rng = SeededGenerator(seed: 1)
        let batches = try (0..<4).map { _ in
            ["x": try HostTensor(rng.uniform(8 * 20, in: -1...1).map(Float.init), shape: [8, 20])]
        }
        func makeStep() throws -> ModelStep<Net> {
            try ModelStep(model: try Net(0.5), optimizer: Optimizer(.momentum(0.9)), device: .cpu, seed: 3) { net, b in
                try (net.drop(net.fc(b["x"])) * net.drop(net.fc(b["x"]))).mean()
            }
        }
        let whole = try makeStep()
        let losses = try batches.map { try whole.train($0, learningRate: 0.1).loss }
        #expect(Set(losses).count == 4)
        let first = try makeStep()
        for b in batches.prefix(2) { try first.train(b, learningRate: 0.1) }
        let resumed = try makeStep()
        try resumed.restore(parameters: try first.parameterValues(), optimizerState: try first.optimizerState(), steps: first.steps)
        let rest = try batches.suffix(2).map { try resumed.train($0, learningRate: 0.1).loss }
        #expect(rest == Array(losses.suffix(2)))
        #expect(try resumed.parameterValues()["fc.weight"] == whole.parameterValues()["fc.weight"])
    }

    /// The OpenCL backend draws the CPU backend's masks: one training step on each agrees.
    @Test func openCLDrawsTheSameMasks() throws {
        guard OpenCLSupport.context != nil else { return }
        let x = try HostTensor((0..<160).map { Float($0 % 17) / 17 - 0.5 }, shape: [8, 20])
        var results: [Double] = []
        for device in [DeviceKind.cpu, .gpu] {
            let step = try ModelStep(model: try Net(0.4), optimizer: Optimizer(.sgd), device: device, seed: 3) { net, b in
                try (net.drop(net.fc(b["x"])) * net.drop(b["x"])).sum()
            }
            results.append(try step.train(["x": x], learningRate: 0.1).loss)
            results.append(try step.train(["x": x], learningRate: 0.1).loss)
        }
        #expect(abs(results[0] - results[2]) < 1e-4 * max(1, abs(results[0])), "\(results)")
        #expect(abs(results[1] - results[3]) < 1e-4 * max(1, abs(results[1])), "\(results)")
        #expect(results[0] != results[1])
    }
}
