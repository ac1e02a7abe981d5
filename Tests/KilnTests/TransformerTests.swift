import Foundation
import Testing
import Kiln

/// The character-level GPT against PyTorch (Tests/Fixtures/transformer.json, from
/// scripts/make_golden.py and scripts/charlm_reference.py), attention's gradients against
/// finite differences, the OpenCL step against the CPU one, training, checkpoints, sampling and
/// the errors a user can cause.
@Suite struct TransformerTests {
    struct GPTFixture: Decodable {
        struct Config: Decodable { let vocabulary, context, width, layers, heads: Int }
        let config: Config
        let ids, targets, logits, loss: FixtureTensor
        let params, grads: [String: FixtureTensor]
    }

    static func tinyConfig(_ c: GPTFixture.Config) -> TransformerConfig {
        TransformerConfig(vocabulary: c.vocabulary, context: c.context, width: c.width, layers: c.layers, heads: c.heads)
    }

    /// Logits, loss and every parameter's gradient in Double, as PyTorch computes them.
    @Test func gptMatchesPyTorch() throws {
        let f = try Fixtures.load("transformer.json", as: GPTFixture.self)
        let model = try TransformerLanguageModel(Self.tinyConfig(f.config), dtype: .float64)
        let named = model.namedParameters()
        #expect(Set(named.map(\.name)) == Set(f.params.keys))
        let g = Graph()
        let ids = try g.placeholder("ids", Shape(f.ids.shape), .int32), targets = try g.placeholder("targets", Shape(f.targets.shape), .int32)
        let logits = try model(ids)
        let loss = try crossEntropy(logits, targets)
        let params = try named.map { try $0.parameter.tensor(in: g) }
        let grads = try g.gradients(of: loss, wrt: params)
        var feeds: [Tensor: HostTensor] = [ids: try f.ids.host(.int32), targets: try f.targets.host(.int32)]
        for ((name, _), t) in zip(named, params) { feeds[t] = try f.params[name]!.host(.float64) }
        for (_, b) in model.namedBuffers() { feeds[try b.tensor(in: g)] = try b.initialTensor }
        let out = try CPUReference<Double>().run(g, feeds: feeds, fetch: [logits, loss] + grads)
        #expect(maxError(out[0].doubles, f.logits.data) < 1e-10)
        #expect(abs(out[1].scalarValue - f.loss.data[0]) < 1e-10)
        for (i, (name, _)) in named.enumerated() {
            #expect(maxError(out[2 + i].doubles, f.grads[name]!.data) < 1e-9, "\(name)")
        }
    }

    /// Attention with a causal mask and a padding mask, and a block around it: autodiff against
    /// central finite differences in Double.
    @Test func attentionGradientsMatchFiniteDifferences() throws {
        let g = Graph()
        let attention = try MultiHeadAttention(width: 6, heads: 2, causal: true, context: 4, dtype: .float64)
        let block = try TransformerBlock(width: 6, heads: 3, dtype: .float64)
        final class Holder: Module { let a: MultiHeadAttention; let b: TransformerBlock; init(_ a: MultiHeadAttention, _ b: TransformerBlock) { (self.a, self.b) = (a, b) } }
        let holder = Holder(attention, block)
        let named = holder.namedParameters()
        let x = try g.placeholder("x", [2, 4, 6], .float64)
        let padding = try g.placeholder("padding", [2, 4], .float64)
        let y = try block(attention(x), padding: padding)
        let upstream = try g.placeholder("upstream", y.shape, .float64)
        let loss = try (y * upstream).sum()
        var rng = SeededGenerator(seed: 9)
        var values: [Tensor: HostTensor] = [:]
        let params = try named.map { try $0.parameter.tensor(in: g) }
        for t in [x, upstream] + params { values[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1), shape: t.shape) }
        values[padding] = try HostTensor([Double]([1, 1, 1, 0, 1, 1, 0, 0]), shape: [2, 4])
        for (_, b) in holder.namedBuffers() { values[try b.tensor(in: g)] = try b.initialTensor }
        let results = try GradientCheck.run(g, loss: loss, wrt: [x] + params, values: values)
        for r in results { #expect(r.maxRelativeError < 1e-5, "\(r.name): \(r.maxRelativeError)") }
    }

