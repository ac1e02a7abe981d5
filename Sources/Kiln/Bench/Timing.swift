import Foundation

/// Repeated wall-clock measurements: warm-up runs first, then the median, minimum and maximum.
public struct Timing: Sendable {
    public let seconds: [Double]

    public init(seconds: [Double]) { self.seconds = seconds }

    /// Runs `body` `warmup` times untimed, then `repeats` times timed.
    public static func measure(warmup: Int, repeats: Int, _ body: () throws -> Void) rethrows -> Timing {
        for _ in 0..<warmup { try body() }
        var seconds: [Double] = []
        for _ in 0..<Swift.max(repeats, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return Timing(seconds: seconds)
    }

    public var median: Double {
        let s = seconds.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    public var min: Double { seconds.min() ?? 0 }
    public var max: Double { seconds.max() ?? 0 }
}

/// The standard workloads, as the step benchmarks run them.
public enum Benchmarks {
    /// `C = A @ B` for `n x n` float32 matrices held on the device; the product is written
    /// into a device tensor, so a run moves nothing between host and device.
    public static func gemm(n: Int, device: DeviceKind, seed: UInt64 = 0) throws -> Executable {
        try gemm(m: n, k: n, n: n, device: device, seed: seed)
    }

    /// `C [m, n] = op(A) @ op(B)` with inner size `k`: A is stored `[k, m]` when
    /// `transposeA` (as a weight gradient reads the layer's input), B `[n, k]` when `transposeB`.
    public static func gemm(m: Int, k: Int, n: Int, transposeA: Bool = false, transposeB: Bool = false,
                            device: DeviceKind, seed: UInt64 = 0) throws -> Executable {
        let g = Graph()
        let aShape: Shape = transposeA ? [k, m] : [m, k], bShape: Shape = transposeB ? [n, k] : [k, n]
        let a = try g.parameter("A", aShape), b = try g.parameter("B", bShape)
        let c = try g.state("C", [m, n])
        try g.assign(c, a.matmul(b, transposeA: transposeA, transposeB: transposeB))
        let exe = try Devices.load(g, fetch: [], on: device)
        var rng = SeededGenerator(seed: seed)
        for t in [a, b] { try exe.write(t, HostTensor(rng.uniform(t.shape.count, in: -1...1).map(Float.init), shape: t.shape)) }
        return exe
    }

    /// A built-in model's training step, through the general API (`ModelStep`, as `kiln train`
    /// runs it), on synthetic batches (features in [-1, 1] or uniform ids), a few distinct ones
    /// cycled so that making data costs nothing in the loop. In a `job`, `batch` is this
    /// process's share and the gradients are summed across the processes.
    public static func step(spec: ModelSpec, batch: Int, optimizer: Optimizer, device: DeviceKind,
                            job: MPICollective? = nil) throws -> (ModelStep<ClassifierModel>, [[String: HostTensor]]) {
        let step = try ModelStep(model: ClassifierModel(spec), optimizer: optimizer, device: device, seed: 0, job: job) { model, b in
            let logits = try model(b["input"]), labels = try b["labels"]
            return Objective(try crossEntropy(logits, labels), metrics: ["accuracy": try logits.graph.accuracy(logits: logits, labels: labels)])
        }
        let graph = try spec.build(batch: batch)
        let batches = try (0..<4).map { i -> [String: HostTensor] in
            let b = try graph.randomBatch(seed: UInt64(i))
            return ["input": b[graph.input]!, "labels": b[graph.labels]!]
        }
        return (step, batches)
    }
}
