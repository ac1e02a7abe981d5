import ArgumentParser
import Foundation
import Kiln

extension TrainCommand {
    /// `kiln train --task ner --model transformer`: a tag for every token of whole sentences,
    /// scored with per-entity precision, recall and F1 as the window model is.
    func trainTagger() throws {
        let flags = languageModel
        if resume && checkpoint == nil { throw KilnError.invalidArgument(op: "--resume", message: "needs --checkpoint FILE") }
        let batchSize = self.batchSize ?? 32, lr = self.lr ?? 1e-3, weightDecay = self.weightDecay ?? 0.01
        guard epochs >= 1, batchSize >= 1, lr > 0, lr.isFinite, weightDecay >= 0 else {
            throw KilnError.invalidArgument(op: "train", message: "epochs \(epochs) and batch size \(batchSize) must be at least 1, the learning rate \(lr) positive and weight decay \(weightDecay) not negative")
        }
        let directory = taskOptions.dataDirectory
        let trainSentences = try CoNLL.read(path: (directory as NSString).appendingPathComponent("train.txt"))
        let testSentences = try CoNLL.read(path: (directory as NSString).appendingPathComponent("test.txt"))
        var vocabulary = Vocabulary(sentences: trainSentences), tags = TagSet(sentences: trainSentences)
        // Every sentence fits; a multiple of 8 keeps the row kernels 8-wide.
        let longest = (trainSentences + testSentences).map(\.tokens.count).max() ?? 1
        var maxLength = (longest + 7) / 8 * 8
        // A resumed run keeps the checkpoint's words, tags and length, which its parameters' shapes follow.
        let resuming = resume && checkpoint.map { FileManager.default.fileExists(atPath: $0) } == true
        if resuming, let checkpoint {
            let file = try SafeTensorsFile.read(path: checkpoint)
            guard file.metadata["task"] == "ner-transformer", let length = file.metadata["max_length"].flatMap(Int.init) else {
                throw KilnError.file(path: checkpoint, message: "not a checkpoint of `kiln train --task ner --model transformer` (task \(file.metadata["task"] ?? "none"))")
            }
            (vocabulary, tags) = try CheckpointInfo.nerVocabulary(path: checkpoint)
            maxLength = length
        }
        let train = try TaggedSentences(trainSentences, vocabulary: vocabulary, tags: tags, maxLength: maxLength, source: "train.txt")
        let test = try TaggedSentences(testSentences, vocabulary: vocabulary, tags: tags, maxLength: maxLength, source: "test.txt")
        let dim = taskOptions.dim
        let model = try SentenceTagger(vocabulary: vocabulary.count, dim: dim, width: flags.width, layers: flags.layers,
                                       heads: flags.heads, tags: tags.count, maxLength: maxLength, positions: flags.positions)
        var optimizer = (self.optimizer ?? .adamw).optimizer(momentum: momentum, weightDecay: weightDecay)
        optimizer.decayGroup = .matrices
        optimizer.clipNorm = flags.clip > 0 ? flags.clip : nil
        let step = try ModelStep(model: model, optimizer: optimizer, device: device, seed: seed, fusion: noFusion ? false : nil) { model, batch in
            try crossEntropy(model(batch["tokens"], mask: batch["mask"]), batch["tags"], ignoreIndex: Int(TaggedSentences.ignoreIndex))
        }
        if let vectors = taskOptions.vectors {
            let (values, found) = try GloVe.embeddingMatrix(path: vectors, vocabulary: vocabulary, dim: dim, seed: seed)
            var parameters = try step.parameterValues()
            parameters["words.table"] = try HostTensor(values, shape: [vocabulary.count, dim])
            try step.restore(parameters: parameters)
            print("Word vectors from \(vectors): \(found) of \(vocabulary.count) words found")
        }
        var options = FitOptions()
        options.epochs = epochs
        options.batchSize = batchSize
        options.learningRate = lr
        options.seed = seed
        let trainer = try ModelTrainer(step: step, train: train, evaluation: test, options: options)
        let metadata = ["task": "ner-transformer", "vocabulary": vocabulary.tokens.joined(separator: "\n"),
                        "tags": tags.tags.joined(separator: "\n"), "max_length": "\(maxLength)"]
        let parameters = step.namedParameters.reduce(0) { $0 + $1.parameter.shape.count }
        print("Task ner: \(trainSentences.count) training and \(testSentences.count) test sentences, vocabulary \(vocabulary.count), \(tags.count) tags; padded to \(maxLength) positions")
        print("Model: transformer tagger, dim \(dim), width \(flags.width), \(flags.layers) layers, \(flags.heads) heads: \(parameters) parameters")
        print("Device \(try Devices.describe(device))")
        if resume, let checkpoint {
            if resuming {
                try trainer.resume(from: checkpoint)
                print("Resumed from \(checkpoint) after epoch \(trainer.epoch), step \(trainer.epochStep)")
            } else {
                print("No checkpoint at \(checkpoint) yet: starting from the beginning")
            }
        }
        var log = try metrics.map { try MetricsLog(path: $0, keepingEpochsThrough: resume ? trainer.epoch : 0) }
        let interrupt = InterruptFlag.install()
        trainer.shouldStop = { interrupt.isSet }
        let completed = try trainer.fit(finished: { result in
            let (_, scores) = try test.score(step)
            print(String(format: "epoch %d/%d  train loss %.4f  test loss %.4f  F1 %.4f  %.1f s", result.epoch, epochs, result.trainLoss,
                         result.evaluation?.loss ?? Double.nan, scores.overall.f1, result.seconds))
            if let checkpoint { try trainer.saveCheckpoint(to: checkpoint, metadata: metadata) }
            try log?.append(epoch: result.epoch, series: ["train_loss": result.trainLoss, "test_loss": result.evaluation?.loss ?? .nan],
                            extra: ["seconds": result.seconds, "f1": scores.overall.f1])
            if result.epoch == epochs { printNER(scores) }
        })
        if !completed {
            try stopInterrupted(at: "epoch \(trainer.epoch + 1), step \(trainer.epochStep)", checkpoint: checkpoint, say: { print($0) }) {
                try trainer.saveCheckpoint(to: $0, metadata: metadata)
            }
        }
        if let metrics, let log { print("Metrics in \(metrics), curve in \(log.svgPath)") }
        if let checkpoint { print("Checkpoint in \(checkpoint)") }
    }
}
