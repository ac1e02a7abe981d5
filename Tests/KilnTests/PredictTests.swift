import Foundation
import Testing
import Kiln

/// `kiln predict` tags sentences and classifies images with a checkpoint's parameters, as the
/// oracle computes them.
@Suite struct PredictTests {
    static func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-predict-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func tagsSentencesAsTheOracle() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocabulary = Vocabulary(words: ["<pad>", "<unk>", "eu", "rejects", "german", "call"])
        let tags = TagSet(tags: ["O", "B-ORG", "B-MISC", "I-ORG"])
        let spec = ModelSpec.wordWindow(vocabulary: vocabulary.count, dim: 4, window: 5, hidden: 6, classes: tags.tags.count)
        let model = try spec.build(batch: 5)
        let values = try model.parameters.initialValues(seed: 11)
        let ckpt = dir.appendingPathComponent("n.safetensors").path
        try SafeTensorsFile(tensors: Dictionary(uniqueKeysWithValues: values.map { ($0.key.node.label, $0.value) }),
                            metadata: ["model": spec.json, "task": "ner", "vocabulary": vocabulary.tokens.joined(separator: "\n"),
                                       "tags": tags.tags.joined(separator: "\n")]).write(to: ckpt)
        let sentence = ["EU", "rejects", "German", "call", "Zzyzx"]
        let windows = try WordWindows(sentences: [Sentence(tokens: sentence, tags: sentence.map { _ in "O" })], vocabulary: vocabulary, tags: tags)
        var feeds = values
        feeds[model.input] = try HostTensor(windows.ids, shape: [5, 5])
        let logits = try CPUReference<Double>().run(model.graph, feeds: feeds, fetch: [model.logits])[0].doubles
        let expected = (0..<5).map { r -> String in
            let row = Array(logits[r * 4..<r * 4 + 4])
            return "\(sentence[r])/\(tags.tags[row.firstIndex(of: row.max()!)!])"
        }.joined(separator: " ")
        let (status, text) = try ExportTests.run(["predict", "--checkpoint", ckpt, "--device", "cpu", sentence.joined(separator: " ")])
        #expect(status == 0, "\(text)")
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
    }

    @Test func classifiesTheImagesOfAnIDXFile() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = ModelSpec.mlp(sizes: [4, 3, 10])
        let model = try spec.build(batch: 2)
        let values = try model.parameters.initialValues(seed: 3)
        let ckpt = dir.appendingPathComponent("f.safetensors").path
        try SafeTensorsFile(tensors: Dictionary(uniqueKeysWithValues: values.map { ($0.key.node.label, $0.value) }),
                            metadata: ["model": spec.json, "task": "fashion-mnist"]).write(to: ckpt)
        // Two 2x2 images: an IDX header (magic 0x00000803, three big-endian dimensions), then pixels.
        let pixels: [UInt8] = [0, 255, 17, 90, 200, 3, 128, 64]
        let idx = dir.appendingPathComponent("images-idx3-ubyte").path
        try Data([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2] + pixels).write(to: URL(fileURLWithPath: idx))
        var feeds = values
        feeds[model.input] = try HostTensor(pixels.map { Float($0) / 255 }, shape: [2, 4])
        let logits = try CPUReference<Double>().run(model.graph, feeds: feeds, fetch: [model.logits])[0].doubles
        let (status, text) = try ExportTests.run(["predict", "--checkpoint", ckpt, "--device", "cpu", idx])
        #expect(status == 0, "\(text)")
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        let names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        for (r, line) in lines.enumerated() {
            let row = Array(logits[r * 10..<r * 10 + 10])
            #expect(line.hasPrefix("\(idx) image \(r): \(names[row.firstIndex(of: row.max()!)!]) ("), "\(line)")
        }
    }
}
