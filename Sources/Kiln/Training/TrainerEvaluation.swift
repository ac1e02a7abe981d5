/// Evaluation on the test set: loss, accuracy, and for NER the entity spans scored.
extension Trainer {
    /// Loss, accuracy (and NER scores) on the test set with the current parameters. In a
    /// job, each process evaluates its shard of the test set and the counts are summed.
    public func evaluate() throws -> (loss: Double, accuracy: Double, ner: NERMetrics?) {
        let data = task.test
        var lossSum = 0.0, hits = 0.0
        let mine = options.job.shard(data.count)
        var predictions = [Int32](repeating: 0, count: mine.lowerBound)
        predictions.reserveCapacity(data.count)
        let batch = min(options.batchSize, max(data.count, 1))
        var start = mine.lowerBound
        while start < mine.upperBound {
            let n = min(batch, mine.upperBound - start)
            let out = try step.infer(Self.feeds(data.batch(Array(start..<start + n))), name: "evaluation") { model, batch in
                let logits = try model(batch["input"]), labels = try batch["labels"]
                return ["loss": try crossEntropy(logits, labels), "accuracy": try logits.graph.accuracy(logits: logits, labels: labels),
                        "predictions": try logits.graph.argmax(logits, axis: 1)]
            }
            lossSum += out["loss"]!.scalarValue * Double(n)
            hits += out["accuracy"]!.scalarValue * Double(n)
            if case .int32(let p) = out["predictions"]!.storage { predictions += p }
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
}
