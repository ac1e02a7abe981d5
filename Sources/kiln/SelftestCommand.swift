import ArgumentParser
import Foundation
import Kiln

/// `kiln selftest`: every kernel family and whole training steps on a device, compared with the
/// oracle (the CPU backend computing in Double with plain loops, unfused). It needs no Swift
/// toolchain and no fixture files, so a machine that has only a driver can check its device
/// before its benchmark figures are trusted.
struct SelftestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check a device against the CPU reference in Double: every kernel family and whole training steps.",
        discussion: """
            Each case runs a small graph (forward and gradients) or three training steps on the device in float32 \
            and on the oracle (the CPU backend in Double, plain loops, unfused) from the same seeded inputs. \
            Errors: abs = max |device - oracle|; rel = max |device - oracle| / max(1, |oracle|), which must stay \
            within the case's tolerance (as in the test suite). Exits with status 1 if any case fails.
            """
    )

    @Option(help: "cpu or gpu.")
    var device: DeviceKind = .gpu

    @Flag(name: .customLong("no-fusion"), help: "Compile the device's programs without fusion.")
    var noFusion = false

    @Option(help: "Run only the cases whose name contains this text.")
    var filter: String?

    @Flag(help: "Print one JSON object instead of a report.")
    var json = false

    func run() throws {
        let description = try Devices.describe(device)
        let fusion: Bool? = noFusion ? false : nil
        let cases = SelftestCase.all.filter { c in filter.map { c.name.contains($0) } ?? true }
        guard !cases.isEmpty else {
            throw KilnError.invalidArgument(op: "--filter", message: "no case name contains '\(filter ?? "")'")
        }
        let width = cases.map(\.name.count).max()! + 2
        if !json {
            print("Device \(description)")
            print("Oracle: the CPU backend in Double, plain loops, unfused. rel = |device - oracle| / max(1, |oracle|)")
            print("case".padding(toLength: width, withPad: " ", startingAt: 0) + "outputs    max abs    max rel   tolerance   seconds")
            fflush(nil)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        var results: [SelftestResult] = []
        for c in cases {
            let r = c.check(on: device, fusion: fusion)
            results.append(r)
            if !json {
                print(r.line(width: width))
                fflush(nil)  // a driver crash in a later case must not swallow the lines so far
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let failed = results.filter { !$0.passed }
        if json {
            let object: [String: Any] = [
                "device": description, "fusion": CompileOptions(fusion: fusion).fusion, "seconds": seconds,
                "passed": results.count - failed.count, "failed": failed.count, "cases": results.map(\.json),
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%d of %d cases passed in %.1f s", results.count - failed.count, results.count, seconds)
                + (failed.isEmpty ? "" : "; failed: " + failed.map(\.name).joined(separator: ", ")))
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

/// One case's outcome: the worst error over its outputs, or the error that stopped it.
struct SelftestResult {
    let name: String
    let outputs: Int
    let maxAbs: Double
    let maxRel: Double
    let tolerance: Double
    /// The output with the largest relative error.
    let worst: String
    /// The outputs whose error is over the tolerance.
    let over: [String]
    /// Why the case could not run (a build failure, a device error), if it could not.
    let error: String?
    let seconds: Double

    var passed: Bool { error == nil && over.isEmpty }

    /// The report's line, the name padded to `width`.
    func line(width: Int) -> String {
        let head = name.padding(toLength: width, withPad: " ", startingAt: 0)
        if let error { return head + "FAIL: \(error)" }
        let failure = over.count <= 3 ? over.joined(separator: ", ") : over.prefix(3).joined(separator: ", ") + ", ... (\(over.count) outputs)"
        return head + String(format: "%7d  %9.2e  %9.2e   %9.0e   %7.2f  ", outputs, maxAbs, maxRel, tolerance, seconds)
            + (passed ? "PASS" : "FAIL: " + failure)
    }

    var json: [String: Any] {
        var o: [String: Any] = ["name": name, "outputs": outputs, "tolerance": tolerance, "seconds": seconds, "pass": passed]
        // JSON has no infinity or NaN: a non-finite error is reported as null.
        o["max_abs_error"] = maxAbs.isFinite ? maxAbs : NSNull()
        o["max_rel_error"] = maxRel.isFinite ? maxRel : NSNull()
        if !worst.isEmpty { o["worst"] = worst }
        if !over.isEmpty { o["over_tolerance"] = over }
        if let error { o["error"] = error }
        return o
    }
}

/// A named check: runs something on the device and on the oracle and returns labelled pairs
/// (device, oracle) to compare.
struct SelftestCase {
    let name: String
    let tolerance: Double
    let body: (DeviceKind, Bool?) throws -> [(String, HostTensor, HostTensor)]

    /// Tolerances as the test suite's: single ops in float32 within 2e-4, whole steps within 1e-4.
    static let opTolerance = 2e-4, stepTolerance = 1e-4

    func check(on device: DeviceKind, fusion: Bool?) -> SelftestResult {
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
            return SelftestResult(name: name, outputs: pairs.count, maxAbs: maxAbs, maxRel: maxRel, tolerance: tolerance,
                                  worst: worst, over: over, error: nil, seconds: seconds())
        } catch {
            return SelftestResult(name: name, outputs: 0, maxAbs: .nan, maxRel: .nan, tolerance: tolerance,
                                  worst: "", over: [], error: "\(error)", seconds: seconds())
        }
    }

    /// Max absolute and relative (to max(1, |oracle|)) error; infinite when shapes differ or
    /// the device gave NaN where the oracle did not.
    static func errors(_ got: HostTensor, _ want: HostTensor) -> (Double, Double) {
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

// MARK: - Single ops

/// One op case's graph: seeded float32 inputs, named outputs, and (optionally) the gradients of
/// a randomly weighted sum of the differentiable outputs with respect to every float input.
final class SelftestGraph {
    let graph = Graph()
    private var rng: SeededGenerator
    private var values: [Tensor: HostTensor] = [:]
    private var floatInputs: [Tensor] = []
    private var outputs: [(label: String, tensor: Tensor, differentiable: Bool)] = []

    init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

    /// A float32 placeholder with values uniform in `range`; gradients are taken against it.
    func input(_ name: String, _ shape: Shape, _ range: ClosedRange<Double> = -1...1) throws -> Tensor {
        let t = try constantInput(name, shape, range)
        floatInputs.append(t)
        return t
    }

    /// A float32 placeholder with values uniform in `range` that gradients leave alone.
    private func constantInput(_ name: String, _ shape: Shape, _ range: ClosedRange<Double> = -1...1) throws -> Tensor {
        let t = try graph.placeholder(name, shape)
        values[t] = try HostTensor(rng.uniform(shape.count, in: range).map(Float.init), shape: shape)
        return t
    }

    /// An int32 placeholder with values uniform in [0, below).
    func ids(_ name: String, _ shape: Shape, below: Int) throws -> Tensor {
        let t = try graph.placeholder(name, shape, .int32)
        values[t] = try HostTensor((0..<shape.count).map { _ in Int32.random(in: 0..<Int32(below), using: &rng) }, shape: shape)
        return t
    }

    /// An output to compare; a differentiable one also feeds the loss whose gradients are compared.
    func output(_ label: String, _ t: Tensor, differentiable: Bool = true) {
        outputs.append((label, t, differentiable && t.dtype.isFloatingPoint))
    }

    /// Runs the outputs (and gradients) on `device` in float32 and on the oracle.
    func compare(on device: DeviceKind, fusion: Bool?, gradients: Bool) throws -> [(String, HostTensor, HostTensor)] {
        var labels = outputs.map(\.label), fetch = outputs.map(\.tensor)
        if gradients {
            var loss: Tensor?
            for o in outputs where o.differentiable {
                let weight = try constantInput("weight of \(o.label)", o.tensor.shape)
                let term = try (o.tensor * weight).sum()
                loss = try loss.map { try $0 + term } ?? term
            }
            if let loss {
                fetch += try graph.gradients(of: loss, wrt: floatInputs)
                labels += floatInputs.map { "d/d \($0.node.label)" }
            }
        }
        let program = try Compiler.compile(graph, fetch: fetch, options: CompileOptions(fusion: fusion, realType: Devices.realType(for: device)))
        let exe = try Devices.load(program, on: device)
        let got = try exe.run(feeds: exe.writeInputs(values))
        let want = try CPUReference<Double>().run(graph, feeds: values, fetch: fetch)
        return zip(labels, zip(got, want)).map { ($0, $1.0, $1.1) }
    }
}

extension SelftestCase {
    /// A case built on a `SelftestGraph`.
    static func ops(_ name: String, seed: UInt64, gradients: Bool = true, tolerance: Double = opTolerance,
                    _ build: @escaping (SelftestGraph) throws -> Void) -> SelftestCase {
        SelftestCase(name: name, tolerance: tolerance) { device, fusion in
            let g = SelftestGraph(seed: seed)
            try build(g)
            return try g.compare(on: device, fusion: fusion, gradients: gradients)
        }
    }

    static func transposeName(_ ta: Bool, _ tb: Bool) -> String { (ta ? "Aᵀ" : "A") + "·" + (tb ? "Bᵀ" : "B") }

    static var opCases: [SelftestCase] {
        var cases: [SelftestCase] = []
        cases.append(.ops("elementwise: every unary op [1000]", seed: 1) { g in
            let x = try g.input("x", [1000], 0.1...2)  // positive, for log and sqrt
            for op in UnaryOp.allCases { g.output("\(op)", try g.graph.unary(op, x)) }
        })
        cases.append(.ops("elementwise: every binary op [129,1] x [1,127]", seed: 2) { g in
            let col = try g.input("col", [129, 1]), row = try g.input("row", [1, 127], 0.5...2)
            for op in BinaryOp.allCases {
                g.output("\(op)", try g.graph.binary(op, col, row), differentiable: op != .greater && op != .equal)
            }
        })
        cases.append(.ops("elementwise: chain broadcasting [5,33,127]", seed: 3) { g in
            let a = try g.input("a", [5, 33, 127]), col = try g.input("col", [33, 1])
            let row = try g.input("row", [1, 1, 127]), s = try g.input("s", [], 0.5...2)
            let u = try (a * col + row).tanh() * s
            let v = try a.maximum(row) / (try col.exp() + 1)
            let w = try (a - s).relu().minimum(col)
            g.output("chain", try (u - v).sigmoid() + w * 0.5)
            g.output("scalar ops", try 2 - (a * a + 1).sqrt() / s)
        })
        cases.append(.ops("layout: transpose, reshape, broadcastTo", seed: 4) { g in
            let r = try g.input("r", [17, 129, 3]), col = try g.input("col", [129, 1])
            g.output("transpose [2,0,1]", try r.transposed([2, 0, 1]))
            g.output("transpose [1,0,2] * 3", try r.transposed([1, 0, 2]) * 3)
            g.output("reshape [129,51]", try r.reshaped([129, 51]).exp())
            g.output("broadcastTo [3,129,127]", try col.broadcast(to: [3, 129, 127]))
        })
        for op in ReduceOp.allCases {
            cases.append(.ops("reduce: \(op) of [17,129,3] over 6 axis sets", seed: 10) { g in
                let r = try g.input("r", [17, 129, 3])
                for (axes, keep) in [([0], true), ([1], false), ([2], true), ([0, 2], false), ([1, 2], true), ([0, 1, 2], false)] {
                    g.output("\(op) \(axes)\(keep ? " keepDims" : "")", try g.graph.reduce(op, r, axes: axes, keepDims: keep))
                }
            })
        }
        cases.append(.ops("reduce: long rows and columns [3,70000], [4099,5]", seed: 11) { g in
            let wide = try g.input("wide", [3, 70000]), tall = try g.input("tall", [4099, 5])
            g.output("sum [3,70000] axis 1", try wide.sum(axes: [1]))
            g.output("max [3,70000] all", try wide.max())
            g.output("mean [4099,5] axis 0", try tall.mean(axes: [0]))
            g.output("max [4099,5] axis 0", try tall.max(axes: [0], keepDims: true))
        })
        cases.append(.ops("reduce: with elementwise prologues", seed: 12) { g in
            let x = try g.input("x", [127, 129])
            g.output("sum of squares axis 1", try (x * x).sum(axes: [1]))
            g.output("mean of exp axis 0", try x.exp().mean(axes: [0]))
            g.output("max of tanh all", try x.tanh().max())
        })
        let sizes = [(1, 1, 1), (1, 17, 127), (17, 127, 129), (129, 17, 1), (127, 129, 17), (129, 1, 127), (128, 256, 64)]
        for (m, k, n) in sizes {
            cases.append(.ops("matmul: \(m)x\(k)x\(n), 4 transpose forms", seed: UInt64(100 + m + k + n)) { g in
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a = try g.input("A \(transposeName(ta, tb))", ta ? [k, m] : [m, k])
                    let b = try g.input("B \(transposeName(ta, tb))", tb ? [n, k] : [k, n])
                    g.output(transposeName(ta, tb), try a.matmul(b, transposeA: ta, transposeB: tb))
                }
            })
        }
        // Gradients of a matmul are matmuls of the other forms, checked above; at 512 the
        // oracle's plain loops would spend seconds on them.
        cases.append(.ops("matmul: 512x512x512, 4 transpose forms", seed: 200, gradients: false) { g in
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = try g.input("A \(transposeName(ta, tb))", [512, 512]), b = try g.input("B \(transposeName(ta, tb))", [512, 512])
                g.output(transposeName(ta, tb), try a.matmul(b, transposeA: ta, transposeB: tb))
            }
        })
        cases.append(.ops("matmul: bias and activation epilogues 127x129x17", seed: 201) { g in
            let x = try g.input("x", [127, 129]), w = try g.input("w", [129, 17]), b = try g.input("b", [17])
            g.output("relu(x·w + b)", try (x.matmul(w) + b).relu())
            g.output("tanh(x·w + b)", try (x.matmul(w) + b).tanh())
        })
        cases.append(.ops("embedding: gather [1000,17] by [129,5] repeated ids", seed: 300) { g in
            let table = try g.input("table", [1000, 17])
            // 645 ids below 40: every row is picked many times, so the gradient's scatter-add
            // accumulates repeats.
            g.output("gather", try g.graph.gather(table, ids: try g.ids("ids", [129, 5], below: 40)))
        })
        cases.append(.ops("embedding: scatterAdd [129,5,17] into 50 rows", seed: 301) { g in
            let values = try g.input("values", [129, 5, 17])
            g.output("scatterAdd", try g.graph.scatterAdd(values, ids: try g.ids("ids", [129, 5], below: 50), rows: 50))
            g.output("scatterAdd [1000,3] into 7 rows", try g.graph.scatterAdd(
                try g.input("many", [1000, 3]), ids: try g.ids("few", [1000], below: 7), rows: 7))
        })
        cases.append(.ops("softmaxCrossEntropy: [127,17] forward and gradient", seed: 400) { g in
            let logits = try g.input("logits", [127, 17], -5...5)
            g.output("loss", try g.graph.softmaxCrossEntropy(logits: logits, labels: try g.ids("labels", [127], below: 17)))
        })
        cases.append(.ops("softmaxCrossEntropy: large logits [64,1000], batch 1", seed: 401) { g in
            let big = try g.input("big", [64, 1000], -60...60)
            g.output("loss [64,1000]", try g.graph.softmaxCrossEntropy(logits: big, labels: try g.ids("labels", [64], below: 1000)))
            let one = try g.input("one", [1, 3], -1...1)
            g.output("loss [1,3]", try g.graph.softmaxCrossEntropy(logits: one, labels: try g.ids("label", [1], below: 3)))
        })
        cases.append(.ops("argmax and accuracy", seed: 500, gradients: false) { g in
            let r = try g.input("r", [17, 129, 3])
            for axis in 0..<3 { g.output("argmax axis \(axis)", try g.graph.argmax(r, axis: axis)) }
            let logits = try g.input("logits", [1000, 10])
            g.output("accuracy", try g.graph.accuracy(logits: logits, labels: try g.ids("labels", [1000], below: 10)))
        })
        return cases
    }
}

// MARK: - Training steps

extension SelftestCase {
    /// Three training steps of `model` with `optimizer` from the same seeded parameters and
    /// batches: the losses, accuracies and every parameter and optimizer state at the end.
    static func step(_ name: String, optimizer: Optimizer, _ model: @escaping () throws -> ClassifierGraph) -> SelftestCase {
        SelftestCase(name: name, tolerance: stepTolerance) { device, fusion in
            let m = try model()
            let params = m.parameters.tensors
            let feeds = try optimizer.apply(to: m.graph, parameters: params, gradients: try m.graph.gradients(of: m.loss, wrt: params))
            let fetch = [m.loss, m.accuracy]
            let program = try Compiler.compile(m.graph, fetch: fetch, options: CompileOptions(fusion: fusion, realType: Devices.realType(for: device)))
            let exe = try Devices.load(program, on: device)
            let oracle = try CPUExecutable<Double>(
                program: Compiler.compile(m.graph, fetch: fetch, options: CompileOptions(fusion: false, realType: .float64)), blas: false)
            let batches = try (0..<3).map { i -> (HostTensor, HostTensor) in
                let b = try m.randomBatch(seed: 11 + UInt64(i))
                return (b[m.input]!, b[m.labels]!)
            }
            func train(_ e: Executable) throws -> [HostTensor] {
                for (t, v) in try m.parameters.initialValues(seed: 7) { try e.write(t, v) }
                var out: [HostTensor] = []
                for (i, (x, y)) in batches.enumerated() {
                    var f = try feeds.values(step: i + 1, learningRate: 0.05)
                    f[m.input] = x
                    f[m.labels] = y
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

    static var stepCases: [SelftestCase] { [
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
        .step("step: word window V30 d4 h7, batch 8, momentum", optimizer: Optimizer(.momentum(0.9))) {
            try .wordWindow(batch: 8, vocabulary: 30, dim: 4, hidden: 7, classes: 5)
        },
        .step("step: word window V20000 d50 h128, batch 512, momentum", optimizer: Optimizer(.momentum(0.9))) {
            try ModelSpec.wordWindow(vocabulary: 20000, dim: 50, window: 5, hidden: 128, classes: 5).build(batch: 512)
        },
    ] }

    static var all: [SelftestCase] { opCases + stepCases }
}
