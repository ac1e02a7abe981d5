import ArgumentParser
import Foundation
import Kiln

extension PositionEncoding: ExpressibleByArgument {}

/// The transformer models' options (charlm's GPT, and ner's transformer tagger for width,
/// layers, heads and clipping): the model's shape and how long charlm trains.
struct LanguageModelFlags: ParsableArguments {
    init() {}
    @Option(help: "charlm: optimizer steps (each on --batch-size random windows).")
    var steps = 1000

    @Option(name: .customLong("eval-every"), help: "charlm: evaluate on the held-out text every this many steps.")
    var evalEvery = 100

    @Option(help: "charlm and the ner transformer: clip gradients by their global norm (0: no clipping).")
    var clip = 1.0

    @Option(help: "charlm: positions per window.")
    var context = 128

    @Option(help: "charlm and the ner transformer: model width.")
    var width = 128

    @Option(help: "charlm and the ner transformer: transformer blocks.")
    var layers = 4

    @Option(help: "charlm and the ner transformer: attention heads (must divide the width).")
    var heads = 4

    @Flag(help: "charlm: the output projection is the token embedding, transposed (one parameter used twice).")
    var tie = false

    @Option(help: "charlm and the ner transformer: how positions are told apart: learned (a trained table) or sinusoidal (fixed sines and cosines).")
    var positions = PositionEncoding.learned

    func config(vocabulary: Int) -> TransformerConfig {
        TransformerConfig(vocabulary: vocabulary, context: context, width: width, layers: layers, heads: heads, tied: tie, positions: positions)
    }
}

