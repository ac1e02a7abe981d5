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
    /// Data parallelism: the processes the gradients are summed over, and the scalar feed that
    /// weights this process's gradient (its share of the global batch) before the sum.
    public let collective: Collective?
    let gradientScale: Tensor?
    /// Steps run so far (Adam's bias correction counts them).
    public private(set) var steps = 0

    /// Appends gradients and the optimizer's updates to `model`'s graph, compiles the step,
    /// loads it on `device` and writes the seeded initial parameters.
    ///
    /// With a `collective` of several processes, each gradient is weighted by this process's
    /// share of the global batch and summed across the processes (an `allReduce` between the
    /// backward pass and the update), so every process applies the gradient of the whole batch.
    public init(model: ClassifierGraph, optimizer: Optimizer, device: DeviceKind, seed: UInt64,
                fusion: Bool? = nil, collective: Collective? = nil) throws {
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.collective = collective
        // A job of one process has nothing to sum: its step is the plain one.
        (feeds, gradientScale) = try Self.appendStep(to: model, optimizer: optimizer, dataParallel: (collective?.size ?? 1) > 1)
        program = try Compiler.compile(model.graph, fetch: [model.loss, model.accuracy],
                                       options: Devices.compileOptions(for: device, fusion: fusion))
        executable = try Devices.load(program, on: device, collective: collective)
        for (t, v) in try model.parameters.initialValues(seed: seed) { try executable.write(t, v) }
    }

    /// Appends a training step to `model`'s graph: the gradients of its loss and the
    /// optimizer's update. With `dataParallel`, each gradient is first weighted by the scalar
    /// feed it returns, `gradient_scale` (this process's share of the global batch), and summed
    /// across the processes by an `allReduce`; the update takes the sums.
    public static func appendStep(to model: ClassifierGraph, optimizer: Optimizer,
                                  dataParallel: Bool = false) throws -> (feeds: Optimizer.Feeds, gradientScale: Tensor?) {
        let graph = model.graph, params = model.parameters.tensors
        var grads = try graph.gradients(of: model.loss, wrt: params)
        var scale: Tensor?
        if dataParallel {
            let s = try graph.placeholder("gradient_scale", .scalar, model.loss.dtype)
            grads = try grads.map { try graph.allReduce($0 * s) }
            scale = s
        }
        return (try optimizer.apply(to: graph, parameters: params, gradients: grads), scale)
    }

    /// Runs one step on a batch at learning rate `learningRate`. In a data-parallel step,
    /// `share` is this batch's fraction of the global batch (1 / processes when the shards are
    /// equal, the default); the loss and accuracy returned are this process's own.
    @discardableResult
    public func run(input: HostTensor, labels: HostTensor, learningRate: Double, share: Double? = nil) throws -> (loss: Double, accuracy: Double) {
        var f = try feeds.values(step: steps + 1, learningRate: learningRate)
        f[model.input] = input
        f[model.labels] = labels
        if let gradientScale {
            let s = share ?? 1 / Double(collective?.size ?? 1)
            f[gradientScale] = gradientScale.dtype == .float64 ? try HostTensor([s], shape: .scalar) : try HostTensor([Float(s)], shape: .scalar)
        }
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
