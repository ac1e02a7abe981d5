// Fits y = sin(3x) on [-1, 1] with a small MLP and the mean squared error; evaluates on all
// 1000 points at once (a batch size the training never used).
//   swift run regression [steps] [cpu|gpu]
import Foundation
import Kiln

final class Regressor: Module {
    let hidden = Linear(1, 64), out = Linear(64, 1)
    func callAsFunction(_ x: Tensor) throws -> Tensor { try out(hidden(x).tanh()) }
}

func main(steps: Int, device: DeviceKind) throws {
    var rng = SeededGenerator(seed: 0)
    let xs = rng.uniform(1000, in: -1...1).map(Float.init)
    func feeds(_ rows: [Int]) throws -> [String: HostTensor] {
        ["x": try HostTensor(rows.map { xs[$0] }, shape: [rows.count, 1]),
         "y": try HostTensor(rows.map { sin(3 * xs[$0]) }, shape: [rows.count, 1])]
    }
    let step = try ModelStep(model: Regressor(), optimizer: .adam(), device: device) { net, batch in
        try mseLoss(net(batch["x"]), batch["y"])
    }
    for i in 1...steps {
        let loss = try step.train(feeds((0..<64).map { _ in Int.random(in: 0..<1000, using: &rng) }), learningRate: 0.01).loss
        if i % 500 == 0 { print("step \(i): loss \(loss)") }
    }
    print("final loss \(try step.evaluate(feeds(Array(0..<1000))).loss)")
}

let arguments = CommandLine.arguments.dropFirst()
do {
    try main(steps: arguments.first.flatMap { Int($0) } ?? 2000,
             device: arguments.dropFirst().first.flatMap { DeviceKind(rawValue: $0) } ?? .cpu)
} catch {
    FileHandle.standardError.write(Data("regression: \(error)\n".utf8))
    exit(1)
}
