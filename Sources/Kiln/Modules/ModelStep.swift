import Foundation

/// What a model's code gives a compiled step: the scalar loss to minimize, and named metrics
/// fetched with it.
public struct Objective {
    public let loss: Tensor
    public let metrics: [String: Tensor]

    public init(_ loss: Tensor, metrics: [String: Tensor] = [:]) {
        self.loss = loss
        self.metrics = metrics
    }
}

/// The figures of one run: the loss and each metric.
public struct StepResult: Sendable {
    public let loss: Double
    public let metrics: [String: Double]
}

/// Any model's training step, compiled ahead: the user's code builds the loss (and metrics)
/// from the model and a `Batch` of named inputs; Kiln derives the gradients, appends the
/// optimizer's update and compiles the whole step for the device.
///
/// The batch size is not fixed: a program is compiled the first time feeds of a new shape
/// arrive (a last partial batch, an evaluation at another size) and cached. All of them hold
/// the same parameter values: before a program runs, it takes the newest values from the
/// program that last trained (on the device's side of the API; no user copies anything).
/// Parameters are initialized when the step is made (seeded, each from the model's own
/// initializer); the optimizer counts its own steps.
///
/// ```swift
/// let step = try ModelStep(model: net, optimizer: .adam(), device: .cpu) { net, batch in
///     try mseLoss(net(batch["x"]), batch["y"])
/// }
/// let loss = try step.train(["x": x, "y": y], learningRate: 1e-3).loss
/// ```
public final class ModelStep<M: Module> {
    public let model: M
    public let optimizer: Optimizer
    public let device: DeviceKind
    public let fusion: Bool?
    /// Data parallelism: the processes of an MPI job that train together (nil: this one alone).
    /// Each process runs its shard of every global batch; the gradients are weighted by each
    /// shard's share and summed across the processes before the update, and the processes
    /// start from rank 0's parameters.
    public let job: MPICollective?
    /// Optimizer steps taken (Adam's bias correction counts them).
    public private(set) var steps = 0
    /// Stop at the first kernel that writes NaN or Inf, naming it (nil: `KILN_CHECK_NUMERICS`);
    /// applies to the programs compiled after it is set.
    public var checkNumerics: Bool?
    /// The model's parameters by name, in declaration order.
    public let namedParameters: [(name: String, parameter: Parameter)]
    /// The model's state buffers (running statistics) by name; they are kept, saved and restored
    /// with the optimizer's state.
    public let namedBuffers: [(name: String, buffer: StateBuffer)]

    private let objective: (M, Batch) throws -> Objective
    private var training: [FeedSignature: Compiled] = [:]
    private var evaluation: [FeedSignature: Compiled] = [:]
    private var inference: [String: [FeedSignature: Compiled]] = [:]
    /// Bumped by every training run and load: a program whose `version` differs holds stale values.
    private var version = 0
    /// The program that holds the newest values, or nil when `hostParameters` and `hostState` do.
    private var newest: Compiled?
    private var hostParameters: [String: HostTensor]
    private var hostState: [String: HostTensor] = [:]

