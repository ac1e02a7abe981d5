import ArgumentParser
import Foundation
import Kiln

/// `kiln train`: trains a task's model on a device, evaluating after every epoch.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a model.")

    @OptionGroup var taskOptions: TaskOptions

    @Option(help: "cpu, or gpu (OpenCL: a GPU when there is one, else PoCL on the CPU).")
    var device: DeviceKind = .gpu

    @Option(help: "Passes over the training set.")
    var epochs = 3

    @Option(name: .customLong("batch-size"), help: "Examples per step (default: 128; charlm 32 windows).")
    var batchSize: Int?

    @Option(help: "Learning rate (default: 0.1; charlm 1e-3).")
    var lr: Double?

    @Option(help: "sgd, momentum, nesterov, adam or adamw (default: momentum; charlm adamw).")
    var optimizer: OptimizerName?

    @Option(help: "Momentum for momentum and nesterov.")
    var momentum = 0.9

    @Option(name: .customLong("weight-decay"), help: "Weight decay (L2; decoupled for adamw; default 0; charlm 0.1, on weights and embeddings, not on biases and norms).")
    var weightDecay: Double?

    @OptionGroup var languageModel: LanguageModelFlags

    @Option(help: "Learning-rate schedule: constant, step (x0.1 every epoch) or cosine.")
    var schedule: ScheduleName = .constant

    @Option(help: "Cosine schedule: warm-up steps.")
    var warmup = 0

    @Option(help: "Seed for initialization and shuffling.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("drop-last"), help: "Drop each epoch's last partial batch.")
    var dropLast = false

    @Flag(name: .customLong("no-fusion"), help: "Compile without fusion (also KILN_FUSION=0).")
    var noFusion = false

    @Flag(name: .customLong("check-numerics"), help: "Stop at the first kernel that writes NaN or Inf, naming it (slow).")
    var checkNumerics = false

    @Option(help: "Checkpoint file (safetensors), written after every epoch.")
    var checkpoint: String?

    @Flag(help: "Continue from --checkpoint.")
    var resume = false

    @Option(help: "Metrics file: one JSON object per epoch; a loss/accuracy SVG is written beside it.")
    var metrics: String?

    @Option(name: .customLong("step-log"), help: "Step log: one JSON object per step (epoch, step, loss of the global batch).")
    var stepLog: String?

    @Flag(help: "Require data parallelism: fail unless started by mpirun (under mpirun it is on regardless).")
    var distributed = false

    func run() throws {
        var job: MPICollective?
        if MPICollective.launchedByMPI() {
            job = try MPICollective.world()
        } else if distributed {
            throw KilnError.invalidArgument(op: "--distributed", message: "this process was not started by mpirun (no OMPI_COMM_WORLD_SIZE in its environment): run `mpirun -np N kiln train ...`")
        }
        do {
            try train(job: job)
        } catch let error as JobError {
            // Every process found this: the first reports it, all leave MPI and exit.
            if (job?.rank ?? 0) == 0 { FileHandle.standardError.write(Data("Error: \(error)\n".utf8)) }
            job?.finalize()
            throw ExitCode(1)
        } catch let exit as ExitCode {
            job?.finalize()
            throw exit
        } catch {
            if let job, job.size > 1 {
                // The others would wait for this process forever: stop the whole job.
                FileHandle.standardError.write(Data("kiln: rank \(job.rank) of \(job.size) failed, stopping every process: \(error)\n".utf8))
                job.abort(code: 1)
            }
            job?.finalize()
            throw error
        }
        job?.finalize()
    }

    private func train(job: MPICollective?) throws {
        if taskOptions.task == .charlm {
            guard job == nil else { throw KilnError.invalidArgument(op: "--task charlm", message: "trains in one process; data parallelism is for fashion-mnist and ner") }
            return try trainLanguageModel()
        }
        if taskOptions.task == .ner && taskOptions.model == .transformer {
            guard job == nil else { throw KilnError.invalidArgument(op: "--model transformer", message: "trains in one process; data parallelism is for the built-in fashion-mnist and ner models") }
            return try trainTagger()
        }
        let batchSize = self.batchSize ?? 128, lr = self.lr ?? 0.1, optimizer = self.optimizer ?? .momentum
        let weightDecay = self.weightDecay ?? 0
        let leader = (job?.rank ?? 0) == 0
        func say(_ line: String) { if leader { print(line) } }
        guard epochs >= 1 else { throw KilnError.invalidArgument(op: "--epochs", message: "must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw KilnError.invalidArgument(op: "--batch-size", message: "must be at least 1, got \(batchSize)") }
        guard lr > 0, lr.isFinite else { throw KilnError.invalidArgument(op: "--lr", message: "must be a positive number, got \(lr)") }
        guard (0..<1).contains(momentum) else { throw KilnError.invalidArgument(op: "--momentum", message: "must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 else { throw KilnError.invalidArgument(op: "--weight-decay", message: "must not be negative, got \(weightDecay)") }
        if resume && checkpoint == nil { throw KilnError.invalidArgument(op: "--resume", message: "needs --checkpoint FILE") }

        var vocabulary: Vocabulary?, tags: TagSet?
        if resume, let checkpoint, taskOptions.task == .ner, FileManager.default.fileExists(atPath: checkpoint) {
            (vocabulary, tags) = try CheckpointInfo.nerVocabulary(path: checkpoint)
        }
        let task = try taskOptions.load(seed: seed, vocabulary: vocabulary, tags: tags)
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = batchSize
        options.learningRate = lr
        options.seed = seed
        options.dropLast = dropLast
        options.device = device
        options.fusion = noFusion ? false : nil
        if checkNumerics { options.checkNumerics = true }
        options.job = job
        if let job { Devices.shareMachine(rank: job.localRank, size: job.localSize) }
        options.optimizer = optimizer.optimizer(momentum: momentum, weightDecay: weightDecay)
        let stepsPerEpoch = dropLast ? task.train.count / batchSize : (task.train.count + batchSize - 1) / batchSize
        switch schedule {
        case .constant: options.schedule = .constant
        case .step: options.schedule = .step(every: max(stepsPerEpoch, 1), gamma: 0.1)
        case .cosine: options.schedule = .cosine(warmup: warmup, total: stepsPerEpoch * epochs)
        }

        say("Task \(task.name): \(task.train.count) training and \(task.test.count) test examples; \(task.spec.summary)")
        if let job {
            say("Data parallel: \(job.size) process\(job.size == 1 ? "" : "es") (MPI: \(job.library)), global batch \(batchSize), \(batchSize / job.size) examples per process")
        }
        say("Device \(try Devices.describe(device))")
        let trainer = try Trainer(task: task, options: options)
        say("Step compiled: \(trainer.program.kernels.count) kernels, arena \(formatBytes(trainer.program.memory.arenaBytes))"
            + (job == nil ? "" : ", \(trainer.program.buckets.count) all-reduce bucket\(trainer.program.buckets.count == 1 ? "" : "s")"))
        if resume, let checkpoint {
            // Rank 0 reads the checkpoint and sends it to the others: only it needs the file.
            if leader {
                if FileManager.default.fileExists(atPath: checkpoint) {
                    try trainer.resume(from: checkpoint)
                    say("Resumed from \(checkpoint) after epoch \(trainer.epoch), step \(trainer.step.steps)")
                } else {
                    say("No checkpoint at \(checkpoint) yet: starting from the beginning")
                }
            }
            try trainer.synchronize()
        }
        var log = leader ? try metrics.map { try MetricsLog(path: $0, keepingEpochsThrough: resume ? trainer.epoch : 0) } : nil
        let steps = leader ? try stepLog.map { try StepLog(path: $0, append: resume) } : nil
        let bar = ProgressBar()
        let interrupt = InterruptFlag.install()
        trainer.shouldStop = { interrupt.isSet }
        let completed = try trainer.train(progress: { p in
            steps?.append(p)
            if leader { bar.update(p) }
        }) { result in
            bar.finish()
            var line = String(format: "epoch %d/%d  train loss %.4f  test loss %.4f  test accuracy %.4f  %.1f s",
                              result.epoch, epochs, result.trainLoss, result.testLoss, result.testAccuracy, result.seconds)
            if let ner = result.ner { line += String(format: "  F1 %.4f", ner.overall.f1) }
            say(line)
            if let ner = result.ner, leader { printNER(ner) }
            if let checkpoint, leader { try trainer.saveCheckpoint(to: checkpoint) }
            try log?.append(result)
        }
        if !completed {
            if leader { bar.finish() }
            try stopInterrupted(at: "epoch \(trainer.epoch + 1), step \(trainer.epochStep)", checkpoint: checkpoint, say: say) {
                if leader { try trainer.saveCheckpoint(to: $0) }
            }
        }
        if let metrics, let log { say("Metrics in \(metrics), curve in \(log.svgPath)") }
        if let checkpoint { say("Checkpoint in \(checkpoint)") }
    }
}
