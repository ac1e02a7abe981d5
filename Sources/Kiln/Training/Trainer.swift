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
    /// The epoch loop, the one any model's training runs.
    let loop: ModelTrainer<ClassifierModel>
    /// Epochs completed.
    public internal(set) var epoch: Int {
        get { loop.epoch }
        set { loop.epoch = newValue }
    }
    /// Within the current epoch: batches done, and the loss summed over their examples.
    public internal(set) var epochStep: Int {
        get { loop.epochStep }
        set { loop.epochStep = newValue }
    }
    var epochLossSum: Double {
        get { loop.lossSum }
        set { loop.lossSum = newValue }
    }
    var epochExamples: Int {
        get { loop.examples }
        set { loop.examples = newValue }
    }
    /// Asked after every step; when it returns true, training stops after that step (so a
    /// checkpoint can be written) and `train` returns false.
    public var shouldStop: () -> Bool {
        get { loop.shouldStop }
        set { loop.shouldStop = newValue }
    }

    public init(task: TaskData, options: TrainingOptions) throws {
        self.task = task
        self.options = options
        step = try ModelStep(model: ClassifierModel(task.spec), optimizer: options.optimizer, device: options.device,
                             seed: options.seed, fusion: options.fusion, job: options.job) { model, batch in
            let logits = try model(batch["input"]), labels = try batch["labels"]
            return Objective(try crossEntropy(logits, labels),
                             metrics: ["accuracy": try logits.graph.accuracy(logits: logits, labels: labels)])
        }
        step.checkNumerics = options.checkNumerics
        // The loop checks the sizes (and that a batch splits evenly over a job's processes)
        // before anything is compiled.
        var fit = FitOptions()
        (fit.epochs, fit.batchSize, fit.learningRate, fit.schedule, fit.seed, fit.dropLast) =
            (options.epochs, options.batchSize, options.learningRate, options.schedule, options.seed, options.dropLast)
        loop = try ModelTrainer(step: step, train: ClassifierDataset(data: task.train), options: fit)
        if !task.pretrained.isEmpty {
            try step.restore(parameters: step.parameterValues().merging(task.pretrained) { $1 })
        }
        let batch = min(options.batchSize, task.train.count)
        program = try step.trainingProgram(for: Self.feeds(task.train.batch(Array(0..<options.job.shard(batch).count))))
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
        guard let trained = try loop.runEpoch(progress: progress) else { return nil }
        let eval = try evaluate()
        return EpochResult(epoch: trained.epoch, trainLoss: trained.trainLoss, testLoss: eval.loss,
                           testAccuracy: eval.accuracy, seconds: Date().timeIntervalSince(start), ner: eval.ner)
    }

    /// A batch of the task's data as the step's named feeds.
    static func feeds(_ batch: (input: HostTensor, labels: HostTensor)) -> [String: HostTensor] {
        ["input": batch.input, "labels": batch.labels]
    }
}

/// A classifier's labeled examples as the named feeds `input` and `labels`.
struct ClassifierDataset: Dataset {
    let data: LabeledData
    var count: Int { data.count }
    func batch(_ indices: [Int]) throws -> [String: HostTensor] { Trainer.feeds(try data.batch(indices)) }
}
