import ArgumentParser
import Foundation
import Kiln

/// `kiln bench`: the standard workloads, with warm-up and repetitions.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure GEMM and whole training steps.",
        subcommands: [Gemm.self, Step.self, Load.self]
    )

    struct Common: ParsableArguments {
        @Option(help: "cpu or gpu.")
        var device: DeviceKind = .gpu
        @Option(help: "Timed repetitions (after warm-up).")
        var repeats = 5
        @Option(help: "Untimed warm-up repetitions.")
        var warmup = 1
        @Flag(help: "Print one JSON object.")
        var json = false

        func report(_ name: String, _ t: Timing, unit: String, scale: Double, rate: (Double) -> String, extra: [String: Any]) throws {
            if json {
                var object = extra
                object["workload"] = name
                object["device"] = device.rawValue
                object["median_s"] = t.median
                object["min_s"] = t.min
                object["max_s"] = t.max
                object["repeats"] = t.seconds.count
                print(try JSONText.string(object))
            } else {
                print(String(format: "%@ on %@: median %.3f %@ (min %.3f, max %.3f) over %d runs, %@", name, try Devices.describe(device),
                             t.median * scale, unit, t.min * scale, t.max * scale, t.seconds.count, rate(t.median)))
            }
        }
    }

    struct Gemm: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "C = A @ B for N x N float32 matrices on the device.")
        @OptionGroup var common: Common
        @Option(help: "Matrix size N (N x N times N x N).")
        var size = 1024
        @Option(help: "Another shape, MxKxN: C [M, N] = A [M, K] @ B [K, N] (the MLP's first layer: 128x784x256).")
        var shape: String?
        @Flag(name: .customLong("transpose-a"), help: "A is stored [K, M] and read transposed (a weight gradient).")
        var transposeA = false
        @Flag(name: .customLong("transpose-b"), help: "B is stored [N, K] and read transposed.")
        var transposeB = false

        func run() throws {
            guard size >= 1 else { throw KilnError.invalidArgument(op: "--size", message: "must be at least 1, got \(size)") }
            var (m, k, n) = (size, size, size)
            if let shape {
                let parts = shape.split(separator: "x").compactMap { Int($0) }
                guard parts.count == 3, parts.allSatisfy({ $0 >= 1 }) else {
                    throw KilnError.invalidArgument(op: "--shape", message: "'\(shape)' is not MxKxN with three positive sizes")
                }
                (m, k, n) = (parts[0], parts[1], parts[2])
            }
            let exe = try Benchmarks.gemm(m: m, k: k, n: n, transposeA: transposeA, transposeB: transposeB, device: common.device)
            let t = try Timing.measure(warmup: common.warmup, repeats: common.repeats) { _ = try exe.run(feeds: [:]) }
            let flops = 2 * Double(m) * Double(k) * Double(n)
            let name = shape == nil ? "sgemm \(size)^3" : "sgemm \(m)x\(k)\(transposeA ? "ᵀ" : "") @ \(k)x\(n)\(transposeB ? "ᵀ" : "")"
            // The kernel the OpenCL backend ran (chosen by measurement unless KILN_MATMUL fixes it).
            let kernel = (exe as? OpenCLExecutable)?.matmulKernels.values.first
            try common.report(name, t, unit: "ms", scale: 1e3,
                              rate: { String(format: "%.1f GFLOP/s", flops / $0 / 1e9) + (kernel.map { ", kernel \($0)" } ?? "") },
                              extra: ["m": m, "k": k, "n": n, "size": size, "gflops": flops / t.median / 1e9, "kernel": kernel ?? "cpu"])
        }
    }

    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "W1: one epoch (468 steps) of the Fashion-MNIST MLP; W2: one step of the word-window classifier.",
            discussion: "W1: 784-256-128-10 ReLU, batch 128, SGD momentum 0.9. W2: vocabulary 20000, dim 50, window 5, hidden 128 tanh, 5 classes, batch 512, SGD momentum 0.9, synthetic ids."
        )
        @OptionGroup var common: Common
        @Option(help: "fashion-mnist (W1), ner (W2) or charlm (W4: the character-level GPT of `kiln train --task charlm`, 10 steps a repetition).")
        var task: TaskName = .fashionMNIST
        @Option(help: "fashion-mnist: mlp (W1) or cnn (W3: the CNN of `kiln train --model cnn`, Adam lr 1e-3, batch 128, 468 steps).")
        var model: ModelName = .mlp
        @Option(help: "Steps per repetition (default: an epoch of 468 for fashion-mnist, 20 for ner); fewer for a quick profile (KILN_PROFILE=1).")
        var steps: Int?

        func run() throws {
            if task == .charlm { return try LanguageModelBench.run(steps: steps ?? 10, common: common) }
            // Under mpirun: each process runs its share of the global batch and the gradients
            // are summed across processes every step.
            let job = MPICollective.launchedByMPI() ? try MPICollective.world() : nil
            defer { job?.finalize() }
            if let job { Devices.shareMachine(rank: job.localRank, size: job.localSize) }
            let processes = job?.size ?? 1
            let cnn = task == .fashionMNIST && model == .cnn
            let optimizer = cnn ? Optimizer.adam() : Optimizer(.momentum(0.9)), learningRate = cnn ? 1e-3 : 0.01
            let (spec, globalBatch, defaultSteps): (ModelSpec, Int, Int) = task == .fashionMNIST
                ? (cnn ? .cnn() : .mlp(sizes: [784, 256, 128, 10]), 128, 468)
                : (.wordWindow(vocabulary: 20000, dim: 50, window: 5, hidden: 128, classes: 5), 512, 20)
            let steps = steps ?? defaultSteps
            guard steps >= 1 else { throw KilnError.invalidArgument(op: "--steps", message: "must be at least 1, got \(steps)") }
            guard globalBatch % processes == 0 else {
                throw KilnError.invalidArgument(op: "bench", message: "the global batch of \(globalBatch) does not split evenly over \(processes) processes")
            }
            let (step, batches) = try Benchmarks.step(spec: spec, batch: globalBatch / processes, optimizer: optimizer,
                                                      device: common.device, job: job)
            let t = try Timing.measure(warmup: common.warmup, repeats: common.repeats) {
                try job?.barrier()   // every process starts each repetition together
                for i in 0..<steps { try step.train(batches[i % 4], learningRate: learningRate) }
            }
            guard (job?.rank ?? 0) == 0 else { return }
            let program = try step.trainingProgram(for: batches[0])
            var extra: [String: Any] = ["kernels": program.kernels.count, "processes": processes]
            var suffix = ""
            if let job {
                let bytes = program.buckets.reduce(0) { $0 + $1.elements } * program.realType.byteSize
                let ring = 2 * Double(job.size - 1) / Double(job.size) * Double(bytes)
                extra["allreduce_bytes"] = bytes
                extra["ring_bytes_per_process"] = ring
                extra["buckets"] = program.buckets.count
                suffix = String(format: ", %d processes, all-reduce of %@ a step in %d bucket%@ (ring: %@ sent per process)", job.size,
                                formatBytes(bytes), program.buckets.count, program.buckets.count == 1 ? "" : "s", formatBytes(Int(ring)))
            }
            if cnn {
                extra["epoch_s"] = t.median
                // 25.2 MFLOP per image for forward and backward (the convolutions' 3 matmuls each, the Linear layers').
                try common.report("W3 CNN epoch (\(steps) steps)", t, unit: "s", scale: 1,
                                  rate: { String(format: "%.0f examples/s, %.1f GFLOP/s", Double(steps * 128) / $0, Double(steps * 128) * 25.2e6 / $0 / 1e9) + suffix },
                                  extra: extra)
            } else if task == .fashionMNIST {
                extra["epoch_s"] = t.median
                try common.report("W1 epoch (\(steps) steps)", t, unit: "s", scale: 1,
                                  rate: { String(format: "%.0f examples/s", Double(steps * 128) / $0) + suffix }, extra: extra)
            } else {
                let perStep = Timing(seconds: t.seconds.map { $0 / Double(steps) })
                extra["step_ms"] = perStep.median * 1e3
                try common.report("W2 step", perStep, unit: "ms", scale: 1e3,
                                  rate: { String(format: "%.0f examples/s", 512 / $0) + suffix }, extra: extra)
            }
        }
    }

    /// W4: steps of `kiln train --task charlm`'s GPT (context 128, width 128, 4 layers, 4 heads,
    /// batch 32, AdamW lr 1e-3 weight decay 0.1, clip 1.0) on the default corpus's windows.
    struct LanguageModelBench {
        static func run(steps: Int, common: Common) throws {
            let corpus = try TextCorpus.load()
            let model = try TransformerLanguageModel(TransformerConfig(vocabulary: corpus.characters.count))
            let optimizer = Optimizer.adamW(weightDecay: 0.1, decayGroup: .matrices, clipNorm: 1)
            let trainer = try LanguageModelTrainer(model: model, corpus: corpus, optimizer: optimizer, device: common.device)
            let windows = try (0..<4).map { try trainer.trainWindows.random(count: 32, seed: 0, step: $0) }
            let t = try Timing.measure(warmup: common.warmup, repeats: common.repeats) {
                for i in 0..<steps { try trainer.step.train(windows[i % 4], learningRate: 1e-3) }
            }
            let program = try trainer.step.trainingProgram(for: windows[0])
            let perStep = Timing(seconds: t.seconds.map { $0 / Double(steps) })
            // 6 x parameters x tokens for the matmuls of forward and backward, plus attention's
            // 2 batched matmuls (4 x T x T x width per sequence forward, twice that backward).
            let parameters = trainer.step.namedParameters.reduce(0) { $0 + $1.parameter.shape.count }
            let (positions, width) = (Double(model.config.context), Double(model.config.width))
            let flops = 6 * Double(parameters) * 32 * positions + 3 * 4 * positions * positions * width * 32 * Double(model.config.layers)
            try common.report("W4 charlm step (\(steps) steps a repetition)", perStep, unit: "ms", scale: 1e3,
                              rate: { String(format: "%.0f tokens/s, %.1f GFLOP/s", 32 * 128 / $0, flops / $0 / 1e9) },
                              extra: ["step_ms": perStep.median * 1e3, "kernels": program.kernels.count, "gflop_per_step": flops / 1e9])
        }
    }

    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time compiling a training step and loading it on the device (OpenCL: building its kernels).",
            discussion: "One measurement per process, since PoCL caches built kernels on disk: point POCL_CACHE_DIR at an empty folder for a cold start."
        )
        @Option(help: "cpu or gpu.")
        var device: DeviceKind = .gpu
        @Option(help: "fashion-mnist (W1) or ner (W2).")
        var task: TaskName = .fashionMNIST
        @Flag(help: "Print one JSON object.")
        var json = false

        func run() throws {
            let spec: ModelSpec = task == .fashionMNIST ? .mlp(sizes: [784, 256, 128, 10])
                : .wordWindow(vocabulary: 20000, dim: 50, window: 5, hidden: 128, classes: 5)
            let batch = task == .fashionMNIST ? 128 : 512
            let start = DispatchTime.now().uptimeNanoseconds
            let model = try spec.build(batch: batch)
            _ = try TrainingStep.appendStep(to: model, optimizer: Optimizer(.momentum(0.9)))
            let program = try Compiler.compile(model.graph, fetch: [model.loss, model.accuracy],
                                               options: Devices.compileOptions(for: device))
            let compiled = DispatchTime.now().uptimeNanoseconds
            if device == .gpu { _ = try Devices.openCLContext() }   // the platform query is not the step's
            let contextReady = DispatchTime.now().uptimeNanoseconds
            _ = try Devices.load(program, on: device)
            let loaded = DispatchTime.now().uptimeNanoseconds
            let compileS = Double(compiled - start) / 1e9, contextS = Double(contextReady - compiled) / 1e9, loadS = Double(loaded - contextReady) / 1e9
            if json {
                let object: [String: Any] = ["workload": "\(task.rawValue) step load", "device": device.rawValue, "compile_s": compileS,
                                             "context_s": contextS, "load_s": loadS, "kernels": program.kernels.count]
                print(try JSONText.string(object))
            } else {
                print(String(format: "%@ step on %@: compile %.3f s, device context %.3f s, load (buffers, kernel builds) %.3f s, %d kernels",
                             task.rawValue, try Devices.describe(device), compileS, contextS, loadS, program.kernels.count))
            }
        }
    }
}
