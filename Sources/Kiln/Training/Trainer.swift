import Foundation

/// How to train.
public struct TrainingOptions: Sendable {
    public var epochs = 3
    public var batchSize = 128
    public var learningRate = 0.1
    public var optimizer = Optimizer(.momentum(0.9))
    public var schedule = LRSchedule.constant
    public var seed: UInt64 = 0
    /// Drop the last partial batch of each epoch instead of training on it.
    public var dropLast = false
    public var device = DeviceKind.gpu
    public var fusion: Bool?
    /// Stop at the first kernel that writes NaN or Inf (also `KILN_CHECK_NUMERICS=1`).
    public var checkNumerics = Program.checkNumericsFromEnvironment
    /// Data parallelism: the MPI job whose processes train together (nil: this process alone).
    /// Each process takes its shard of every global batch of `batchSize` examples.
    public var job: MPICollective?

    public init() {}
}

/// One epoch's figures.
public struct EpochResult: Sendable {
    public let epoch: Int
    public let trainLoss: Double
    public let testLoss: Double
    public let testAccuracy: Double
    public let seconds: Double
    /// NER: per-entity precision, recall and F1 (O ignored).
    public let ner: NERMetrics?
}

/// Progress within an epoch, for progress bars.
public struct TrainingProgress: Sendable {
    public let epoch: Int
    public let step: Int
    public let stepsInEpoch: Int
    public let loss: Double
    public let examplesPerSecond: Double
    public let secondsLeft: Double
}

/// Trains a task's model: seeded shuffling and batches, the compiled step on a device,
/// evaluation after each epoch, checkpoints that resume the same trajectory.
public final class Trainer {
    public let task: TaskData
    public let options: TrainingOptions
    public let step: TrainingStep
    /// The processes training together (nil: this one alone).
    public var job: MPICollective? { options.job }
    /// The step for the last partial batch, compiled on first use.
    private var tailStep: TrainingStep?
    private var evaluators: [Int: (ClassifierGraph, Executable)] = [:]
    /// Epochs completed.
    public private(set) var epoch = 0
    /// Within the current epoch: batches done, and the loss summed over their examples.
    public private(set) var epochStep = 0
    private var epochLossSum = 0.0, epochExamples = 0
    /// Asked after every step; when it returns true, training stops after that step (so a
    /// checkpoint can be written) and `train` returns false.
    public var shouldStop: () -> Bool = { false }

    public init(task: TaskData, options: TrainingOptions) throws {
        guard options.batchSize > 0, options.epochs >= 0, options.learningRate > 0 else {
            throw KilnError.invalidArgument(op: "train", message: "batch size and learning rate must be positive (batch size \(options.batchSize), learning rate \(options.learningRate))")
        }
        guard task.train.count >= options.batchSize || !options.dropLast, task.train.count > 0 else {
            throw KilnError.invalidArgument(op: "train", message: "\(task.train.count) training examples do not fill one batch of \(options.batchSize)")
        }
        let processes = options.job?.size ?? 1
        // Equal shards: every process compiles the same step, so their all-reduces match.
        guard min(options.batchSize, task.train.count) % processes == 0 else {
            throw JobError(message: "train: a global batch of \(min(options.batchSize, task.train.count)) examples does not split evenly over \(processes) processes; use a multiple of \(processes)")
        }
        self.task = task
        self.options = options
        let batch = min(options.batchSize, task.train.count)
        step = try TrainingStep(model: task.spec.build(batch: Self.shard(batch, options.job).count), optimizer: options.optimizer,
                                device: options.device, seed: options.seed, fusion: options.fusion, collective: options.job)
        step.executable.checkNumerics = options.checkNumerics
        for (name, value) in task.pretrained {
            guard let t = step.model.parameters.tensors.first(where: { $0.node.label == name }) else { continue }
            try step.executable.write(t, value)
        }
        if let job = options.job {
            try checkSameConfiguration(job)
            try synchronize()
        }
    }

    /// The part of `count` items (a global batch, the test set) that process `job.rank` takes:
    /// contiguous and as even as can be.
    static func shard(_ count: Int, _ job: MPICollective?) -> Range<Int> {
        guard let job else { return 0..<count }
        return count * job.rank / job.size..<count * (job.rank + 1) / job.size
    }

