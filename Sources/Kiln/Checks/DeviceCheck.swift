import Foundation

/// One case's outcome: the worst error over its outputs, or the error that stopped it.
public struct DeviceCheckResult: Sendable {
    public let name: String
    public let outputs: Int
    public let maxAbs: Double
    public let maxRel: Double
    public let tolerance: Double
    /// The output with the largest relative error.
    public let worst: String
    /// The outputs whose error is over the tolerance.
    public let over: [String]
    /// Why the case could not run (a build failure, a device error), if it could not.
    public let error: String?
    public let seconds: Double

    public var passed: Bool { error == nil && over.isEmpty }

    /// The report's line, the name padded to `width`.
    public func line(width: Int) -> String {
        let head = name.padding(toLength: width, withPad: " ", startingAt: 0)
        if let error { return head + "FAIL: \(error)" }
        let failure = over.count <= 3 ? over.joined(separator: ", ") : over.prefix(3).joined(separator: ", ") + ", ... (\(over.count) outputs)"
        return head + String(format: "%7d  %9.2e  %9.2e   %9.0e   %7.2f  ", outputs, maxAbs, maxRel, tolerance, seconds)
            + (passed ? "PASS" : "FAIL: " + failure)
    }

    public var json: [String: Any] {
        var o: [String: Any] = ["name": name, "outputs": outputs, "tolerance": tolerance, "seconds": seconds, "pass": passed]
        // A non-finite error is written as null (JSONText: JSON has no infinity or NaN).
        o["max_abs_error"] = maxAbs
        o["max_rel_error"] = maxRel
        if !worst.isEmpty { o["worst"] = worst }
        if !over.isEmpty { o["over_tolerance"] = over }
        if let error { o["error"] = error }
        return o
    }
}

/// A named check: runs something on a device and on the oracle (the CPU backend in Double,
/// plain loops, unfused) and compares the labelled pairs (device, oracle) it returns. `kiln
/// selftest` runs `DeviceCheck.all`; the test suite runs the same op cases and steps.
public struct DeviceCheck: Sendable {
    public let name: String
    public let tolerance: Double
    public let body: @Sendable (DeviceKind, Bool?) throws -> [(String, HostTensor, HostTensor)]

    public init(name: String, tolerance: Double, body: @escaping @Sendable (DeviceKind, Bool?) throws -> [(String, HostTensor, HostTensor)]) {
        self.name = name
        self.tolerance = tolerance
        self.body = body
    }

    /// Tolerances as the test suite's: single ops in float32 within 2e-4, whole steps within 1e-4.
    public static let opTolerance = 2e-4, stepTolerance = 1e-4

    /// Runs the check; a thrown error becomes a failed result naming it.
    public func check(on device: DeviceKind, fusion: Bool?) -> DeviceCheckResult {
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        do {
            let pairs = try body(device, fusion)
            var maxAbs = 0.0, maxRel = 0.0, worst = "", over: [String] = []
            for (label, got, want) in pairs {
                let (a, r) = Self.errors(got, want)
                maxAbs = Swift.max(maxAbs, a)
                if r > maxRel || worst.isEmpty { maxRel = Swift.max(maxRel, r); worst = label }
                if !(r <= tolerance) { over.append(got.shape == want.shape ? label : "\(label) (shape \(got.shape), expected \(want.shape))") }
            }
            return DeviceCheckResult(name: name, outputs: pairs.count, maxAbs: maxAbs, maxRel: maxRel, tolerance: tolerance,
                                  worst: worst, over: over, error: nil, seconds: seconds())
        } catch {
            return DeviceCheckResult(name: name, outputs: 0, maxAbs: .nan, maxRel: .nan, tolerance: tolerance,
                                  worst: "", over: [], error: "\(error)", seconds: seconds())
        }
    }

    /// Max absolute and relative (to max(1, |oracle|)) error; infinite when shapes differ or
    /// the device gave NaN where the oracle did not.
    public static func errors(_ got: HostTensor, _ want: HostTensor) -> (Double, Double) {
        guard got.shape == want.shape else { return (.infinity, .infinity) }
        var maxAbs = 0.0, maxRel = 0.0
        for (d, r) in zip(got.doubles, want.doubles) {
            // Equal values (infinities included) and NaN on both sides differ by nothing; NaN on
            // one side, or infinities of opposite sign, by infinitely much.
            let diff = d == r || (d.isNaN && r.isNaN) ? 0 : Swift.abs(d - r)
            let e = diff.isNaN ? Double.infinity : diff
            maxAbs = Swift.max(maxAbs, e)
            maxRel = Swift.max(maxRel, e / Swift.max(1, Swift.abs(r)))
        }
        return (maxAbs, maxRel)
    }
}

