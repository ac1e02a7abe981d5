// An autoencoder on Fashion-MNIST: 784 pixels squeezed through 32 numbers and back, trained
// with binary cross-entropy on the logits; prints the reconstruction loss on 1000 test images.
//   swift run autoencoder [steps] [cpu|gpu] [data directory]
import Foundation
import Kiln

final class Autoencoder: Module {
    let encoder = Sequential(Linear(784, 128), Activation.relu, Linear(128, 32))
    let decoder = Sequential(Linear(32, 128), Activation.relu, Linear(128, 784))
    func callAsFunction(_ x: Tensor) throws -> Tensor { try decoder(encoder(x).relu()) }
}

/// A split of Fashion-MNIST as rows of 784 pixels in [0, 1].
func images(_ directory: String, _ split: ImageDataset.Split) throws -> LabeledData {
    let d = try ImageDataset.load(directory: directory, split: split)
    return LabeledData(rows: .features(d.images), width: d.features, labels: d.labels)
}

func main(steps: Int, device: DeviceKind, directory: String) throws {
    let (train, test) = try (images(directory, .train), images(directory, .test))
    func feeds(_ data: LabeledData, _ rows: [Int]) throws -> [String: HostTensor] { ["x": try data.batch(rows).input] }
    let step = try ModelStep(model: Autoencoder(), optimizer: .adam(), device: device) { net, batch in
        try binaryCrossEntropyWithLogits(net(batch["x"]), batch["x"])
    }
    var done = 0
    for epoch in 0... {
        for rows in try BatchIterator(count: train.count, batchSize: 128, seed: 0, epoch: epoch, dropLast: true) where done < steps {
            let loss = try step.train(feeds(train, rows), learningRate: 1e-3).loss
            done += 1
            if done % 100 == 0 { print("step \(done): loss \(loss)") }
        }
        if done >= steps { break }
    }
    print("final loss \(try step.evaluate(feeds(test, Array(0..<1000))).loss)")
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    try main(steps: arguments.first.flatMap { Int($0) } ?? 1000,
             device: arguments.count > 1 ? DeviceKind(rawValue: arguments[1]) ?? .cpu : .cpu,
             directory: arguments.count > 2 ? arguments[2] : ImageDataset.defaultFashionMNISTDirectory)
} catch {
    FileHandle.standardError.write(Data("autoencoder: \(error)\n".utf8))
    exit(1)
}
