import Foundation

/// How `LanguageModelTrainer` trains.
public struct LanguageModelOptions: Sendable {
    public var steps = 1000
    public var batchSize = 32
    public var learningRate = 1e-3
    public var schedule = LRSchedule.constant
    /// Evaluate on the held-out text every this many steps (and after the last).
    public var evaluateEvery = 100
    /// Windows per evaluation batch.
    public var evaluationBatchSize = 32
    /// Seeds the random windows (step `s` draws from `(seed, s)`).
    public var seed: UInt64 = 0

    public init() {}
}

/// One evaluation: the mean training loss since the previous one, the held-out loss in nats
/// and in bits per character, and the seconds since training started.
public struct LanguageModelEvaluation: Sendable {
    public let step: Int
    public let trainLoss: Double
    public let validationLoss: Double
    public var bitsPerCharacter: Double { validationLoss / log(2) }
    public let seconds: Double
}

/// Trains a `TransformerLanguageModel` on a text: random windows each step, evaluation on
/// every non-overlapping held-out window, checkpoints that carry the vocabulary and shape (so
/// `generate` needs nothing else) and resume on the same trajectory.
public final class LanguageModelTrainer {
    public let step: ModelStep<TransformerLanguageModel>
    public let corpus: TextCorpus
    public let options: LanguageModelOptions
    public let trainWindows: TextWindows
    public let validationWindows: TextWindows
    /// Steps done.
    public private(set) var stepsDone = 0
    private var lossSum = 0.0, lossCount = 0
    /// Asked after every step; true stops training after that step (`run` returns false).
    public var shouldStop: () -> Bool = { false }

    public init(model: TransformerLanguageModel, corpus: TextCorpus, optimizer: Optimizer, device: DeviceKind,
                options: LanguageModelOptions = LanguageModelOptions(), fusion: Bool? = nil) throws {
        guard options.steps >= 1, options.batchSize >= 1, options.evaluateEvery >= 1, options.evaluationBatchSize >= 1,
              options.learningRate > 0, options.learningRate.isFinite else {
            throw KilnError.invalidArgument(op: "LanguageModelTrainer", message: "steps \(options.steps), batch size \(options.batchSize), evaluation interval \(options.evaluateEvery) and evaluation batch size \(options.evaluationBatchSize) must be at least 1 and the learning rate \(options.learningRate) positive")
        }
        guard corpus.characters.count == model.config.vocabulary else {
            throw KilnError.invalidArgument(op: "LanguageModelTrainer", message: "the text has \(corpus.characters.count) distinct characters, the model's vocabulary \(model.config.vocabulary)")
        }
        let context = model.config.context
        trainWindows = try TextWindows(corpus.train, context: context)
        guard corpus.validation.count > context else {
            throw KilnError.invalidArgument(op: "LanguageModelTrainer", message: "the held-out text (\(corpus.validation.count) characters) does not fill one window of \(context) + 1")
        }
        validationWindows = try TextWindows(corpus.validation, context: context)
        self.corpus = corpus
        self.options = options
        step = try ModelStep(model: model, optimizer: optimizer, device: device, seed: options.seed, fusion: fusion) { model, batch in
            try crossEntropy(model(batch["tokens"]), batch["targets"])
        }
    }

    /// Trains the remaining steps, calling `progress` with each step's number and loss and
    /// `evaluated` after each evaluation. Returns false when `shouldStop` interrupted it.
    @discardableResult
    public func run(progress: (Int, Double) -> Void = { _, _ in },
                    evaluated: (LanguageModelEvaluation) throws -> Void = { _ in }) throws -> Bool {
        let start = Date()
        while stepsDone < options.steps {
            let feeds = try trainWindows.random(count: options.batchSize, seed: options.seed, step: stepsDone)
            let rate = options.schedule.rate(base: options.learningRate, step: stepsDone)
            let loss = try step.train(feeds, learningRate: rate).loss
            guard loss.isFinite else {
                throw KilnError.invalidValue(op: "train", message: "the loss became \(loss) at step \(stepsDone + 1): training diverged (try a smaller learning rate)")
            }
            stepsDone += 1
            lossSum += loss
            lossCount += 1
            progress(stepsDone, loss)
            if stepsDone % options.evaluateEvery == 0 || stepsDone == options.steps {
                let validation = try validationLoss()
                try evaluated(LanguageModelEvaluation(step: stepsDone, trainLoss: lossSum / Double(max(lossCount, 1)),
                                                      validationLoss: validation, seconds: Date().timeIntervalSince(start)))
                (lossSum, lossCount) = (0, 0)
            }
            if stepsDone < options.steps && shouldStop() { return false }
        }
        return true
    }

    /// The mean loss per held-out character over every non-overlapping window, in nats.
    public func validationLoss() throws -> Double {
        var sum = 0.0, windows = 0
        for starts in validationWindows.tiling(batchSize: options.evaluationBatchSize) {
            sum += try step.evaluate(validationWindows.batch(starts: starts)).loss * Double(starts.count)
            windows += starts.count
        }
        return sum / Double(windows)
    }