extension DeviceCheck {
    /// Three training steps of `model` with `optimizer` from the same seeded parameters and
    /// batches: the losses, accuracies and every parameter and optimizer state at the end.
    static func step(_ name: String, optimizer: Optimizer, _ model: @escaping @Sendable () throws -> ClassifierGraph) -> DeviceCheck {
        DeviceCheck(name: name, tolerance: stepTolerance) { device, fusion in
            let m = try model()
            let params = m.parameters.tensors
            let feeds = try optimizer.apply(to: m.graph, parameters: params, gradients: try m.graph.gradients(of: m.loss, wrt: params))
            let fetch = [m.loss, m.accuracy]
            let program = try Compiler.compile(m.graph, fetch: fetch, options: Devices.compileOptions(for: device, fusion: fusion))
            let exe = try Devices.load(program, on: device)
            let oracle = try CPUExecutable<Double>(
                program: Compiler.compile(m.graph, fetch: fetch, options: CompileOptions(fusion: false, realType: .float64)), blas: false)
            let batches = try (0..<3).map { i -> (HostTensor, HostTensor) in
                let b = try m.randomBatch(seed: 11 + UInt64(i))
                return (b[m.input]!, b[m.labels]!)
            }
            // Dropout's step counter, where the model has one.
            let counter = m.graph.inputs(.feed).first { $0.node.name == Graph.stepCounterName }
            func train(_ e: Executable) throws -> [HostTensor] {
                for (t, v) in try m.parameters.initialValues(seed: 7) { try e.write(t, v) }
                var out: [HostTensor] = []
                for (i, (x, y)) in batches.enumerated() {
                    var f = try feeds.values(step: i + 1, learningRate: 0.05)
                    f[m.input] = x
                    f[m.labels] = y
                    if let counter = counter { f[counter] = try HostTensor([Int32(i + 1)], shape: .scalar) }
                    out += try e.run(feeds: f)
                }
                return out
            }
            let state = program.buffers.filter { $0.kind == .parameter || $0.kind == .state }.sorted { $0.name < $1.name }
            let labels = (1...3).flatMap { ["loss at step \($0)", "accuracy at step \($0)"] } + state.map { "\($0.name) after 3 steps" }
            let got = try train(exe) + state.map { try exe.read(m.graph.tensor($0.node!)) }
            let want = try train(oracle) + state.map { try oracle.read(m.graph.tensor($0.node!)) }
            return zip(labels, zip(got, want)).map { ($0, $1.0, $1.1) }
        }
    }

    public static let steps: [DeviceCheck] = [
        .step("step: MLP 20-17-9-5 relu, batch 16, momentum", optimizer: Optimizer(.momentum(0.9))) {
            try .mlp(batch: 16, sizes: [20, 17, 9, 5])
        },
        .step("step: MLP 7-129-3 sigmoid, batch 3, nesterov + wd", optimizer: Optimizer(.nesterov(0.8), weightDecay: 0.01)) {
            try .mlp(batch: 3, sizes: [7, 129, 3], activation: .sigmoid)
        },
        .step("step: MLP 20-17-9-5 tanh, batch 16, adam", optimizer: .adam()) {
            try .mlp(batch: 16, sizes: [20, 17, 9, 5], activation: .tanh)
        },
        .step("step: MLP 784-256-128-10 relu, batch 128, momentum", optimizer: Optimizer(.momentum(0.9))) {
            try ModelSpec.mlp(sizes: [784, 256, 128, 10]).build(batch: 128)
        },
        // Momentum, not Adam: a convolution's bias before batch norm has a gradient of rounding
        // noise only, which Adam would scale to whole steps of either sign.
        .step("step: CNN 1-4-8 on 8x8, batch norm, dropout, batch 4, momentum", optimizer: Optimizer(.momentum(0.9))) {
            try ModelSpec.cnn(channels: [1, 4, 8], image: [8, 8], hidden: 16, classes: 5, dropout: 0.25).build(batch: 4)
        },
        .languageModel(context: 16, layers: 2),
        .step("step: word window V30 d4 h7, batch 8, momentum", optimizer: Optimizer(.momentum(0.9))) {
            try .wordWindow(batch: 8, vocabulary: 30, dim: 4, hidden: 7, classes: 5)
        },
        .step("step: word window V20000 d50 h128, batch 512, momentum", optimizer: Optimizer(.momentum(0.9))) {
            try ModelSpec.wordWindow(vocabulary: 20000, dim: 50, window: 5, hidden: 128, classes: 5).build(batch: 512)
        },
    ]

