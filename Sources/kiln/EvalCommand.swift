import ArgumentParser
import Foundation
import Kiln

/// `kiln eval`: evaluates a checkpoint on its task's test set.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluate a saved model on the test set.")

    @Option(help: "Checkpoint file written by kiln train.")
    var checkpoint: String

    @Option(help: "Data directory (default: the task's).")
    var data: String?

    @Option(help: "cpu or gpu.")
    var device: DeviceKind = .gpu

    @Option(name: .customLong("batch-size"), help: "Examples per evaluation batch.")
    var batchSize = 256

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func run() throws {
        let file = try SafeTensorsFile.read(path: checkpoint)
        guard let modelJSON = file.metadata["model"], let taskName = file.metadata["task"].flatMap(TaskName.init(rawValue:)) else {
            throw KilnError.file(path: checkpoint, message: "not a Kiln checkpoint (its metadata names no task and model)")
        }
        let spec = try ModelSpec.from(json: modelJSON)
        var taskOptions = try TaskOptions.parse([])
        taskOptions.task = taskName
        taskOptions.data = data
        var vocabulary: Vocabulary?, tags: TagSet?
        switch spec.kind {
        case .mlp: taskOptions.hidden = spec.sizes.dropFirst().dropLast().map(String.init).joined(separator: ",")
        case .cnn:
            taskOptions.model = .cnn
            taskOptions.hidden = "\(spec.hidden)"
        case .wordWindow:
            taskOptions.hidden = "\(spec.hidden)"
            taskOptions.dim = spec.dim
            (vocabulary, tags) = try CheckpointInfo.nerVocabulary(path: checkpoint)
        }
        let task = try taskOptions.load(seed: 0, vocabulary: vocabulary, tags: tags)
        var options = TrainingOptions()
        options.device = device
        options.batchSize = batchSize
        let trainer = try Trainer(task: task, options: options)
        try trainer.resume(from: checkpoint)
        let result = try trainer.evaluate()
        if json {
            var object: [String: Any] = ["checkpoint": checkpoint, "task": task.name, "epoch": trainer.epoch,
                                         "test_loss": result.loss, "test_accuracy": result.accuracy, "examples": task.test.count]
            if let ner = result.ner {
                object["f1"] = ner.overall.f1
                object["precision"] = ner.overall.precision
                object["recall"] = ner.overall.recall
            }
            print(try JSONText.string(object))
            return
        }
        print("\(checkpoint): \(spec.summary), after epoch \(trainer.epoch)")
        print(String(format: "test loss %.4f  test accuracy %.4f on %d examples", result.loss, result.accuracy, task.test.count))
        if let ner = result.ner {
            print(String(format: "entity F1 %.4f (precision %.4f, recall %.4f)", ner.overall.f1, ner.overall.precision, ner.overall.recall))
            printNER(ner)
        }
    }
}