    /// What must be the same in every process of a job, one `key value` per line.
    var configuration: String {
        ["task \(task.name)", "model \(task.spec.summary)", "training examples \(task.train.count)", "test examples \(task.test.count)",
         "batch size \(options.batchSize)", "epochs \(options.epochs)", "learning rate \(options.learningRate)",
         "optimizer \(options.optimizer.rule) weight decay \(options.optimizer.weightDecay)", "schedule \(options.schedule)",
         "seed \(options.seed)", "drop last \(options.dropLast)", "device \(options.device.rawValue)",
         "fusion \(options.fusion.map(String.init) ?? "default")", "vocabulary \(task.vocabulary?.tokens.count ?? 0)",
         "all-reduce buckets \(step.program.buckets.map(\.elements))"].joined(separator: "\n")
    }

    /// Throws the same error in every process when some process was started with another
    /// configuration, naming the first difference of each.
    private func checkSameConfiguration(_ job: MPICollective) throws {
        let all = try job.gather(configuration)
        let reference = all[0].split(separator: "\n", omittingEmptySubsequences: false)
        var differences: [String] = []
        for (r, text) in all.enumerated().dropFirst() where text != all[0] {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let i = (0..<min(lines.count, reference.count)).first { lines[$0] != reference[$0] } ?? min(lines.count, reference.count)
            let theirs = i < lines.count ? String(lines[i]) : "(nothing)", ours = i < reference.count ? String(reference[i]) : "(nothing)"
            differences.append("rank \(r) has \(theirs), rank 0 has \(ours)")
        }
        if !differences.isEmpty {
            throw JobError(message: "the processes were started with different configurations: " + differences.joined(separator: "; "))
        }
    }

    /// Rank 0's value of `t`, in every process.
    static func broadcast(_ t: HostTensor, _ job: MPICollective) throws -> HostTensor {
        func send<T>(_ values: [T]) throws -> [T] {
            var v = values
            try v.withUnsafeMutableBytes { if let p = $0.baseAddress { try job.broadcast(p, bytes: $0.count) } }
            return v
        }
        switch t.storage {
        case .float32(let v): return try HostTensor(send(v), shape: t.shape)
        case .float64(let v): return try HostTensor(send(v), shape: t.shape)
        case .int32(let v): return try HostTensor(send(v), shape: t.shape)
        }
    }

    /// Copies rank 0's parameters, optimizer state and place in training to every process.
    public func synchronize() throws {
        guard let job = options.job, job.size > 1 else { return }
        // Every process holds the same model, so `state()` lists the same tensors in the same
        // order everywhere.
        let state = try step.state().sorted { $0.key < $1.key }
        var values: [String: HostTensor] = [:]
        for (name, value) in state { values[name] = try Self.broadcast(value, job) }
        var counters = [Double(epoch), Double(epochStep), Double(step.steps), epochLossSum, Double(epochExamples)]
        try counters.withUnsafeMutableBytes { try job.broadcast($0.baseAddress!, bytes: $0.count) }
        try step.restore(values, steps: Int(counters[2]))
        epoch = Int(counters[0])
        epochStep = Int(counters[1])
        epochLossSum = counters[3]
        epochExamples = Int(counters[4])
    }

    /// Trains the remaining epochs, calling `progress` during each and `finished` after each.
    /// Returns false when `shouldStop` interrupted it (mid-epoch; `checkpoint()` resumes there).
    @discardableResult
    public func train(progress: (TrainingProgress) -> Void = { _ in },
                      finished: (EpochResult) throws -> Void = { _ in }) throws -> Bool {
        while epoch < options.epochs {
            guard let result = try runEpoch(progress: progress) else { return false }
            try finished(result)
        }
        return true
    }