extension TrainCommand {
    /// `kiln train --task charlm`: a character-level GPT trained for `--steps` steps.
    func trainLanguageModel() throws {
        let flags = languageModel
        let batchSize = self.batchSize ?? 32, lr = self.lr ?? 1e-3
        let weightDecay = self.weightDecay ?? 0.1
        guard flags.steps >= 1, flags.evalEvery >= 1 else {
            throw KilnError.invalidArgument(op: "--steps", message: "--steps (\(flags.steps)) and --eval-every (\(flags.evalEvery)) must be at least 1")
        }
        guard flags.clip >= 0, flags.clip.isFinite else { throw KilnError.invalidArgument(op: "--clip", message: "must be 0 or a positive number, got \(flags.clip)") }
        guard weightDecay >= 0 else { throw KilnError.invalidArgument(op: "--weight-decay", message: "must not be negative, got \(weightDecay)") }
        if resume && checkpoint == nil { throw KilnError.invalidArgument(op: "--resume", message: "needs --checkpoint FILE") }

        var vocabulary: [Unicode.Scalar]?, config: TransformerConfig?
        if resume, let checkpoint, FileManager.default.fileExists(atPath: checkpoint) {
            (config, vocabulary) = try LanguageModelTrainer.checkpointModel(path: checkpoint)
        }
        let corpus = try TextCorpus.load(path: taskOptions.dataDirectory, vocabulary: vocabulary)
        let shape = config ?? flags.config(vocabulary: corpus.characters.count)
        let model = try TransformerLanguageModel(shape)
        var optimizer = (self.optimizer ?? .adamw).optimizer(momentum: momentum, weightDecay: weightDecay)
        optimizer.decayGroup = .matrices
        optimizer.clipNorm = flags.clip > 0 ? flags.clip : nil
        var options = LanguageModelOptions()
        options.steps = flags.steps
        options.batchSize = batchSize
        options.learningRate = lr
        options.evaluateEvery = flags.evalEvery
        options.seed = seed
        switch schedule {
        case .constant: options.schedule = .constant
        case .step: options.schedule = .step(every: max(flags.steps / 3, 1), gamma: 0.1)
        case .cosine: options.schedule = .cosine(warmup: warmup, total: flags.steps)
        }
        let trainer = try LanguageModelTrainer(model: model, corpus: corpus, optimizer: optimizer, device: device, options: options,
                                               fusion: noFusion ? false : nil)
        if checkNumerics { trainer.step.checkNumerics = true }
        let parameters = trainer.step.namedParameters.reduce(0) { $0 + $1.parameter.shape.count }
        print("Task charlm: \(corpus.train.count + corpus.validation.count) characters from \(corpus.source) (\(corpus.characters.count) distinct), \(corpus.train.count) for training, \(corpus.validation.count) held out")
        print("Model: GPT, context \(shape.context), width \(shape.width), \(shape.layers) layers, \(shape.heads) heads\(shape.tied ? ", tied embedding" : "")\(shape.positions == .sinusoidal ? ", sinusoidal positions" : ""): \(parameters) parameters")
        print("Device \(try Devices.describe(device))")
        if resume, let checkpoint {
            if FileManager.default.fileExists(atPath: checkpoint) {
                try trainer.resume(from: checkpoint)
                print("Resumed from \(checkpoint) after step \(trainer.stepsDone)")
            } else {
                print("No checkpoint at \(checkpoint) yet: starting from the beginning")
            }
        }
        var log = try metrics.map { try MetricsLog(path: $0, keepingEpochsThrough: resume ? trainer.stepsDone : 0, axis: "step") }
        let terminal = isatty(STDOUT_FILENO) != 0
        let interrupt = InterruptFlag.install()
        trainer.shouldStop = { interrupt.isSet }
        var (first, since) = (trainer.stepsDone, Date())   // the progress rate's start
        let completed = try trainer.run(progress: { step, loss in
            guard terminal else { return }
            let rate = Double(step - first) / max(Date().timeIntervalSince(since), 1e-9)
            print(String(format: "\rstep %d/%d  loss %.4f  %.2f steps/s ", step, flags.steps, loss, rate), terminator: "")
            fflush(nil)
        }) { e in
            if terminal { print("") }
            print(String(format: "step %d/%d  train loss %.4f  val loss %.4f  %.3f bits/char  %.1f s", e.step, flags.steps,
                         e.trainLoss, e.validationLoss, e.bitsPerCharacter, e.seconds))
            if let checkpoint { try trainer.saveCheckpoint(to: checkpoint) }
            try log?.append(epoch: e.step, series: ["train_loss": e.trainLoss, "val_loss": e.validationLoss],
                            extra: ["bits_per_char": e.bitsPerCharacter, "seconds": e.seconds])
            (first, since) = (e.step, Date())
        }
        if !completed {
            if terminal { print("") }
            try stopInterrupted(at: "step \(trainer.stepsDone)", checkpoint: checkpoint, say: { print($0) }) { try trainer.saveCheckpoint(to: $0) }
        }
        if let metrics, let log { print("Metrics in \(metrics), curve in \(log.svgPath)") }
        if let checkpoint { print("Checkpoint in \(checkpoint); sample with: kiln generate --checkpoint \(checkpoint) --prompt \"...\"") }
    }
}

/// `kiln generate`: text from a character language model's checkpoint.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Sample text from a charlm checkpoint.")

    @Option(help: "A checkpoint written by `kiln train --task charlm --checkpoint FILE`.")
    var checkpoint: String

    @Option(help: "The text to continue.")
    var prompt = "\n"

    @Option(help: "Characters to generate.")
    var tokens = 200

    @Option(help: "Divides the logits before sampling (below 1: surer, above 1: more varied).")
    var temperature = 1.0

    @Option(name: .customLong("top-k"), help: "Sample among the k likeliest characters only.")
    var topK: Int?

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "cpu, or gpu (OpenCL).")
    var device: DeviceKind = .cpu

    func run() throws {
        let (config, characters) = try LanguageModelTrainer.checkpointModel(path: checkpoint)
        let ids = try TextCorpus.encode(Array(prompt.unicodeScalars), characters: characters, source: "--prompt")
        let step = try ModelStep(model: try TransformerLanguageModel(config), optimizer: .adamW(), device: device) { model, batch in
            try crossEntropy(model(batch["tokens"]), batch["targets"])
        }
        _ = try step.load(from: checkpoint)
        let out = try TextSampler(step: step).sample(prompt: ids, count: tokens, temperature: temperature, topK: topK, seed: seed)
        var text = String.UnicodeScalarView()
        for id in out { text.append(characters[Int(id)]) }
        print(prompt + String(text))
    }
}
