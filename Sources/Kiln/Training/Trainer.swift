import Foundation

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

/// Trains a built-in task's model: seeded shuffling and batches, the compiled step on a
/// device, evaluation after each epoch, checkpoints that resume the same trajectory. Its model
/// is an ordinary `Module` (`ClassifierModel`) trained by a `ModelStep`, with the objective
/// any classifier would write: cross-entropy, accuracy as a metric.
public final class Trainer {
    public let task: TaskData
    public let options: TrainingOptions
    public let step: ModelStep<ClassifierModel>
    /// The processes training together (nil: this one alone).
    public var job: MPICollective? { options.job }
    /// The training program of a full batch (this process's shard of it), for listings.
    public let program: Program
    /// Epochs completed.
    public internal(set) var epoch = 0
    /// Within the current epoch: batches done, and the loss summed over their examples.
    public internal(set) var epochStep = 0
    var epochLossSum = 0.0, epochExamples = 0
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
        step = try ModelStep(model: ClassifierModel(task.spec), optimizer: options.optimizer, device: options.device,
                             seed: options.seed, fusion: options.fusion, job: options.job) { model, batch in
            let logits = try model(batch["input"]), labels = try batch["labels"]
            return Objective(try crossEntropy(logits, labels),
                             metrics: ["accuracy": try logits.graph.accuracy(logits: logits, labels: labels)])
        }
        step.checkNumerics = options.checkNumerics
        if !task.pretrained.isEmpty {
            try step.restore(parameters: step.parameterValues().merging(task.pretrained) { $1 })
        }
        program = try step.trainingProgram(for: Self.feeds(task.train.batch(Array(0..<Self.shard(batch, options.job).count))))
        if let job = options.job {
            try checkSameConfiguration(job)
            try synchronize()
        }
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
            // A last partial batch runs in a program compiled for its size, with the same values.
            var loss = try step.train(Self.feeds((input, labels)), learningRate: lr, share: share).loss
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

    /// A batch of the task's data as the step's named feeds.
    static func feeds(_ batch: (input: HostTensor, labels: HostTensor)) -> [String: HostTensor] {
        ["input": batch.input, "labels": batch.labels]
    }
}
