/// A classifier's whole training step (forward, backward, optimizer update) compiled once
/// and loaded on a device; each `run` uploads one batch and returns the loss and accuracy.
/// Parameters and optimizer state stay on the device between steps.
public final class TrainingStep {
    public let model: ClassifierGraph
    public let optimizer: Optimizer
    public let program: Program
    public let executable: Executable
    public let device: DeviceKind
    let feeds: Optimizer.Feeds
    /// Steps run so far (Adam's bias correction counts them).
    public private(set) var steps = 0

    /// Appends gradients and the optimizer's updates to `model`'s graph, compiles the step,
    /// loads it on `device` and writes the seeded initial parameters.
    public init(model: ClassifierGraph, optimizer: Optimizer, device: DeviceKind, seed: UInt64,
                fusion: Bool? = nil) throws {
        self.model = model
        self.optimizer = optimizer
        self.device = device
        let params = model.parameters.tensors
        let grads = try model.graph.gradients(of: model.loss, wrt: params)
        feeds = try optimizer.apply(to: model.graph, parameters: params, gradients: grads)
        program = try Compiler.compile(model.graph, fetch: [model.loss, model.accuracy],
                                       options: CompileOptions(fusion: fusion, realType: Devices.realType(for: device)))
        executable = try Devices.load(program, on: device)
        for (t, v) in try model.parameters.initialValues(seed: seed) { try executable.write(t, v) }
    }

    /// Runs one step on a batch at learning rate `learningRate`.
    @discardableResult
    public func run(input: HostTensor, labels: HostTensor, learningRate: Double) throws -> (loss: Double, accuracy: Double) {
        var f = try feeds.values(step: steps + 1, learningRate: learningRate)
        f[model.input] = input
        f[model.labels] = labels
        let out = try executable.run(feeds: f)
        steps += 1
        return (out[0].scalarValue, out[1].scalarValue)
    }

    /// Every parameter's and optimizer state tensor's current value, by name.
    public func state() throws -> [String: HostTensor] {
        var out: [String: HostTensor] = [:]
        for decl in program.buffers where decl.kind == .parameter || decl.kind == .state {
            out[decl.name] = try executable.read(model.graph.tensor(decl.node!))
        }
        return out
    }

    /// Restores parameters and optimizer state by name (from a checkpoint) and the step count.
    public func restore(_ values: [String: HostTensor], steps: Int) throws {
        for decl in program.buffers where decl.kind == .parameter || decl.kind == .state {
            guard let v = values[decl.name] else {
                throw KilnError.invalidValue(op: "restore", message: "the checkpoint has no tensor '\(decl.name)'")
            }
            try executable.write(model.graph.tensor(decl.node!), v)
        }
        self.steps = steps
    }
}