    /// Three AdamW steps with weight-decay groups and global-norm clipping of a small GPT (batched
    /// attention matmuls, causal mask, softmax, layer norm, GELU, embedding): the losses and
    /// every parameter and optimizer state at the end.
    static func languageModel(context: Int, layers: Int) -> DeviceCheck {
        DeviceCheck(name: "step: GPT V11 T\(context) w16 \(layers) layer\(layers == 1 ? "" : "s") 2 heads, batch 4, AdamW + clip",
                    tolerance: stepTolerance) { device, fusion in
            let model = try TransformerLanguageModel(TransformerConfig(vocabulary: 11, context: context, width: 16, layers: layers, heads: 2))
            let named = model.namedParameters(), buffers = model.namedBuffers()
            let g = Graph()
            g.training = true
            let ids = try g.placeholder("tokens", [4, context], .int32), targets = try g.placeholder("targets", [4, context], .int32)
            let loss = try crossEntropy(model(ids), targets)
            let params = try named.map { try $0.parameter.tensor(in: g) }
            let optimizer = Optimizer.adamW(weightDecay: 0.1, decayGroup: .matrices, clipNorm: 0.5)
            let feeds = try optimizer.apply(to: g, parameters: params, gradients: try g.gradients(of: loss, wrt: params))
            let program = try Compiler.compile(g, fetch: [loss], options: Devices.compileOptions(for: device, fusion: fusion))
            let exe = try Devices.load(program, on: device)
            let oracle = try CPUExecutable<Double>(
                program: Compiler.compile(g, fetch: [loss], options: CompileOptions(fusion: false, realType: .float64)), blas: false)
            var rng = SeededGenerator(seed: 13)
            let text = (0..<200).map { _ in Int32.random(in: 0..<11, using: &rng) }
            let windows = try TextWindows(text, context: context)
            let batches = try (0..<3).map { try windows.random(count: 4, seed: 3, step: $0) }
            func train(_ e: Executable) throws -> [HostTensor] {
                for (i, (_, p)) in named.enumerated() {
                    var r = SeededGenerator(seed: 7 &+ UInt64(i))
                    try e.write(params[i], try HostTensor(p.initializer.values(shape: p.shape, rng: &r), shape: p.shape))
                }
                for (_, b) in buffers { try e.write(try b.tensor(in: g), try b.initialTensor) }
                var out: [HostTensor] = []
                for (i, batch) in batches.enumerated() {
                    var f = try feeds.values(step: i + 1, learningRate: 0.01)
                    f[ids] = batch["tokens"]
                    f[targets] = batch["targets"]
                    out += try e.run(feeds: f)
                }
                return out
            }
            let state = program.buffers.filter { $0.kind == .parameter || $0.kind == .state }.sorted { $0.name < $1.name }
            let labels = (1...3).map { "loss at step \($0)" } + state.map { "\($0.name) after 3 steps" }
            let got = try train(exe) + state.map { try exe.read(g.tensor($0.node!)) }
            let want = try train(oracle) + state.map { try oracle.read(g.tensor($0.node!)) }
            return zip(labels, zip(got, want)).map { ($0, $1.0, $1.1) }
        }
    }

    /// A device-vs-oracle op case (`OpCases.parity`) as a check.
    public static func op(_ c: OpCase) -> DeviceCheck {
        DeviceCheck(name: c.name, tolerance: opTolerance) { device, fusion in
            try CaseGraph([c]).compare(gradients: c.gradients, fusion: fusion, realType: Devices.realType(for: device)) {
                try Devices.load($0, on: device)
            }.map { ($0.label, $0.device, $0.oracle) }
        }
    }

    /// Runs `fetch` of `graph` from `values` on the executable `load` makes of the compiled
    /// program, and on the oracle: the CPU backend in Double, plain loops, unfused.
    public static func compare(_ graph: Graph, fetch: [Tensor], values: [Tensor: HostTensor], fusion: Bool?,
                               realType: DType? = nil,
                               load: (Program) throws -> Executable) throws -> (device: [HostTensor], oracle: [HostTensor]) {
        let program = try Compiler.compile(graph, fetch: fetch, options: CompileOptions(fusion: fusion, realType: realType))
        let exe = try load(program)
        let device = try exe.run(feeds: exe.writeInputs(values))
        return (device, try CPUReference<Double>().run(graph, feeds: values, fetch: fetch))
    }

    /// Every op case, then whole training steps.
    public static var all: [DeviceCheck] { OpCases.parity.map(op) + steps }

    /// Every op case at small sizes, then the training steps of small models (`kiln selftest
    /// --small`, for simulators).
    public static var small: [DeviceCheck] {
        // The GPT with one layer over 8 positions: the same kernels, a third of the simulation.
        OpCases.small.map(op) + steps.filter { !$0.name.contains("784") && !$0.name.contains("V20000") && !$0.name.contains("GPT") }
            + [.languageModel(context: 8, layers: 1)]
    }
}
