import Foundation

/// Saving and loading a model's values as safetensors. Parameters are stored under their own
/// names (`fc1.weight`); optimizer state under `optimizer.` and the state's name
/// (`optimizer.fc1.weight.m`), so the two are told apart by name; the metadata lists the
/// parameters (`parameters`, a JSON array) and the optimizer's steps (`optimizer_steps`).
extension SafeTensorsFile {
    /// The prefix of optimizer-state tensor names in saved models and checkpoints.
    public static let optimizerPrefix = "optimizer."
}

extension ModelStep {
    /// Writes the parameters alone, or with `optimizerState` also the optimizer's state and
    /// step count (to resume training), atomically.
    /// `metadata` adds entries of the caller's own (a trainer's epoch).
    public func save(to path: String, optimizerState: Bool = false, metadata extra: [String: String] = [:]) throws {
        var tensors = try parameterValues()
        var metadata = extra.merging(["parameters": try JSONText.string(namedParameters.map(\.name)), "format": "kiln-model"]) { $1 }
        if optimizerState {
            for (name, v) in try self.optimizerState() { tensors[SafeTensorsFile.optimizerPrefix + name] = v }
            metadata["optimizer_steps"] = "\(steps)"
        }
        try SafeTensorsFile(tensors: tensors, metadata: metadata).write(to: path)
    }

    /// Reads a file `save` wrote: every parameter of the model, by name and shape (the error
    /// lists what is missing, extra or of another shape), and the optimizer's state and steps
    /// when the file holds them.
    /// Returns the file's metadata.
    @discardableResult
    public func load(from path: String) throws -> [String: String] {
        let file = try SafeTensorsFile.read(path: path)
        var parameters: [String: HostTensor] = [:], state: [String: HostTensor] = [:]
        for (name, v) in file.tensors {
            if name.hasPrefix(SafeTensorsFile.optimizerPrefix) { state[String(name.dropFirst(SafeTensorsFile.optimizerPrefix.count))] = v }
            else { parameters[name] = v }
        }
        var steps: Int?
        if let s = file.metadata["optimizer_steps"] {
            guard let n = Int(s), n >= 0 else {
                throw KilnError.file(path: path, message: "optimizer_steps '\(s)' is not a count")
            }
            steps = n
        }
        do {
            try restore(parameters: parameters, optimizerState: state, steps: steps)
        } catch let e as KilnError {
            throw KilnError.file(path: path, message: "\(e)")
        }
        return file.metadata
    }
}