    // MARK: Checkpoints

    /// Parameters, optimizer state, the step, the vocabulary and the model's shape, atomically.
    public func saveCheckpoint(to path: String) throws {
        try step.save(to: path, optimizerState: true, metadata: try Self.metadata(step.model.config, corpus.characters).merging([
            "steps_done": "\(stepsDone)", "loss_sum": "\(lossSum)", "loss_count": "\(lossCount)", "seed": "\(options.seed)",
            "batch_size": "\(options.batchSize)",
        ]) { $1 })
    }

    /// Continues from a checkpoint of this model: the run then follows the uninterrupted
    /// trajectory (the windows are drawn from the step number).
    public func resume(from path: String) throws {
        let file = try SafeTensorsFile.read(path: path)
        guard let s = file.metadata["steps_done"].flatMap(Int.init) else {
            throw KilnError.file(path: path, message: "not a language-model training checkpoint (its metadata has no steps_done)")
        }
        if let b = file.metadata["batch_size"].flatMap(Int.init), b != options.batchSize {
            throw KilnError.file(path: path, message: "checkpoint was trained with batches of \(b), not \(options.batchSize): the trajectory would differ")
        }
        _ = try step.load(from: path)
        stepsDone = s
        lossSum = file.metadata["loss_sum"].flatMap(Double.init) ?? 0
        lossCount = file.metadata["loss_count"].flatMap(Int.init) ?? 0
    }

    /// A checkpoint's metadata entries for the model's shape and vocabulary.
    static func metadata(_ config: TransformerConfig, _ characters: [Unicode.Scalar]) throws -> [String: String] {
        let shape = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        let vocabulary = String(decoding: try JSONEncoder().encode(characters.map { String($0) }), as: UTF8.self)
        return ["task": "charlm", "model": shape, "vocabulary": vocabulary]
    }

    /// The model's shape and vocabulary from a checkpoint written by `saveCheckpoint`.
    public static func checkpointModel(path: String) throws -> (config: TransformerConfig, characters: [Unicode.Scalar]) {
        let file = try SafeTensorsFile.read(path: path)
        guard file.metadata["task"] == "charlm", let shape = file.metadata["model"], let vocabulary = file.metadata["vocabulary"],
              let config = try? JSONDecoder().decode(TransformerConfig.self, from: Data(shape.utf8)),
              let strings = try? JSONDecoder().decode([String].self, from: Data(vocabulary.utf8)) else {
            throw KilnError.file(path: path, message: "not a character language model's checkpoint (its metadata lacks task charlm, model or vocabulary)")
        }
        let characters = strings.compactMap { $0.unicodeScalars.count == 1 ? $0.unicodeScalars.first : nil }
        guard characters.count == strings.count, characters.count == config.vocabulary else {
            throw KilnError.file(path: path, message: "its vocabulary (\(strings.count) entries) does not match the model's \(config.vocabulary)")
        }
        return (config, characters)
    }
}

/// Samples text from a trained language model, one character at a time.
public struct TextSampler {
    public let step: ModelStep<TransformerLanguageModel>

    public init(step: ModelStep<TransformerLanguageModel>) { self.step = step }

    /// `count` ids after `prompt` (ids), each drawn from softmax(logits / temperature) over the
    /// `topK` likeliest (all when nil), seeded. The model reads the last `context` ids; a
    /// shorter window is padded after its end, which a causal model never reads.
    public func sample(prompt: [Int32], count: Int, temperature: Double = 1, topK: Int? = nil, seed: UInt64 = 0) throws -> [Int32] {
        let context = step.model.config.context
        guard !prompt.isEmpty else { throw KilnError.invalidArgument(op: "generate", message: "the prompt is empty") }
        guard count >= 0, temperature > 0, temperature.isFinite, (topK ?? 1) >= 1 else {
            throw KilnError.invalidArgument(op: "generate", message: "tokens \(count) must not be negative, temperature \(temperature) positive and top-k \(topK ?? 0) at least 1")
        }
        var rng = SeededGenerator(seed: seed)
        var ids = prompt, out: [Int32] = []
        for _ in 0..<count {
            let window = Array(ids.suffix(context)), last = window.count - 1
            let tokens = try HostTensor(window + [Int32](repeating: 0, count: context - window.count), shape: [1, context])
            let logits = try step.infer(["tokens": tokens], name: "logits") { model, batch in ["logits": try model(batch["tokens"])] }["logits"]!
            let v = step.model.config.vocabulary
            let row = logits.doubles[last * v..<(last + 1) * v].map { $0 / temperature }
            var order = Array(row.indices).sorted { row[$0] > row[$1] }
            if let topK { order = Array(order.prefix(topK)) }
            let top = row[order[0]]
            let weights = order.map { Foundation.exp(row[$0] - top) }
            var pick = Double.random(in: 0..<weights.reduce(0, +), using: &rng), chosen = order.last!
            for (i, w) in zip(order, weights) {
                if pick < w { chosen = i; break }
                pick -= w
            }
            ids.append(Int32(chosen))
            out.append(Int32(chosen))
        }
        return out
    }
}
