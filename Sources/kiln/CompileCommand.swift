import ArgumentParser
import Foundation
import Kiln

/// `kiln compile`: prints a task's compiled training step and memory plan; draws its graph.
struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Print the schedule and memory plan of a training step; --dot draws the graph.",
        discussion: "Tasks: fashion-mnist (784-<hidden>-10 MLP), ner (word-window classifier), charlm (the character-level GPT of `kiln train --task charlm`, AdamW with clipping), lecture (f = (x + y) * max(y, z)). No data is read."
    )

    enum Task: String, ExpressibleByArgument { case fashionMNIST = "fashion-mnist", ner, charlm, lecture }

    @Option(help: "fashion-mnist, ner, charlm or lecture.")
    var task: Task = .fashionMNIST

    @Option(name: .customLong("batch-size"), help: "Examples per step (default 128; charlm 32 windows).")
    var batchSize: Int?

    @OptionGroup var languageModel: LanguageModelFlags

    @Option(help: "fashion-mnist: mlp or cnn.")
    var model: ModelName = .mlp

    @Option(help: "Hidden layer sizes (default 256,128 for fashion-mnist, 128 for ner and the CNN).")
    var hidden: String?

    @Option(help: "NER: vocabulary size (default 20000); charlm: distinct characters (default 86).")
    var vocabulary: Int?
    @Option(help: "NER: word vector dimension.")
    var dim = 50
    @Option(help: "NER: classes.")
    var classes = 5

    @Option(help: "sgd, momentum, nesterov, adam or adamw.")
    var optimizer: OptimizerName = .momentum

    @Option(help: "The device the schedule is for: cpu or gpu (they differ in what fusion computes twice).")
    var device: DeviceKind = .gpu

    @Flag(name: .customLong("no-fusion"), help: "Compile without fusion.")
    var noFusion = false

    @Flag(name: .customLong("data-parallel"), help: "The step as data-parallel processes run it: gradients summed by all-reduce buckets before the update.")
    var dataParallel = false

    @Option(help: "Write the forward and backward graph as Graphviz DOT to this file.")
    var dot: String?

    func run() throws {
        let batchSize = self.batchSize ?? (task == .charlm ? 32 : 128)
        guard batchSize >= 1 else { throw KilnError.invalidArgument(op: "--batch-size", message: "must be at least 1, got \(batchSize)") }
        let graph: Graph, fetch: [Tensor]
        var values: [Int: Double] = [:]
        switch task {
        case .lecture:
            let e = try LectureExample()
            let grads = try e.graph.gradients(of: e.f, wrt: [e.x, e.y, e.z])
            graph = e.graph
            fetch = [e.f] + grads
            // Every node's value at x = 1, y = 2, z = 0, written into the drawing.
            let all = graph.nodes.map { graph.tensor($0.id) }
            for (t, v) in zip(all, try CPUReference<Double>().run(graph, feeds: e.values(), fetch: all)) { values[t.id] = v.scalarValue }
        case .charlm:
            (graph, fetch) = (Graph(), [])
        case .fashionMNIST, .ner:
            var options = TaskOptions()
            options.task = task == .ner ? .ner : .fashionMNIST
            options.hidden = hidden
            options.model = model
            let sizes = try options.hiddenSizes()
            let spec: ModelSpec = task == .ner
                ? .wordWindow(vocabulary: vocabulary ?? 20000, dim: dim, window: 5, hidden: sizes[0], classes: classes)
                : model == .cnn ? .cnn(hidden: sizes[0]) : .mlp(sizes: [784] + sizes + [10])
            let model = try spec.build(batch: batchSize)
            _ = try TrainingStep.appendStep(to: model, optimizer: optimizer.optimizer(), dataParallel: dataParallel)
            graph = model.graph
            fetch = [model.loss, model.accuracy]
            print("\(spec.summary), batch \(batchSize), optimizer \(optimizer.rawValue)")
        }
        if task == .charlm {
            // The step as `kiln train --task charlm` compiles it, for windows of the context.
            let config = languageModel.config(vocabulary: vocabulary ?? 86)
            let model = try TransformerLanguageModel(config)
            let optimizer = Optimizer.adamW(weightDecay: 0.1, decayGroup: .matrices, clipNorm: languageModel.clip > 0 ? languageModel.clip : nil)
            let step = try ModelStep(model: model, optimizer: optimizer, device: device, fusion: noFusion ? false : nil) { model, batch in
                try crossEntropy(model(batch["tokens"]), batch["targets"])
            }
            let ids = try HostTensor([Int32](repeating: 0, count: batchSize * config.context), shape: [batchSize, config.context])
            print("GPT: context \(config.context), width \(config.width), \(config.layers) layers, \(config.heads) heads, vocabulary \(config.vocabulary), batch \(batchSize), AdamW")
            print(try step.trainingProgram(for: ["tokens": ids, "targets": ids]).listing())
            return
        }
        let program = try Compiler.compile(graph, fetch: fetch, options: Devices.compileOptions(for: device, fusion: noFusion ? false : nil))
        print(program.listing())
        if let dot {
            do { try GraphDot.render(graph, values: values, title: task.rawValue).write(toFile: dot, atomically: true, encoding: .utf8) } catch {
                throw KilnError.file(path: dot, message: "cannot write: \(error.localizedDescription)")
            }
            print("Graph in \(dot) (render: dot -Tsvg \(dot) -o graph.svg)")
        }
    }
}
