// Fits y = sin(3x) on [-1, 1] with a small MLP and the mean squared error, through the epoch
// loop (ModelTrainer); under mpirun the processes train together, each on its shard of every
// batch. The last line is the loss on all 1024 points at once.
//   swift run regression [epochs] [cpu|gpu]          mpirun -np 2 .build/debug/regression
import Foundation
import Kiln

final class Regressor: Module {
    let hidden = Linear(1, 64), out = Linear(64, 1)
    func callAsFunction(_ x: Tensor) throws -> Tensor { try out(hidden(x).tanh()) }
}

func main(epochs: Int, device: DeviceKind, job: MPICollective?) throws {
    var rng = SeededGenerator(seed: 0)
    let xs = rng.uniform(1024, in: -1...1).map(Float.init)
    let data = try TensorDataset(["x": HostTensor(xs, shape: [1024, 1]), "y": HostTensor(xs.map { sin(3 * $0) }, shape: [1024, 1])])
    let step = try ModelStep(model: Regressor(), optimizer: .adam(), device: device, job: job) { net, batch in
        try mseLoss(net(batch["x"]), batch["y"])
    }
    var options = FitOptions()
    (options.epochs, options.batchSize, options.learningRate) = (epochs, 64, 0.01)
    let leader = (job?.rank ?? 0) == 0
    try ModelTrainer(step: step, train: data, evaluation: data, options: options).fit(finished: { epoch in
        if leader && epoch.epoch % 25 == 0 { print("epoch \(epoch.epoch): loss \(epoch.evaluation!.loss)") }
    })
    if leader { print("final loss \(try step.evaluate(data.batch(Array(0..<1024))).loss)") }
}

let arguments = Array(CommandLine.arguments.dropFirst())
let job = MPICollective.launchedByMPI() ? try? MPICollective.world() : nil
do {
    try main(epochs: arguments.first.flatMap { Int($0) } ?? 100,
             device: arguments.count > 1 ? DeviceKind(rawValue: arguments[1]) ?? .cpu : .cpu, job: job)
    job?.finalize()
} catch {
    FileHandle.standardError.write(Data("regression: \(error)\n".utf8))
    if let job, job.size > 1 { job.abort(code: 1) }
    exit(1)
}
