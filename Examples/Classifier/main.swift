// A Fashion-MNIST classifier with a loop of its own: cross-entropy with label smoothing,
// accuracy as a metric, and a test pass in batches of 768 (the last one partial).
//   swift run classifier [epochs] [cpu|gpu] [data directory]
import Foundation
import Kiln

final class Classifier: Module {
    let layers = Sequential(Linear(784, 256), Activation.relu, Linear(256, 10))
}

/// A split of Fashion-MNIST as rows of 784 pixels in [0, 1], with their labels.
func images(_ directory: String, _ split: ImageDataset.Split) throws -> LabeledData {
    let d = try ImageDataset.load(directory: directory, split: split)
    return LabeledData(rows: .features(d.images), width: d.features, labels: d.labels)
}

func main(epochs: Int, device: DeviceKind, directory: String) throws {
    let (train, test) = try (images(directory, .train), images(directory, .test))
    func feeds(_ data: LabeledData, _ rows: [Int]) throws -> [String: HostTensor] {
        let (x, y) = try data.batch(rows)
        return ["x": x, "y": y]
    }
    let step = try ModelStep(model: Classifier(), optimizer: Optimizer(.momentum(0.9)), device: device) { net, batch in
        let logits = try net.layers(batch["x"]), labels = try batch["y"]
        return Objective(try crossEntropy(logits, labels, labelSmoothing: 0.1),
                         metrics: ["accuracy": try logits.graph.accuracy(logits: logits, labels: labels)])
    }
    for epoch in 0..<epochs {
        for rows in try BatchIterator(count: train.count, batchSize: 128, seed: 0, epoch: epoch, dropLast: false) {
            try step.train(feeds(train, rows), learningRate: 0.05)
        }
        var correct = 0.0, loss = 0.0
        for start in stride(from: 0, to: test.count, by: 768) {
            let rows = Array(start..<min(start + 768, test.count))
            let r = try step.evaluate(feeds(test, rows))
            (correct, loss) = (correct + r.metrics["accuracy"]! * Double(rows.count), loss + r.loss * Double(rows.count))
        }
        print("epoch \(epoch + 1): test accuracy \(correct / Double(test.count))")
        print("final loss \(loss / Double(test.count))")
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    try main(epochs: arguments.first.flatMap { Int($0) } ?? 3,
             device: arguments.count > 1 ? DeviceKind(rawValue: arguments[1]) ?? .cpu : .cpu,
             directory: arguments.count > 2 ? arguments[2] : ImageDataset.defaultFashionMNISTDirectory)
} catch {
    FileHandle.standardError.write(Data("classifier: \(error)\n".utf8))
    exit(1)
}
