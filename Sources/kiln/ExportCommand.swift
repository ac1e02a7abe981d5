import ArgumentParser
import Kiln

/// `kiln export`: a checkpoint's parameters alone, in Kiln's layout or PyTorch's.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's parameters (no optimizer state) as safetensors, in Kiln's or PyTorch's layout.",
        discussion: """
            --layout pytorch names and lays them out as torch.nn does (nn.Linear weights [out, in]): for the MLP, \
            nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)) loads \
            them with model.load_state_dict(safetensors.torch.load_file(path)).
            """
    )

    @Option(help: "Checkpoint file written by kiln train.")
    var checkpoint: String

    @Option(help: "The file to write.")
    var out: String

    @Option(help: "kiln or pytorch.")
    var layout: ParameterLayout = .kiln

    func run() throws {
        let file = try SafeTensorsFile.read(path: checkpoint)
        guard let modelJSON = file.metadata["model"] else {
            throw KilnError.file(path: checkpoint, message: "not a Kiln checkpoint (no model description in its metadata)")
        }
        let spec = try ModelSpec.from(json: modelJSON)
        let tensors: [String: HostTensor]
        do { tensors = try spec.exportParameters(file.tensors, layout: layout) } catch let e as KilnError {
            throw KilnError.file(path: checkpoint, message: "\(e)")
        }
        var metadata = ["format": "kiln-parameters", "layout": layout.rawValue, "model": modelJSON,
                        "parameters": try JSONText.string(tensors.keys.sorted())]
        if let task = file.metadata["task"] { metadata["task"] = task }
        try SafeTensorsFile(tensors: tensors, metadata: metadata).write(to: out)
        print("wrote \(tensors.count) parameters of the \(spec.summary) (\(layout.rawValue) layout) to \(out)")
    }
}

extension ParameterLayout: ExpressibleByArgument {}
