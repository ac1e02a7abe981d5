import Testing
import Kiln

/// The README's library example, as written there (but stopping after a few batches), so that
/// the README keeps compiling.
@Suite struct ReadmeExampleTests {
    @Test func trainsWithTheReadmeExample() throws {
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
