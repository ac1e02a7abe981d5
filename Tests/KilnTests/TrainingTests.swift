import Foundation
import Testing
import Kiln

@Suite struct TrainingTests {
    static let fashionDirectory = ImageDataset.defaultFashionMNISTDirectory

    /// The data set is installed by scripts/setup; where it is missing, CI fails and a local run skips.
    static func fashionMNIST() throws -> ImageDataset? {
        guard FileManager.default.fileExists(atPath: fashionDirectory) else {
            if ProcessInfo.processInfo.environment["KILN_REQUIRE_OPENCL"] == "1" {
                Issue.record("Fashion-MNIST is missing at \(fashionDirectory) (apt-get install dataset-fashion-mnist)")
            } else {
                print("skipped: Fashion-MNIST is not installed at \(fashionDirectory)")
            }
            return nil
        }
        return try ImageDataset.load(directory: fashionDirectory, split: .train)
    }

    /// From PyTorch's initial weights (Tests/Fixtures/fmnist_init.safetensors) and the first
    /// 20 batches in file order, SGD lr 0.1 momentum 0.9: the losses match PyTorch's
    /// (scripts/pytorch_reference.py golden) to 1e-4 relative.
    @Test(arguments: DeviceKind.allCases)
    func firstTwentyLossesMatchPyTorch(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        guard let images = try Self.fashionMNIST() else { return }
        struct Golden: Decodable { let losses: [Double] }
        let golden = try Fixtures.load("fmnist_first20.json", as: Golden.self).losses
        let initial = try SafeTensorsFile.read(path: Fixtures.directory.appendingPathComponent("fmnist_init.safetensors").path)
        let model = try ClassifierGraph.mlp(batch: 128, sizes: [784, 256, 128, 10])
        let step = try TrainingStep(model: model, optimizer: Optimizer(.momentum(0.9)), device: device, seed: 0)
        for t in model.parameters.tensors { try step.executable.write(t, try #require(initial.tensors[t.node.label])) }
        let data = LabeledData(rows: .features(images.images), width: 784, labels: images.labels)
        for (i, expected) in golden.enumerated() {
            let (x, y) = try data.batch(Array(128 * i ..< 128 * (i + 1)))
            let loss = try step.run(input: x, labels: y, learningRate: 0.1).loss
            #expect(abs(loss - expected) / expected < 1e-4, "step \(i): \(loss) vs PyTorch \(expected)")
        }
    }

    static func smallTask() throws -> TaskData {
        var rng = SeededGenerator(seed: 5)
        let n = 100, f = 6
        let x = rng.uniform(n * f, in: -1...1).map(Float.init)
        let labels = (0..<n).map { i in Int32(x[i * f] + x[i * f + 1] > 0 ? 1 : 0) + (x[i * f + 2] > 0.5 ? 1 : 0) }
        let data = LabeledData(rows: .features(x), width: f, labels: labels)
        return TaskData(name: "small", train: data, test: data, spec: .mlp(sizes: [f, 8, 3]))
    }

    static func options(_ device: DeviceKind, epochs: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.device = device
        o.epochs = epochs
        o.batchSize = 16   // 100 examples: 6 full batches and a partial one of 4
        o.optimizer = .adam()
        o.learningRate = 0.01
        return o
    }

    /// A run resumed from a checkpoint follows the uninterrupted trajectory: bitwise on the CPU.
    @Test(arguments: DeviceKind.allCases)
    func resumeContinuesTheTrajectory(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        let task = try Self.smallTask()
        var straight: [Double] = []
        try Trainer(task: task, options: Self.options(device, epochs: 3)).train(finished: { straight.append($0.trainLoss) })

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-resume-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var resumed: [Double] = []
        let first = try Trainer(task: task, options: Self.options(device, epochs: 1))
        try first.train(finished: { resumed.append($0.trainLoss) })
        try first.saveCheckpoint(to: path)
        let second = try Trainer(task: task, options: Self.options(device, epochs: 3))
        try second.resume(from: path)
        #expect(second.epoch == 1)
        try second.train(finished: { resumed.append($0.trainLoss) })
        if device == .cpu {
            #expect(resumed == straight)
        } else {
            #expect(maxError(resumed, straight) < 1e-5)
        }
        #expect(straight[2] < straight[0])
    }

    @Test func checkpointFromAnotherModelIsRefused() throws {
        let task = try Self.smallTask()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-other-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Trainer(task: task, options: Self.options(.cpu, epochs: 1)).saveCheckpoint(to: path)
        let other = TaskData(name: "small", train: task.train, test: task.test, spec: .mlp(sizes: [6, 9, 3]))
        let trainer = try Trainer(task: other, options: Self.options(.cpu, epochs: 1))
        do {
            try trainer.resume(from: path)
            Issue.record("resumed from another model's checkpoint")
        } catch {
            #expect("\(error)".contains("another model") && "\(error)".contains(path), "\(error)")
        }
    }

    /// The NER sample corpus trains with a falling loss and a useful F1.
    @Test func nerSampleLearns() throws {
        let dir = Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("data/ner-sample").path
        let task = try TaskData.ner(directory: dir, vectors: nil, dim: 16, hidden: 32, seed: 1)
        var o = TrainingOptions()
        o.device = .cpu
        o.epochs = 4
        o.batchSize = 32
        var results: [EpochResult] = []
        try Trainer(task: task, options: o).train(finished: { results.append($0) })
        #expect(results.last!.trainLoss < results.first!.trainLoss / 2)
        #expect(results.last!.ner!.overall.f1 > 0.7, "F1 \(results.last!.ner!.overall.f1)")
    }

    @Test func schedules() {
        #expect(LRSchedule.constant.rate(base: 0.1, step: 99) == 0.1)
        #expect(abs(LRSchedule.step(every: 10, gamma: 0.5).rate(base: 0.1, step: 25) - 0.025) < 1e-15)
        let cosine = LRSchedule.cosine(warmup: 10, total: 110)
        #expect(abs(cosine.rate(base: 1, step: 4) - 0.5) < 1e-12)
        #expect(abs(cosine.rate(base: 1, step: 60) - 0.5) < 1e-12)
        #expect(cosine.rate(base: 1, step: 110) < 1e-12)
    }
}