    /// Trains the rest of the current epoch, then evaluates on the test set; nil when
    /// `shouldStop` interrupted it.
    public func runEpoch(progress: (TrainingProgress) -> Void = { _ in }) throws -> EpochResult? {
        let start = Date()
        var batches = try BatchIterator(count: task.train.count, batchSize: min(options.batchSize, task.train.count),
                                        seed: options.seed, epoch: epoch, dropLast: options.dropLast)
        let total = batches.batchCount
        let skipped = epochStep
        for _ in 0..<skipped { _ = batches.next() }   // resuming mid-epoch: same order, skip what is done
        let prefetch = Prefetcher(data: task.train)
        let job = options.job, processes = job?.size ?? 1
        // Each process builds only its shard of the global batch. In a job, a last batch too
        // small to give every process two examples is skipped (the same on every process).
        func nextShard() -> (Prefetcher.Pending, global: Int)? {
            guard let global = batches.next(), processes == 1 || global.count >= 2 * processes else { return nil }
            return (prefetch.start(Array(global[Self.shard(global.count, job)])), global.count)
        }
        var pending = nextShard()
        var examplesThisRun = 0
        while let current = pending {
            let (input, labels) = try current.0.wait()
            let globalCount = current.global
            pending = nextShard()   // overlaps the device's work
            let lr = options.schedule.rate(base: options.learningRate, step: step.steps)
            let share = Double(input.shape[0]) / Double(globalCount)
            var loss: Double
            if input.shape[0] == step.model.input.shape[0] {
                loss = try step.run(input: input, labels: labels, learningRate: lr, share: share).loss
            } else {
                loss = try runTail(input: input, labels: labels, learningRate: lr, share: share)
            }
            // The global batch's loss, and whether any process was asked to stop.
            var stop = pending != nil && shouldStop()
            if let job, processes > 1 {
                let sums = try job.sum([loss * share, stop ? 1 : 0])
                loss = sums[0]
                stop = sums[1] > 0
            }
            guard loss.isFinite else {
                throw KilnError.invalidValue(op: "train", message: "the loss became \(loss) at epoch \(epoch + 1), step \(epochStep + 1): training diverged (try a smaller --lr)")
            }
            epochLossSum += loss * Double(globalCount)
            epochExamples += globalCount
            examplesThisRun += globalCount
            epochStep += 1
            let elapsed = Date().timeIntervalSince(start)
            let done = max(epochStep - skipped, 1)
            progress(TrainingProgress(epoch: epoch + 1, step: epochStep, stepsInEpoch: total, loss: loss,
                                      examplesPerSecond: Double(examplesThisRun) / max(elapsed, 1e-9),
                                      secondsLeft: elapsed / Double(done) * Double(total - epochStep)))
            if stop {
                _ = try pending?.0.wait()
                return nil
            }
        }
        let trainLoss = epochLossSum / Double(max(epochExamples, 1))
        epoch += 1
        epochStep = 0
        epochLossSum = 0
        epochExamples = 0
        let eval = try evaluate()
        return EpochResult(epoch: epoch, trainLoss: trainLoss, testLoss: eval.loss,
                           testAccuracy: eval.accuracy, seconds: Date().timeIntervalSince(start), ner: eval.ner)
    }

    /// The last partial batch runs in a step compiled for its size; parameters and optimizer
    /// state move to it and back (once per epoch).
    private func runTail(input: HostTensor, labels: HostTensor, learningRate: Double, share: Double) throws -> Double {
        let b = input.shape[0]
        if tailStep?.model.input.shape[0] != b {
            tailStep = try TrainingStep(model: task.spec.build(batch: b), optimizer: options.optimizer, device: options.device,
                                        seed: options.seed, fusion: options.fusion, collective: options.job)
        }
        let tail = tailStep!
        tail.executable.checkNumerics = options.checkNumerics
        try tail.restore(try step.state(), steps: step.steps)
        let loss = try tail.run(input: input, labels: labels, learningRate: learningRate, share: share).loss
        try step.restore(try tail.state(), steps: tail.steps)
        return loss
    }

    /// Loss, accuracy (and NER scores) on the test set with the current parameters. In a
    /// job, each process evaluates its shard of the test set and the counts are summed.
    public func evaluate() throws -> (loss: Double, accuracy: Double, ner: NERMetrics?) {
        let data = task.test
        let params = try step.state()
        var lossSum = 0.0, hits = 0.0
        let mine = Self.shard(data.count, options.job)
        var predictions = [Int32](repeating: 0, count: mine.lowerBound)
        predictions.reserveCapacity(data.count)
        let batch = min(options.batchSize, max(data.count, 1))
        var start = mine.lowerBound
        while start < mine.upperBound {
            let n = min(batch, mine.upperBound - start)
            let (model, exe) = try evaluator(batch: n)
            for t in model.parameters.tensors { try exe.write(t, params[t.node.label]!) }
            let (input, labels) = try data.batch(Array(start..<start + n))
            let out = try exe.run(feeds: [model.input: input, model.labels: labels])
            lossSum += out[0].scalarValue * Double(n)
            hits += out[1].scalarValue * Double(n)
            if case .int32(let p) = out[2].storage { predictions += p }
            start += n
        }
        if let job = options.job, job.size > 1 {
            (lossSum, hits) = try { let s = try job.sum([lossSum, hits]); return (s[0], s[1]) }()
            if task.tags != nil {
                predictions += [Int32](repeating: 0, count: data.count - mine.upperBound)
                predictions = try job.sum(predictions)   // each process filled only its shard
            }
        }
        let count = Double(max(data.count, 1))
        var ner: NERMetrics?
        if let tags = task.tags {
            var gold: [[String]] = [], predicted: [[String]] = []
            var offset = 0
            for s in task.testSentences {
                gold.append(s.tags)
                predicted.append(try predictions[offset..<offset + s.tokens.count].map { try tags.tag(for: $0) })
                offset += s.tokens.count
            }
            ner = try NERMetrics(gold: gold, predicted: predicted)
        }
        return (lossSum / count, hits / count, ner)
    }