    /// A tied model uses the token table twice (lookup and output projection): its gradient is
    /// the sum of both uses, checked against finite differences.
    @Test func tiedEmbeddingGetsBothGradients() throws {
        let model = try TransformerLanguageModel(TransformerConfig(vocabulary: 5, context: 4, width: 4, layers: 1, heads: 2, tied: true),
                                                 dtype: .float64)
        let named = model.namedParameters()
        #expect(model.head == nil && !named.contains { $0.name.hasPrefix("head") })
        let g = Graph()
        let ids = try g.placeholder("ids", [2, 4], .int32), targets = try g.placeholder("targets", [2, 4], .int32)
        let loss = try crossEntropy(model(ids), targets)
        var rng = SeededGenerator(seed: 21)
        var values: [Tensor: HostTensor] = [ids: try HostTensor([Int32]([0, 1, 2, 3, 4, 3, 2, 1]), shape: [2, 4]),
                                            targets: try HostTensor([Int32]([1, 2, 3, 4, 0, 0, 1, 2]), shape: [2, 4])]
        let params = try named.map { try $0.parameter.tensor(in: g) }
        for t in params { values[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1), shape: t.shape) }
        for (_, b) in model.namedBuffers() { values[try b.tensor(in: g)] = try b.initialTensor }
        let table = try model.tokens.table.tensor(in: g)
        let result = try GradientCheck.run(g, loss: loss, wrt: [table], values: values)[0]
        #expect(result.maxRelativeError < 1e-5, "\(result.maxRelativeError)")
    }

    /// Three AdamW steps with clipping of a small GPT on OpenCL and on the CPU backend give the
    /// same losses.
    @Test func openCLStepsMatchTheCPU() throws {
        guard OpenCLSupport.context != nil else { return }
        let config = TransformerConfig(vocabulary: 11, context: 16, width: 16, layers: 1, heads: 2)
        var rng = SeededGenerator(seed: 4)
        let text = (0..<400).map { _ in Int32.random(in: 0..<11, using: &rng) }
        let windows = try TextWindows(text, context: 16)
        var losses: [[Double]] = []
        for device in [DeviceKind.cpu, .gpu] {
            let step = try ModelStep(model: try TransformerLanguageModel(config),
                                     optimizer: .adamW(weightDecay: 0.1, decayGroup: .matrices, clipNorm: 0.5), device: device) {
                try crossEntropy($0($1["tokens"]), $1["targets"])
            }
            losses.append(try (0..<3).map { try step.train(windows.random(count: 4, seed: 1, step: $0), learningRate: 1e-2).loss })
        }
        #expect(maxError(losses[0], losses[1]) < 1e-4, "\(losses)")
    }

    static func corpus() throws -> TextCorpus {
        let line = "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n"
        return try TextCorpus(text: String(repeating: line, count: 30), source: "pangrams")
    }

    static func trainer(steps: Int, _ corpus: TextCorpus) throws -> LanguageModelTrainer {
        var options = LanguageModelOptions()
        options.steps = steps
        options.batchSize = 4
        options.evaluateEvery = 2
        options.learningRate = 3e-3
        let model = try TransformerLanguageModel(TransformerConfig(vocabulary: corpus.characters.count, context: 16, width: 16, layers: 1, heads: 2))
        return try LanguageModelTrainer(model: model, corpus: corpus, optimizer: .adamW(weightDecay: 0.1, decayGroup: .matrices, clipNorm: 1),
                                        device: .cpu, options: options)
    }

    /// Training lowers the held-out loss; a run stopped, saved and resumed ends where an
    /// uninterrupted one does; the checkpoint carries what sampling needs.
    @Test func trainsResumesAndSamples() throws {
        let corpus = try Self.corpus()
        let straight = try Self.trainer(steps: 6, corpus)
        var evaluations: [LanguageModelEvaluation] = []
        try straight.run(evaluated: { evaluations.append($0) })
        #expect(evaluations.map(\.step) == [2, 4, 6])
        #expect(evaluations.last!.validationLoss < log(Double(corpus.characters.count)))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-charlm-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try Self.trainer(steps: 6, corpus)
        var calls = 0
        first.shouldStop = { calls += 1; return calls == 3 }
        #expect(try first.run() == false)
        #expect(first.stepsDone == 3)
        try first.saveCheckpoint(to: path)
        let second = try Self.trainer(steps: 6, corpus)
        try second.resume(from: path)
        try second.run()
        let a = try straight.step.parameterValues(), b = try second.step.parameterValues()
        for (name, v) in a { #expect(v.doubles == b[name]!.doubles, "\(name)") }

        try straight.saveCheckpoint(to: path)
        let (config, characters) = try LanguageModelTrainer.checkpointModel(path: path)
        #expect(config == straight.step.model.config && characters == corpus.characters)
        let sampler = TextSampler(step: straight.step)
        let prompt = try TextCorpus.encode(Array("the ".unicodeScalars), characters: characters, source: "prompt")
        let one = try sampler.sample(prompt: prompt, count: 20, temperature: 0.8, topK: 5, seed: 3)
        #expect(one.count == 20 && one.allSatisfy { $0 >= 0 && Int($0) < characters.count })
        #expect(try sampler.sample(prompt: prompt, count: 20, temperature: 0.8, topK: 5, seed: 3) == one)
    }

    /// Sinusoidal positions: the table's values (sin and cos of p / 10000^(2i/width)), no
    /// position parameter to train, a model that still learns, and a configuration saved
    /// before the choice existed read as learned positions.
    @Test func sinusoidalPositions() throws {
        let table = PositionEncoding.sinusoids(positions: 3, width: 4)
        let want: [Double] = [0, 1, 0, 1, sin(1.0), cos(1.0), sin(0.01), cos(0.01), sin(2.0), cos(2.0), sin(0.02), cos(0.02)]
        #expect(maxError(table, want) < 1e-15)
        let corpus = try Self.corpus()
        var options = LanguageModelOptions()
        (options.steps, options.batchSize, options.evaluateEvery, options.learningRate) = (8, 4, 8, 3e-3)
        let config = TransformerConfig(vocabulary: corpus.characters.count, context: 16, width: 16, layers: 1, heads: 2, positions: .sinusoidal)
        let model = try TransformerLanguageModel(config)
        let trainer = try LanguageModelTrainer(model: model, corpus: corpus, optimizer: .adamW(weightDecay: 0.1, decayGroup: .matrices, clipNorm: 1),
                                               device: .cpu, options: options)
        #expect(!model.namedParameters().contains { $0.name.contains("position") } && model.positions == nil)
        var last: LanguageModelEvaluation?
        try trainer.run(evaluated: { last = $0 })
        #expect(last!.validationLoss < log(Double(corpus.characters.count)))
        let old = #"{"vocabulary": 5, "context": 8, "width": 16, "layers": 1, "heads": 2, "tied": false}"#
        let decoded = try JSONDecoder().decode(TransformerConfig.self, from: Data(old.utf8))
        #expect(decoded == TransformerConfig(vocabulary: 5, context: 8, width: 16, layers: 1, heads: 2))
    }

    /// Clipping by global norm: one SGD step moves the parameters by lr · g · clip / ‖g‖.
    @Test func clipsByGlobalNorm() throws {
        final class Net: Module { let w = Parameter([2], initializer: .zeros, name: "w"); let v = Parameter([1], initializer: .zeros, name: "v") }
        let step = try ModelStep(model: Net(), optimizer: Optimizer(.sgd, clipNorm: 1), device: .cpu) { net, b in
            // Gradients (3, 0) and (4): norm 5.
            try (net.w.tensor(in: b["x"].graph) * b["x"]).sum() + (net.v.tensor(in: b["x"].graph) * 4).sum()
        }
        try step.train(["x": try HostTensor([Float(3), 0], shape: [2])], learningRate: 1)
        let p = try step.parameterValues()
        #expect(maxError(p["w"]!.doubles, [-0.6, 0]) < 1e-6 && maxError(p["v"]!.doubles, [-0.8]) < 1e-6)
    }

    /// The tagger's padding mask: what sits at padded positions changes no word's logits.
    @Test func taggerIgnoresPadding() throws {
        let tagger = try SentenceTagger(vocabulary: 20, dim: 6, width: 8, layers: 2, heads: 2, tags: 5, maxLength: 8, dtype: .float64)
        let named = tagger.namedParameters()
        let g = Graph()
        let ids = try g.placeholder("ids", [2, 8], .int32), mask = try g.placeholder("mask", [2, 8], .float64)
        let logits = try tagger(ids, mask: mask)
        var rng = SeededGenerator(seed: 5)
        var feeds: [Tensor: HostTensor] = [mask: try HostTensor([Double]([1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0]), shape: [2, 8])]
        for (_, p) in named { let t = try p.tensor(in: g); feeds[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1), shape: t.shape) }
        var outputs: [[Double]] = []
        for padding: [Int32] in [[0, 0, 0], [7, 13, 2]] {
            feeds[ids] = try HostTensor([3, 4, 5, 6, 7] + padding + [9, 8, 7, 6, 5, 4, 3, 0], shape: [2, 8])
            outputs.append(try CPUReference<Double>().run(g, feeds: feeds, fetch: [logits])[0].doubles)
        }
        let words = (0..<5 * 5).map { $0 } + (8 * 5..<15 * 5).map { $0 }   // row 0's 5 words, row 1's 7, 5 tags each
        #expect(maxError(words.map { outputs[0][$0] }, words.map { outputs[1][$0] }) < 1e-12)
        #expect(outputs[0] != outputs[1])   // the padded positions themselves did change
    }

    /// The sample corpus: sentences padded with ignored tags, a few epochs that lower the loss.
    @Test func taggerTrainsOnTheSampleCorpus() throws {
        let dir = Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("data/ner-sample")
        let sentences = try CoNLL.read(path: dir.appendingPathComponent("train.txt").path)
        let vocabulary = Vocabulary(sentences: sentences), tags = TagSet(sentences: sentences)
        let longest = sentences.map(\.tokens.count).max()!
        let data = try TaggedSentences(sentences, vocabulary: vocabulary, tags: tags, maxLength: longest, source: "train.txt")
        let batch = try data.batch([0, 1])
        #expect(batch["tags"]!.doubles.filter { $0 == Double(TaggedSentences.ignoreIndex) }.count
                == 2 * longest - sentences[0].tokens.count - sentences[1].tokens.count)
        #expect(throws: KilnError.self) { try TaggedSentences(sentences, vocabulary: vocabulary, tags: tags, maxLength: longest - 1, source: "train.txt") }
        let model = try SentenceTagger(vocabulary: vocabulary.count, dim: 16, width: 16, layers: 1, heads: 2, tags: tags.count, maxLength: longest)
        let step = try ModelStep(model: model, optimizer: .adamW(), device: .cpu) { m, b in
            try crossEntropy(m(b["tokens"], mask: b["mask"]), b["tags"], ignoreIndex: Int(TaggedSentences.ignoreIndex))
        }
        var options = FitOptions()
        options.epochs = 4
        options.batchSize = 16
        let trainer = try ModelTrainer(step: step, train: data, options: options)
        var losses: [Double] = []
        try trainer.fit(finished: { losses.append($0.trainLoss) })
        #expect(losses.last! < losses.first!)
        let (predicted, metrics) = try data.score(step)
        #expect(predicted.map(\.count) == sentences.map(\.tokens.count))
        #expect(metrics.overall.gold > 0)
    }

    @Test func badInputIsNamed() throws {
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "" } catch { return "\(error)" }
        }
        #expect(message { try MultiHeadAttention(width: 10, heads: 3) }.contains("3 heads do not divide the width 10"))
        #expect(message { try TransformerLanguageModel(TransformerConfig(vocabulary: 5, width: 10, heads: 4)) }.contains("4 heads do not divide the width 10"))
        let model = try TransformerLanguageModel(TransformerConfig(vocabulary: 5, context: 8, width: 8, layers: 1, heads: 2))
        _ = model.namedParameters()
        let g = Graph()
        #expect(message { try model(try g.placeholder("ids", [2, 9], .int32)) }.contains("a sequence of 9 positions does not fit the context of 8"))
        #expect(message { try TextCorpus(text: "", source: "empty.txt") }.contains("empty.txt: the text is empty"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-text-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: bad)
        #expect(message { try TextCorpus.load(path: bad.path) }.contains("is not UTF-8 text"))
        #expect(message { try TextCorpus.encode(Array("héllo".unicodeScalars), characters: Array("helo".unicodeScalars), source: "--prompt") }
            .contains("character \"é\" (U+E9) at offset 1 is not in the model's vocabulary of 4"))
        let corpus = try Self.corpus()
        #expect(message { try TextCorpus(text: "tilde~", vocabulary: corpus.characters) }.contains("character \"~\" (U+7E) at offset 5"))
    }
}
