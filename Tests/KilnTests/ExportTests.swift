import Foundation
import Testing
import Kiln

/// `kiln export`: parameters alone, in Kiln's or PyTorch's layout; PyTorch loads the latter.
@Suite struct ExportTests {
    /// A checkpoint of a 6-5-3 MLP with seeded parameters and optimizer state.
    static func checkpoint(_ path: String) throws -> (ClassifierGraph, [Tensor: HostTensor]) {
        let model = try ClassifierGraph.mlp(batch: 4, sizes: [6, 5, 3])
        let values = try model.parameters.initialValues(seed: 5)
        var tensors: [String: HostTensor] = [:]
        for (t, v) in values { tensors[t.node.label] = v; tensors[t.node.label + ".v"] = v }
        try SafeTensorsFile(tensors: tensors, metadata: ["model": ModelSpec.mlp(sizes: [6, 5, 3]).json, "task": "fashion-mnist"]).write(to: path)
        return (model, values)
    }

    static func run(_ arguments: [String]) throws -> (Int32, String) {
        guard let kiln = kilnExecutable() else { return (-1, "") }
        return try runProgram(kiln, arguments)
    }

    @Test func pytorchLayoutLoadsIntoAnNNSequential() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (ckpt, kilnOut, torchOut) = (dir.appendingPathComponent("c.safetensors").path, dir.appendingPathComponent("k.safetensors").path,
                                         dir.appendingPathComponent("t.safetensors").path)
        let (model, values) = try Self.checkpoint(ckpt)
        #expect(try Self.run(["export", "--checkpoint", ckpt, "--out", kilnOut]).0 == 0)
        #expect(try SafeTensorsFile.read(path: kilnOut).tensors.keys.sorted() == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"])
        let (status, text) = try Self.run(["export", "--checkpoint", ckpt, "--out", torchOut, "--layout", "pytorch"])
        #expect(status == 0, "\(text)")
        let exported = try SafeTensorsFile.read(path: torchOut)
        #expect(exported.tensors.keys.sorted() == ["0.bias", "0.weight", "2.bias", "2.weight"])
        #expect(exported.tensors["0.weight"]?.shape == [5, 6])

        // Kiln's logits for a batch, and PyTorch's from the exported file, where PyTorch is installed.
        var rng = SeededGenerator(seed: 2)
        let x = try HostTensor(rng.uniform(24, in: -1...1).map(Float.init), shape: [4, 6])
        var feeds = values
        feeds[model.input] = x
        let logits = try CPUReference<Double>().run(model.graph, feeds: feeds, fetch: [model.logits])[0].doubles
        let script = """
            import sys, json, torch
            from torch import nn
            from safetensors.torch import load_file
            m = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
            m.load_state_dict(load_file(sys.argv[1]))
            x = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32).reshape(4, 6)
            print(json.dumps(m(x).detach().double().reshape(-1).tolist()))
            """
        let python = URL(fileURLWithPath: "/usr/bin/env")
        guard (try? runProgram(python, ["python3", "-c", "import torch, safetensors"]))?.status == 0 else {
            print("skipped: python3 with PyTorch and safetensors is not installed")
            return
        }
        let (status2, text2) = try runProgram(python, ["python3", "-c", script, torchOut, "\(x.doubles)"])
        guard status2 == 0 else {
            Issue.record("python: \(text2)")
            return
        }
        let torchLogits = try JSONDecoder().decode([Double].self, from: Data(text2.split(separator: "\n").last!.utf8))
        #expect(maxError(torchLogits, logits) < 1e-5, "\(torchLogits) vs \(logits)")
    }

    @Test func aCheckpointOfAnotherShapeIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = dir.appendingPathComponent("c.safetensors").path
        try SafeTensorsFile(tensors: ["fc1.weight": try HostTensor([Float](repeating: 0, count: 6), shape: [2, 3])],
                            metadata: ["model": ModelSpec.mlp(sizes: [6, 5, 3]).json]).write(to: ckpt)
        let (status, text) = try Self.run(["export", "--checkpoint", ckpt, "--out", dir.appendingPathComponent("o").path])
        #expect(status == 1)
        #expect(text.contains("parameter 'fc1.weight' is [2, 3] in the checkpoint, [6, 5] in the model"), "\(text)")
    }
}