    private func evaluator(batch: Int) throws -> (ClassifierGraph, Executable) {
        if let e = evaluators[batch] { return e }
        let model = try task.spec.build(batch: batch)
        let program = try Compiler.compile(model.graph, fetch: [model.loss, model.accuracy, model.predictions],
                                           options: CompileOptions(fusion: options.fusion, realType: Devices.realType(for: options.device), updates: false))
        let e = (model, try Devices.load(program, on: options.device))
        evaluators[batch] = e
        return e
    }

    // MARK: Checkpoints

    /// Parameters, optimizer state and where training stands, as a safetensors file.
    public func checkpoint() throws -> SafeTensorsFile {
        var metadata = ["format": "kiln-checkpoint-1", "model": task.spec.json, "task": task.name,
                        "epoch": "\(epoch)", "step": "\(step.steps)", "seed": "\(options.seed)",
                        "epoch_step": "\(epochStep)", "epoch_loss_sum": "\(epochLossSum)", "epoch_examples": "\(epochExamples)",
                        "optimizer": "\(options.optimizer.rule)", "batch_size": "\(options.batchSize)"]
        if let v = task.vocabulary { metadata["vocabulary"] = v.tokens.joined(separator: "\n") }
        if let t = task.tags { metadata["tags"] = t.tags.joined(separator: "\n") }
        return SafeTensorsFile(tensors: try step.state(), metadata: metadata)
    }

    /// Writes the checkpoint atomically (a temporary file renamed into place).
    public func saveCheckpoint(to path: String) throws {
        try checkpoint().write(to: path)
    }

    /// Continues from a checkpoint of the same model: parameters, optimizer state, step and
    /// epoch are restored, so the run follows the uninterrupted trajectory.
    public func resume(from path: String) throws {
        let file = try SafeTensorsFile.read(path: path)
        guard let modelJSON = file.metadata["model"] else {
            throw KilnError.file(path: path, message: "not a Kiln checkpoint (no model description in its metadata)")
        }
        let spec = try ModelSpec.from(json: modelJSON)
        guard spec == task.spec else {
            throw KilnError.file(path: path, message: "checkpoint is for another model (\(spec.summary)), not \(task.spec.summary)")
        }
        guard let e = file.metadata["epoch"].flatMap(Int.init), let s = file.metadata["step"].flatMap(Int.init) else {
            throw KilnError.file(path: path, message: "checkpoint metadata lacks its epoch and step")
        }
        do { try step.restore(file.tensors, steps: s) } catch let error as KilnError {
            throw KilnError.file(path: path, message: "\(error)")
        }
        epoch = e
        epochStep = file.metadata["epoch_step"].flatMap(Int.init) ?? 0
        epochLossSum = file.metadata["epoch_loss_sum"].flatMap(Double.init) ?? 0
        epochExamples = file.metadata["epoch_examples"].flatMap(Int.init) ?? 0
    }
}

/// Builds the next batch on another thread while the device runs the current step.
final class Prefetcher: @unchecked Sendable {
    let data: LabeledData
    init(data: LabeledData) { self.data = data }

    final class Pending: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var result: Result<(HostTensor, HostTensor), Error> = .failure(KilnError.device("batch not ready"))
        func wait() throws -> (HostTensor, HostTensor) {
            done.wait()
            return try result.get()
        }
    }

    func start(_ indices: [Int]) -> Pending {
        let p = Pending()
        let data = self.data
        DispatchQueue.global().async {
            p.result = Result { try data.batch(indices) }
            p.done.signal()
        }
        return p
    }
}

/// An error that every process of a job raised alike (a configuration that differs between
/// them): each can report it and exit, with no need to stop the others.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
