import Foundation
import Testing
import Kiln

/// The epoch loop for any model: datasets, evaluation with metrics, resuming mid-epoch.
@Suite struct ModelTrainerTests {
    static func data(_ n: Int, seed: UInt64) throws -> TensorDataset {
        var rng = SeededGenerator(seed: seed)
        let x = rng.uniform(n * 3, in: -1...1)
        var y: [Double] = []
        for r in 0..<n { y += [x[3 * r] * x[3 * r + 1], sin(2 * x[3 * r + 2])] }
        return try TensorDataset(["x": HostTensor(x.map(Float.init), shape: [n, 3]), "y": HostTensor(y.map(Float.init), shape: [n, 2])])
    }

    static func trainer(epochs: Int = 2) throws -> ModelTrainer<ModelStepTests.Net> {
        let step = try ModelStep(model: ModelStepTests.Net(), optimizer: .adam(), device: .cpu, seed: 1) { net, b in
            let p = try net(b["x"]), y = try b["y"]
            return Objective(try mseLoss(p, y), metrics: ["l1": try l1Loss(p, y)])
        }
        var options = FitOptions()
        (options.epochs, options.batchSize, options.learningRate, options.evaluationBatchSize) = (epochs, 32, 1e-2, 40)
        return try ModelTrainer(step: step, train: data(100, seed: 1), evaluation: data(50, seed: 2), options: options)
    }

    @Test func trainsAndEvaluatesWithMetrics() throws {
        let t = try Self.trainer(epochs: 6)
        let before = try t.evaluate(Self.data(50, seed: 2))
        var epochs: [FitEpoch] = []
        var steps = 0
        #expect(try t.fit(progress: { _ in steps += 1 }, finished: { epochs.append($0) }))
        #expect(steps == 6 * 4)   // 100 examples in batches of 32: the last one of 4
        #expect(epochs.count == 6 && epochs.last!.evaluation!.loss < before.loss / 2)
        #expect(epochs.last!.evaluation!.metrics["l1"] != nil)
    }

    /// Any model's epochs as JSON lines and curves: its objective's metrics become series.
    @Test func metricsLogTakesAnyModelsEpochs() throws {
        let t = try Self.trainer()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-fit-\(getpid()).jsonl").path
        defer { for p in [path, (path as NSString).deletingPathExtension + ".svg"] { try? FileManager.default.removeItem(atPath: p) } }
        var log = try MetricsLog(path: path)
        try t.fit(finished: { try log.append($0) })
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let last = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any]
        #expect(last?["epoch"] as? Int == 2 && last?["test_l1"] is Double && last?["train_loss"] is Double && last?["test_loss"] is Double)
        let svg = try String(contentsOfFile: log.svgPath, encoding: .utf8)
        #expect(svg.contains("test l1 (right axis)") && svg.contains("train loss"))
    }

    /// Stopped after 3 steps of the second epoch, saved and resumed in a new trainer, the run
    /// ends with exactly the parameters of the uninterrupted one.
    @Test func resumesMidEpochOnTheSameTrajectory() throws {
        let whole = try Self.trainer()
        try whole.fit()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-fit-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try Self.trainer()
        var calls = 0
        first.shouldStop = { calls += 1; return calls == 6 }   // asked after every step but the last of an epoch
        #expect(try first.fit() == false)
        #expect(first.epoch == 1 && first.epochStep == 3)
        try first.saveCheckpoint(to: path)
        let second = try Self.trainer()
        try second.resume(from: path)
        try second.fit()
        #expect(second.step.steps == whole.step.steps)
        #expect(try second.step.parameterValues() == whole.step.parameterValues())
    }

    struct Shifting: Dataset {
        var count: Int { 64 }
        func batch(_ indices: [Int]) throws -> [String: HostTensor] {
            let n = indices.count
            let x = indices.contains(0) ? try HostTensor([Double](repeating: 0, count: n * 3), shape: [n, 3])
                                        : try HostTensor([Float](repeating: 0, count: n * 3), shape: [n, 3])
            return ["x": x, "y": try HostTensor([Float](repeating: 0, count: n * 2), shape: [n, 2])]
        }
    }

    @Test func aDatasetThatChangesItsFeedsIsNamed() throws {
        let step = try ModelStep(model: ModelStepTests.Net(), optimizer: .adam(), device: .cpu) { net, b in try mseLoss(net(b["x"]), b["y"]) }
        var options = FitOptions()
        (options.batchSize, options.epochs) = (16, 1)
        let t = try ModelTrainer(step: step, train: Shifting(), options: options)
        do {
            try t.fit()
            Issue.record("a dataset whose dtype changed was accepted")
        } catch { #expect("\(error)".contains("feed 'x' is float") && "\(error)".contains("the first batch's was float"), "\(error)") }
    }
}
