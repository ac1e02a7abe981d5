import Foundation

/// How `ModelTrainer` trains.
public struct FitOptions: Sendable {
    public var epochs = 3
    public var batchSize = 128
    public var learningRate = 1e-3
    public var schedule = LRSchedule.constant
    /// Seeds the shuffling (epoch `e` is shuffled from `(seed, e)`).
    public var seed: UInt64 = 0
    /// Drop the last partial batch of each epoch instead of training on it.
    public var dropLast = false
    /// Examples per evaluation batch (the last one may be partial).
    public var evaluationBatchSize = 1000

    public init() {}
}

/// One epoch's figures: the mean training loss over its examples, and the loss and metrics on
/// the evaluation data (means weighted by batch size).
public struct FitEpoch: Sendable {
    public let epoch: Int
    public let trainLoss: Double
    public let evaluation: StepResult?
    public let seconds: Double
}

/// The epoch loop for any model: seeded shuffled batches of a `Dataset` through a
/// `ModelStep`, the last partial batch included, evaluation after each epoch with the
/// objective's metrics, checkpoints that resume the same trajectory mid-epoch, a stop
/// request honoured after a step (so Ctrl-C can save), and a clear error when the data's
/// shapes or dtypes change between batches or the loss stops being finite.
public final class ModelTrainer<M: Module> {
    public let step: ModelStep<M>
    public let train: any Dataset
    public let evaluation: (any Dataset)?
    public let options: FitOptions
    /// Epochs completed.
    public internal(set) var epoch = 0
    /// Within the current epoch: batches done, and the loss summed over their examples.
    public internal(set) var epochStep = 0
    var lossSum = 0.0, examples = 0
    /// The feeds' names, dtypes and trailing dimensions, from the first batch.
    private var layout: [String: (DType, [Int])]?
    /// Asked after every step; when it returns true, training stops after that step and `fit`
    /// returns false (write a checkpoint, then `resume` continues from it).
    public var shouldStop: () -> Bool = { false }

    public init(step: ModelStep<M>, train: any Dataset, evaluation: (any Dataset)? = nil, options: FitOptions = FitOptions()) throws {
        guard options.batchSize > 0, options.epochs >= 0, options.evaluationBatchSize > 0,
              options.learningRate > 0, options.learningRate.isFinite else {
            throw KilnError.invalidArgument(op: "fit", message: "batch sizes and the learning rate must be positive and epochs not negative (batch size \(options.batchSize), evaluation batch size \(options.evaluationBatchSize), learning rate \(options.learningRate), epochs \(options.epochs))")
        }
        guard train.count > 0, train.count >= options.batchSize || !options.dropLast else {
            throw KilnError.invalidArgument(op: "fit", message: "\(train.count) training examples do not fill one batch of \(options.batchSize)")
        }
        let processes = step.job?.size ?? 1
        guard min(options.batchSize, train.count) % processes == 0 else {
            throw JobError(message: "fit: a global batch of \(min(options.batchSize, train.count)) examples does not split evenly over \(processes) processes; use a multiple of \(processes)")
        }
        self.step = step
        self.train = train
        self.evaluation = evaluation
        self.options = options
    }

    /// Trains the remaining epochs, calling `progress` after every step and `finished` after
    /// every epoch. Returns false when `shouldStop` interrupted it.
    @discardableResult
    public func fit(progress: (TrainingProgress) -> Void = { _ in }, finished: (FitEpoch) throws -> Void = { _ in }) throws -> Bool {
        while epoch < options.epochs {
            guard let result = try runEpoch(progress: progress) else { return false }
            try finished(result)
        }
        return true
    }

    /// The rest of the current epoch, then the evaluation; nil when `shouldStop` interrupted it.
    public func runEpoch(progress: (TrainingProgress) -> Void = { _ in }) throws -> FitEpoch? {
        let start = Date()
        var batches = try BatchIterator(count: train.count, batchSize: min(options.batchSize, train.count), seed: options.seed,
                                        epoch: epoch, dropLast: options.dropLast)
        let total = batches.batchCount, skipped = epochStep
        for _ in 0..<skipped { _ = batches.next() }   // resuming mid-epoch: the same order, what is done skipped
        var seen = 0
        let job = step.job, processes = job?.size ?? 1
        // In a job, each process trains on its shard of the global batch; a last batch too
        // small to give every process two examples is skipped (the same everywhere). The next
        // shard is built on another thread while the device runs the current step.
        let prefetch = Prefetcher(data: train)
        func nextShard() -> (pending: Prefetcher.Pending, count: Int, global: Int)? {
            guard let global = batches.next(), processes == 1 || global.count >= 2 * processes else { return nil }
            let mine = Array(global[job.shard(global.count)])
            return (prefetch.start(mine), mine.count, global.count)
        }
        var pending = nextShard()
        while let current = pending {
            let feeds = try checked(current.pending.wait(), count: current.count, batch: epochStep + 1)
            pending = nextShard()
            let rate = options.schedule.rate(base: options.learningRate, step: step.steps)
            let share = Double(current.count) / Double(current.global)
            var loss = try step.train(feeds, learningRate: rate, share: share).loss
            // The global batch's loss, and whether any process was asked to stop.
            var stop = pending != nil && shouldStop()
            if let job, processes > 1 {
                let sums = try job.sum([loss * share, stop ? 1 : 0])
                (loss, stop) = (sums[0], sums[1] > 0)
            }
            guard loss.isFinite else {
                throw KilnError.invalidValue(op: "fit", message: "the loss became \(loss) at epoch \(epoch + 1), step \(epochStep + 1): training diverged (try a smaller learning rate)")
            }
            lossSum += loss * Double(current.global)
            examples += current.global
            seen += current.global
            epochStep += 1
            let elapsed = Date().timeIntervalSince(start), done = max(epochStep - skipped, 1)
            progress(TrainingProgress(epoch: epoch + 1, step: epochStep, stepsInEpoch: total, loss: loss,
                                      examplesPerSecond: Double(seen) / max(elapsed, 1e-9),
                                      secondsLeft: elapsed / Double(done) * Double(total - epochStep)))
            if stop {
                _ = try? pending?.pending.wait()
                return nil
            }
        }
        let trainLoss = lossSum / Double(max(examples, 1))
        epoch += 1
        (epochStep, lossSum, examples) = (0, 0, 0)
        let result = try evaluation.map { try evaluate($0) }
        return FitEpoch(epoch: epoch, trainLoss: trainLoss, evaluation: result, seconds: Date().timeIntervalSince(start))
    }

