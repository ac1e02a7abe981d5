/// Checkpoints: what a safetensors checkpoint holds, and resuming from one.
extension Trainer {
    /// Parameters, optimizer state and where training stands, as a safetensors file.
    public func checkpoint() throws -> SafeTensorsFile {
        var metadata = ["format": "kiln-checkpoint-1", "model": task.spec.json, "task": task.name,
                        "epoch": "\(epoch)", "step": "\(step.steps)", "seed": "\(options.seed)",
                        "epoch_step": "\(epochStep)", "epoch_loss_sum": "\(epochLossSum)", "epoch_examples": "\(epochExamples)",
                        "optimizer": "\(options.optimizer.rule)", "batch_size": "\(options.batchSize)"]
        if let v = task.vocabulary { metadata["vocabulary"] = v.tokens.joined(separator: "\n") }
        if let t = task.tags { metadata["tags"] = t.tags.joined(separator: "\n") }
        // Optimizer state is told apart from parameters by name (as ModelStep.save writes it).
        var tensors = try step.parameterValues()
        for (name, v) in try step.optimizerState() { tensors[SafeTensorsFile.optimizerPrefix + name] = v }
        metadata["parameters"] = try JSONText.string(step.namedParameters.map(\.name))
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    /// Writes the checkpoint atomically (a temporary file renamed into place).
    public func saveCheckpoint(to path: String) throws {
        try checkpoint().write(to: path)
    }

    /// Continues from a checkpoint of the same model: parameters, optimizer state, step and
    /// epoch are restored, so the run follows the uninterrupted trajectory.
    public func resume(from path: String) throws {
        let file = try SafeTensorsFile.read(path: path)
        guard let modelJSON = file.metadata["model"] else {
            throw KilnError.file(path: path, message: "not a Kiln checkpoint (no model description in its metadata)")
        }
        let spec = try ModelSpec.from(json: modelJSON)
        guard spec == task.spec else {
            throw KilnError.file(path: path, message: "checkpoint is for another model (\(spec.summary)), not \(task.spec.summary)")
        }
        guard let e = file.metadata["epoch"].flatMap(Int.init), let s = file.metadata["step"].flatMap(Int.init) else {
            throw KilnError.file(path: path, message: "checkpoint metadata lacks its epoch and step")
        }
        // Earlier checkpoints named optimizer state without the prefix: both are read.
        let names = Set(step.namedParameters.map(\.name))
        var parameters: [String: HostTensor] = [:], state: [String: HostTensor] = [:]
        for (name, v) in file.tensors {
            if names.contains(name) { parameters[name] = v }
            else if name.hasPrefix(SafeTensorsFile.optimizerPrefix) { state[String(name.dropFirst(SafeTensorsFile.optimizerPrefix.count))] = v }
            else { state[name] = v }
        }
        do { try step.restore(parameters: parameters, optimizerState: state, steps: s) } catch let error as KilnError {
            throw KilnError.file(path: path, message: "\(error)")
        }
        epoch = e
        epochStep = file.metadata["epoch_step"].flatMap(Int.init) ?? 0
        epochLossSum = file.metadata["epoch_loss_sum"].flatMap(Double.init) ?? 0
        epochExamples = file.metadata["epoch_examples"].flatMap(Int.init) ?? 0
    }
}
