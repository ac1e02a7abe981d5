import Foundation
import Testing
import Kiln

/// The README's library example, as written there (but stopping after a few batches), so that
/// the README keeps compiling.
@Suite struct ReadmeExampleTests {
    final class Regressor: Module {
        let hidden = Linear(1, 64), out = Linear(64, 1)
        func callAsFunction(_ x: Tensor) throws -> Tensor { try out(hidden(x).tanh()) }
    }

    /// The README's first example, as written there, on batches of 32 and a last one of 8.
    @Test func trainsWithTheGeneralExample() throws {
        var rng = SeededGenerator(seed: 1)
        let xs = rng.uniform(200, in: -1...1).map(Float.init)
        func rows(_ r: Range<Int>) throws -> (HostTensor, HostTensor) {
            (try HostTensor(Array(xs[r]), shape: [r.count, 1]), try HostTensor(xs[r].map { $0 * $0 }, shape: [r.count, 1]))
        }
        let batches = try stride(from: 0, to: 200, by: 32).map { try rows($0..<min($0 + 32, 200)) }
        let (testX, testY) = try rows(0..<200)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }

        let step = try ModelStep(model: Regressor(), optimizer: .adam(), device: .cpu) { net, batch in
            try mseLoss(net(batch["x"]), batch["y"])
        }
        let before = try step.evaluate(["x": testX, "y": testY]).loss
        for _ in 0..<20 {
            for (x, y) in batches {                        // HostTensors [n, 1]; any n, a last partial batch too
                _ = try step.train(["x": x, "y": y], learningRate: 1e-2).loss
            }
        }
        let test = try step.evaluate(["x": testX, "y": testY])      // another batch size: no copying
        try step.save(to: path)                    // parameters by name
        #expect(test.loss < before / 4, "\(before) -> \(test.loss)")
        #expect(try SafeTensorsFile.read(path: path).tensors.keys.sorted() == ["hidden.bias", "hidden.weight", "out.bias", "out.weight"])
    }

    /// The graph-level classifier path (`ClassifierGraph` and `TrainingStep`) still trains.
    @Test func trainsAClassifierGraphStep() throws {
        guard try TrainingTests.fashionMNIST() != nil else { return }
        var losses: [Double] = []
        let model = try ClassifierGraph.mlp(batch: 128, sizes: [784, 256, 128, 10])   // Linear, ReLU, Linear, ReLU, Linear
        let step = try TrainingStep(model: model, optimizer: Optimizer(.momentum(0.9)), device: .cpu, seed: 0)
        let data = try ImageDataset.load(directory: ImageDataset.defaultFashionMNISTDirectory, split: .train)
        let train = LabeledData(rows: .features(data.images), width: data.features, labels: data.labels)
        for epoch in 0..<1 {
            for batch in try BatchIterator(count: train.count, batchSize: 128, seed: 0, epoch: epoch, dropLast: true).prefix(30) {
                let (x, y) = try train.batch(batch)
                let (loss, _) = try step.run(input: x, labels: y, learningRate: 0.1)
                losses.append(loss)
            }
        }
        #expect(losses.count == 30)
        #expect(losses.suffix(5).reduce(0, +) < losses.prefix(5).reduce(0, +))
    }
}