    /// - Parameters:
    ///   - objective: builds the loss (a scalar) and metrics from the model and the batch's
    ///     placeholders; called once per compiled shape.
    ///   - seed: seeds every parameter's initializer (parameter `i` from `(seed, i)`).
    public init(model: M, optimizer: Optimizer, device: DeviceKind = .gpu, seed: UInt64 = 0, fusion: Bool? = nil,
                job: MPICollective? = nil, objective: @escaping (M, Batch) throws -> Objective) throws {
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.fusion = fusion
        self.job = job
        self.objective = objective
        namedParameters = model.namedParameters()
        guard !namedParameters.isEmpty else {
            throw KilnError.invalidArgument(op: "ModelStep", message: "the model has no parameters (a Module's stored properties of type Parameter, or modules holding them)")
        }
        namedBuffers = model.namedBuffers()
        var names = Set<String>()
        for name in namedParameters.map(\.name) + namedBuffers.map(\.name) where !names.insert(name).inserted {
            throw KilnError.invalidArgument(op: "ModelStep", message: "two parameters or state buffers are named '\(name)'")
        }
        var values: [String: HostTensor] = [:]
        for (i, (name, p)) in namedParameters.enumerated() {
            var rng = SeededGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(i))
            let v = p.initializer.values(shape: p.shape, rng: &rng)
            values[name] = p.dtype == .float64 ? try HostTensor(v.map(Double.init), shape: p.shape) : try HostTensor(v, shape: p.shape)
        }
        if let job, job.size > 1 {
            for name in values.keys.sorted() { values[name] = try job.broadcast(values[name]!) }
        }
        hostParameters = values
        hostState = try Self.initialState(namedBuffers)
    }

    private static func initialState(_ buffers: [(name: String, buffer: StateBuffer)]) throws -> [String: HostTensor] {
        try buffers.reduce(into: [:]) { $0[$1.name] = try $1.buffer.initialTensor }
    }

    /// A step whose objective is the loss alone.
    public convenience init(model: M, optimizer: Optimizer, device: DeviceKind = .gpu, seed: UInt64 = 0, fusion: Bool? = nil,
                            job: MPICollective? = nil, loss: @escaping (M, Batch) throws -> Tensor) throws {
        try self.init(model: model, optimizer: optimizer, device: device, seed: seed, fusion: fusion, job: job) { Objective(try loss($0, $1)) }
    }

    // MARK: Running

    /// One optimizer step on a batch of named feeds (any batch size): returns the loss and
    /// metrics computed before the update. In a data-parallel job the feeds are this process's
    /// shard and `share` its fraction of the global batch (default: 1 / processes); the result
    /// is this process's own.
    @discardableResult
    public func train(_ feeds: [String: HostTensor], learningRate: Double, share: Double? = nil) throws -> StepResult {
        guard learningRate.isFinite, learningRate > 0 else {
            throw KilnError.invalidArgument(op: "train", message: "learning rate must be a positive number, got \(learningRate)")
        }
        let signature = FeedSignature(feeds)
        let c = try training[signature] ?? compile(signature, mode: .training)
        training[signature] = c
        try synchronize(c)
        var f = try c.feeds(feeds, step: steps + 1)
        for (t, v) in try c.optimizerFeeds!.values(step: steps + 1, learningRate: learningRate) { f[t] = v }
        if let scale = c.gradientScale {
            let s = share ?? 1 / Double(job?.size ?? 1)
            f[scale] = try HostTensor([s], shape: .scalar).converted(to: scale.dtype)
        }
        let out = try c.executable.run(feeds: f)
        steps += 1
        version += 1
        c.version = version
        newest = c
        return c.result(out)
    }

    /// The loss and metrics on a batch, without updating anything.
    public func evaluate(_ feeds: [String: HostTensor]) throws -> StepResult {
        let signature = FeedSignature(feeds)
        let c = try evaluation[signature] ?? compile(signature, mode: .evaluation)
        evaluation[signature] = c
        try synchronize(c)
        return c.result(try c.executable.run(feeds: c.feeds(feeds, step: steps)))
    }

    /// Forward-only outputs (predictions, embeddings) that `build` makes from the model and the
    /// batch, by name. Compiled once per `name` and feed shapes: one `name` must always build
    /// the same outputs.
    public func infer(_ feeds: [String: HostTensor], name: String = "outputs",
                      _ build: @escaping (M, Batch) throws -> [String: Tensor]) throws -> [String: HostTensor] {
        let signature = FeedSignature(feeds)
        let c = try inference[name]?[signature] ?? compile(signature, mode: .inference(build))
        inference[name, default: [:]][signature] = c
        try synchronize(c)
        let out = try c.executable.run(feeds: c.feeds(feeds, step: steps))
        return Dictionary(uniqueKeysWithValues: zip(c.fetchNames, out))
    }

    /// The training program for feeds of these shapes and dtypes (compiled now if it was
    /// not), for listings: its kernels, memory plan and all-reduce buckets.
    public func trainingProgram(for feeds: [String: HostTensor]) throws -> Program {
        let signature = FeedSignature(feeds)
        let c = try training[signature] ?? compile(signature, mode: .training)
        training[signature] = c
        return c.executable.program
    }

    // MARK: Values

    /// Every parameter's current value, by name.
    public func parameterValues() throws -> [String: HostTensor] {
        guard let newest else { return hostParameters }
        return try namedParameters.reduce(into: [:]) { out, p in out[p.name] = try newest.read(p.name) }
    }

    /// The optimizer's state (momenta, moments) by name (`<parameter>.v`, `.m`), and the model's
    /// state buffers (running statistics); before the first step, only the buffers.
    public func optimizerState() throws -> [String: HostTensor] {
        guard let newest else { return hostState }
        return try newest.stateTensors.keys.reduce(into: [:]) { out, name in out[name] = try newest.executable.read(newest.stateTensors[name]!) }
    }

    /// Replaces parameters (and optimizer state and step count, when given) by name. Every
    /// parameter must be given with its shape; the error lists what is missing, extra or of
    /// another shape.
    public func restore(parameters: [String: HostTensor], optimizerState: [String: HostTensor] = [:], steps: Int? = nil) throws {
        var problems: [String] = []
        for (name, p) in namedParameters {
            guard let v = parameters[name] else { problems.append("missing \(name) \(p.shape)"); continue }
            if v.shape != p.shape { problems.append("\(name) is \(v.shape), the model's is \(p.shape)") }
        }
        let known = Set(namedParameters.map(\.name))
        problems += parameters.keys.filter { !known.contains($0) }.sorted().map { "unknown \($0) \(parameters[$0]!.shape)" }
        guard problems.isEmpty else {
            throw KilnError.invalidValue(op: "restore", message: "the values do not fit the model: " + problems.joined(separator: "; "))
        }
        if let steps {
            guard steps >= 0 else { throw KilnError.invalidArgument(op: "restore", message: "steps must be >= 0, got \(steps)") }
            self.steps = steps
        }
        var converted: [String: HostTensor] = [:]
        for (name, p) in namedParameters { converted[name] = try parameters[name]!.converted(to: p.dtype) }
        hostParameters = converted
        // State buffers not given start over (running statistics at their initial values).
        hostState = try Self.initialState(namedBuffers).merging(optimizerState) { _, given in given }
        newest = nil
        version += 1
    }

    // MARK: Compiling

    private enum Mode {
        case training, evaluation
        case inference((M, Batch) throws -> [String: Tensor])
    }

    /// A program for one feed signature, loaded, with the tensors that hold each value.
    private final class Compiled {
        let batch: Batch
        let executable: Executable
        let parameterTensors: [String: Tensor]
        let stateTensors: [String: Tensor]
        let optimizerFeeds: Optimizer.Feeds?
        /// Data parallel: the scalar feed weighting this process's gradients.
        let gradientScale: Tensor?
        let fetchNames: [String]
        var version = -1

        init(batch: Batch, executable: Executable, parameterTensors: [String: Tensor], stateTensors: [String: Tensor],
             optimizerFeeds: Optimizer.Feeds?, gradientScale: Tensor?, fetchNames: [String]) {
            self.batch = batch
            self.executable = executable
            self.parameterTensors = parameterTensors
            self.stateTensors = stateTensors
            self.optimizerFeeds = optimizerFeeds
            self.gradientScale = gradientScale
            self.fetchNames = fetchNames
        }

        func read(_ name: String) throws -> HostTensor { try executable.read(parameterTensors[name]!) }

        /// The step counter (`Graph.stepCounter`), where the model reads it (dropout).
        lazy var stepCounter: Tensor? = batch.graph.inputs(.feed).first { $0.node.name == Graph.stepCounterName }

        /// The batch's feeds, and the step counter where the model reads it.
        func feeds(_ values: [String: HostTensor], step: Int) throws -> [Tensor: HostTensor] {
            var out: [Tensor: HostTensor] = [:]
            for (name, v) in values { out[try batch[name]] = v }
            if let counter = stepCounter {
                out[counter] = try HostTensor([Int32(truncatingIfNeeded: step)], shape: .scalar)
            }
            return out
        }

        /// Fetches are the loss, then the metrics in `fetchNames` order.
        func result(_ out: [HostTensor]) -> StepResult {
            StepResult(loss: out[0].scalarValue,
                       metrics: Dictionary(uniqueKeysWithValues: zip(fetchNames.dropFirst(), out.dropFirst().map(\.scalarValue))))
        }
    }

    private func compile(_ signature: FeedSignature, mode: Mode) throws -> Compiled {
        let batch = try Batch(signature: signature)
        let graph = batch.graph
        if case .training = mode { graph.training = true }
        var fetch: [(String, Tensor)] = []
        var optimizerFeeds: Optimizer.Feeds?, gradientScale: Tensor?
        switch mode {
        case .training, .evaluation:
            let o = try objective(model, batch)
            guard o.loss.graph === graph else {
                throw KilnError.invalidArgument(op: "ModelStep", message: "the loss belongs to another graph: build it from the batch's inputs")
            }
            guard o.loss.shape.count == 1, o.loss.dtype.isFloatingPoint else {
                throw KilnError.shapeMismatch(op: "ModelStep", message: "the loss must be a float scalar, got \(o.loss.dtype) \(o.loss.shape)")
            }
            if let bad = o.metrics.first(where: { $0.value.shape.count != 1 }) {
                throw KilnError.shapeMismatch(op: "ModelStep", message: "metric '\(bad.key)' must be a scalar, got \(bad.value.shape)")
            }
            fetch = [("loss", o.loss.shape.rank == 0 ? o.loss : try o.loss.reshaped(.scalar))]
                + o.metrics.keys.sorted().map { ($0, o.metrics[$0]!) }
            if case .training = mode {
                let params = try namedParameters.map { try $0.parameter.tensor(in: graph) }
                try requireDependence(of: o.loss, on: params)
                var grads = try graph.gradients(of: o.loss, wrt: params)
                if (job?.size ?? 1) > 1 {
                    // Summed across the processes between the backward pass and the update.
                    let scale = try graph.placeholder("gradient_scale", .scalar, o.loss.dtype)
                    grads = try grads.map { try graph.allReduce($0 * scale) }
                    gradientScale = scale
                }
                optimizerFeeds = try optimizer.apply(to: graph, parameters: params, gradients: grads)
            }
        case .inference(let build):
            let outputs = try build(model, batch)
            fetch = outputs.keys.sorted().map { ($0, outputs[$0]!) }
        }
        let program = try Compiler.compile(graph, fetch: fetch.map(\.1),
                                           options: Devices.compileOptions(for: device, fusion: fusion))
        let exe = try Devices.load(program, on: device, collective: job)
        if let checkNumerics { exe.checkNumerics = checkNumerics }
        var parameters: [String: Tensor] = [:], state: [String: Tensor] = [:]
        for decl in program.buffers {
            guard let id = decl.node else { continue }
            if decl.kind == .parameter { parameters[decl.name] = graph.tensor(id) }
            if decl.kind == .state { state[decl.name] = graph.tensor(id) }
        }
        return Compiled(batch: batch, executable: exe, parameterTensors: parameters, stateTensors: state,
                        optimizerFeeds: optimizerFeeds, gradientScale: gradientScale, fetchNames: fetch.map(\.0))
    }

    /// A parameter the loss does not read would never train: an error naming it.
    private func requireDependence(of loss: Tensor, on params: [Tensor]) throws {
        let nodes = loss.graph.nodes
        var reaches = [Bool](repeating: false, count: nodes.count)
        reaches[loss.id] = true
        for id in stride(from: loss.id, through: 0, by: -1) where reaches[id] {
            for i in nodes[id].inputs { reaches[i] = true }
        }
        let unused = params.filter { !reaches[$0.id] }.map { "\($0.node.label) \($0.shape)" }
        guard unused.isEmpty else {
            throw KilnError.invalidArgument(op: "ModelStep", message: "the loss does not depend on \(unused.joined(separator: ", ")): it would never train")
        }
    }

    /// Brings a program's parameters (and, for a training program, optimizer state) to the
    /// newest values, from the program that holds them or from the host copies.
    private func synchronize(_ c: Compiled) throws {
        guard c.version != version else { return }
        if let src = newest {
            for (name, t) in c.parameterTensors { try c.executable.write(t, src.read(name)) }
            for (name, t) in c.stateTensors {
                guard let s = src.stateTensors[name] else { continue }
                try c.executable.write(t, src.executable.read(s))
            }
        } else {
            for (name, t) in c.parameterTensors { try c.executable.write(t, hostParameters[name]!) }
            for (name, t) in c.stateTensors {
                try c.executable.write(t, try hostState[name]?.converted(to: t.dtype) ?? HostTensor.zeros(t.shape, t.dtype))
            }
        }
        c.version = version
    }
}