    /// The loss and every metric over a whole dataset, in batches of `evaluationBatchSize` (the
    /// last one partial), each batch weighted by its examples.
    public func evaluate(_ data: any Dataset) throws -> StepResult {
        var loss = 0.0, metrics: [String: Double] = [:]
        for start in stride(from: 0, to: data.count, by: options.evaluationBatchSize) {
            let indices = Array(start..<min(start + options.evaluationBatchSize, data.count))
            let r = try step.evaluate(checked(data.batch(indices), count: indices.count, batch: start / options.evaluationBatchSize + 1))
            let w = Double(indices.count) / Double(data.count)
            loss += r.loss * w
            for (name, v) in r.metrics { metrics[name, default: 0] += v * w }
        }
        return StepResult(loss: loss, metrics: metrics)
    }

    /// A batch's feeds against the first batch's: the same names and dtypes, the batch as the
    /// first dimension, the same trailing dimensions.
    private func checked(_ feeds: [String: HostTensor], count: Int, batch: Int) throws -> [String: HostTensor] {
        for (name, t) in feeds where t.shape.rank == 0 || t.shape[0] != count {
            throw KilnError.shapeMismatch(op: "dataset", message: "batch \(batch): feed '\(name)' has shape \(t.shape); its first dimension must be the batch's \(count) examples")
        }
        let now = feeds.mapValues { ($0.dtype, Array($0.shape.dims.dropFirst())) }
        guard let layout else {
            self.layout = now
            return feeds
        }
        for name in Set(layout.keys).union(now.keys).sorted() {
            let (a, b) = (layout[name], now[name])
            guard let a, let b else {
                throw KilnError.shapeMismatch(op: "dataset", message: "batch \(batch) \(b == nil ? "lacks" : "adds") feed '\(name)' (the first batch had \(layout.keys.sorted()))")
            }
            guard a.0 == b.0, a.1 == b.1 else {
                throw KilnError.shapeMismatch(op: "dataset", message: "batch \(batch): feed '\(name)' is \(b.0) [n, \(b.1.map(String.init).joined(separator: ", "))], the first batch's was \(a.0) [n, \(a.1.map(String.init).joined(separator: ", "))]")
            }
        }
        return feeds
    }

    // MARK: Checkpoints

    /// Parameters, optimizer state and where training stands (epoch, step in the epoch, the
    /// epoch's loss so far), written atomically; in a data-parallel job by rank 0 alone (every
    /// process holds the same values).
    /// `metadata`: what else the caller needs to rebuild the run (a vocabulary, the data's shape).
    public func saveCheckpoint(to path: String, metadata: [String: String] = [:]) throws {
        guard (step.job?.rank ?? 0) == 0 else { return }
        try step.save(to: path, optimizerState: true, metadata: metadata.merging([
            "epoch": "\(epoch)", "epoch_step": "\(epochStep)", "epoch_loss_sum": "\(lossSum)", "epoch_examples": "\(examples)",
            "seed": "\(options.seed)", "batch_size": "\(options.batchSize)",
        ]) { $1 })
    }

    /// Continues from a checkpoint of this model and batch size: the run then follows the
    /// uninterrupted trajectory.
    public func resume(from path: String) throws {
        let file = try SafeTensorsFile.read(path: path)
        guard let e = file.metadata["epoch"].flatMap(Int.init), let s = file.metadata["epoch_step"].flatMap(Int.init) else {
            throw KilnError.file(path: path, message: "not a training checkpoint (its metadata has no epoch and step)")
        }
        if let b = file.metadata["batch_size"].flatMap(Int.init), b != options.batchSize {
            throw KilnError.file(path: path, message: "checkpoint was trained with batches of \(b), not \(options.batchSize): the trajectory would differ")
        }
        try step.load(from: path)
        (epoch, epochStep) = (e, s)
        lossSum = file.metadata["epoch_loss_sum"].flatMap(Double.init) ?? 0
        examples = file.metadata["epoch_examples"].flatMap(Int.init) ?? 0
    }
}
