import ArgumentParser
import Foundation
import Kiln

/// `kiln predict`: a saved model's predictions. Fashion-MNIST: the class of test images
/// (`--index`) or of the images in IDX files; NER: a tag for every token of sentences given as
/// arguments or read from standard input, one per line.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict with a saved model: Fashion-MNIST classes of images, or NER tags of sentences.",
        discussion: """
            kiln predict --checkpoint fmnist.safetensors --index 0 1 2        classes of test images
            kiln predict --checkpoint fmnist.safetensors images-idx3-ubyte.gz  classes of every image in an IDX file
            kiln predict --checkpoint ner.safetensors "EU rejects German call"  each token with its tag
            echo "Peter Blackburn" | kiln predict --checkpoint ner.safetensors
            """
    )

    /// Fashion-MNIST's class names, by label.
    static let fashionClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    @Option(help: "Checkpoint file written by kiln train.")
    var checkpoint: String

    @Option(help: "cpu or gpu.")
    var device: DeviceKind = .gpu

    @Option(parsing: .upToNextOption, help: "Fashion-MNIST: indices of test-set images.")
    var index: [Int] = []

    @Option(help: "Fashion-MNIST: the data directory whose test set --index reads (default: the Debian package's).")
    var data: String?

    @Argument(help: "Fashion-MNIST: IDX image files; NER: sentences (default: standard input, one per line).")
    var inputs: [String] = []

    func run() throws {
        let file = try SafeTensorsFile.read(path: checkpoint)
        guard let modelJSON = file.metadata["model"] else {
            throw KilnError.file(path: checkpoint, message: "not a Kiln checkpoint (no model description in its metadata)")
        }
        let spec = try ModelSpec.from(json: modelJSON)
        switch spec.kind {
        case .mlp, .cnn: try predictImages(spec, file)
        case .wordWindow: try predictTags(spec, file)
        }
    }

    /// The logits of `rows` inputs (features or id windows) from the checkpoint's parameters.
    func logits(_ spec: ModelSpec, _ file: SafeTensorsFile, input: HostTensor) throws -> [[Double]] {
        let model = try spec.build(batch: input.shape[0], training: false)
        let exe = try Devices.load(model.graph, fetch: [model.logits], on: device)
        for t in model.parameters.tensors {
            guard let v = file.tensors[t.node.label] else {
                throw KilnError.file(path: checkpoint, message: "the checkpoint has no parameter '\(t.node.label)'")
            }
            do { try exe.write(t, v) } catch let e as KilnError { throw KilnError.file(path: checkpoint, message: "\(e)") }
        }
        // Running statistics (batch norm), saved with the optimizer's state.
        for t in model.graph.inputs(.state) {
            guard let v = file.tensors[SafeTensorsFile.optimizerPrefix + t.node.label] else {
                throw KilnError.file(path: checkpoint, message: "the checkpoint has no state '\(t.node.label)' (batch norm's running statistics are saved with the optimizer's state)")
            }
            do { try exe.write(t, v) } catch let e as KilnError { throw KilnError.file(path: checkpoint, message: "\(e)") }
        }
        let out = try exe.run(feeds: [model.input: input])[0].doubles
        let classes = model.logits.shape[1]
        return (0..<input.shape[0]).map { Array(out[$0 * classes..<($0 + 1) * classes]) }
    }

    /// The most likely class and its softmax probability.
    static func best(_ row: [Double]) -> (Int, Double) {
        let m = row.max()!, total = row.reduce(0) { $0 + exp($1 - m) }
        let i = row.firstIndex(of: m)!
        return (i, 1 / total)
    }

    func predictImages(_ spec: ModelSpec, _ file: SafeTensorsFile) throws {
        let features = spec.inputFeatures
        var names: [String] = [], pixels: [Float] = []
        if !index.isEmpty {
            let test = try ImageDataset.load(directory: data ?? ImageDataset.defaultFashionMNISTDirectory, split: .test)
            for i in index {
                guard (0..<test.count).contains(i) else {
                    throw KilnError.invalidArgument(op: "--index", message: "\(i) is outside the test set's [0, \(test.count))")
                }
                names.append("test image \(i) (label \(Self.fashionClasses[Int(test.labels[i])]))")
                pixels += test.pixels[i * features..<(i + 1) * features].map { Float($0) / 255 }
            }
        }
        for path in inputs {
            let idx = try IDXFile.read(path: path)
            guard idx.dims.count == 3, idx.dims[1] * idx.dims[2] == features else {
                throw KilnError.file(path: path, message: "IDX: expected images [count, rows, cols] of \(features) pixels, found \(idx.dims)")
            }
            names += (0..<idx.dims[0]).map { "\(path) image \($0)" }
            pixels += idx.bytes.map { Float($0) / 255 }
        }
        guard !names.isEmpty else {
            throw ValidationError("give test-set images with --index or IDX image files as arguments")
        }
        let rows = try logits(spec, file, input: HostTensor(pixels, shape: [names.count, features]))
        for (name, row) in zip(names, rows) {
            let (c, p) = Self.best(row)
            let label = c < Self.fashionClasses.count ? Self.fashionClasses[c] : "class \(c)"
            print("\(name): \(label) (\(String(format: "%.3f", p)))")
        }
    }

    func predictTags(_ spec: ModelSpec, _ file: SafeTensorsFile) throws {
        let (vocabulary, tags) = try CheckpointInfo.nerVocabulary(path: checkpoint)
        var lines = inputs
        if lines.isEmpty { while let line = readLine() { lines.append(line) } }
        let sentences = lines.map { $0.split(whereSeparator: \.isWhitespace).map(String.init) }.filter { !$0.isEmpty }
        guard !sentences.isEmpty else { throw ValidationError("give sentences as arguments or on standard input") }
        let windows = try WordWindows(sentences: sentences.map { Sentence(tokens: $0, tags: $0.map { _ in TagSet.outside }) },
                                      vocabulary: vocabulary, tags: tags, halfWidth: spec.window / 2)
        let rows = try logits(spec, file, input: HostTensor(windows.ids, shape: [windows.count, windows.width]))
        var next = 0
        for tokens in sentences {
            let tagged = tokens.map { token -> String in
                defer { next += 1 }
                return "\(token)/\(tags.tags[Self.best(rows[next]).0])"
            }
            print(tagged.joined(separator: " "))
        }
    }
}
