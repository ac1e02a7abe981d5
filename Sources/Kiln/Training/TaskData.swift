import Foundation

/// Labeled examples for a classifier: rows of float features, or rows of int32 ids.
public struct LabeledData: Sendable {
    public enum Rows: Sendable {
        case features([Float])
        /// Bytes scaled by 1/255 as each batch is made (images: a quarter of the memory of floats).
        case pixels([UInt8])
        case ids([Int32])
    }
    public let rows: Rows
    /// Values per row.
    public let width: Int
    public let labels: [Int32]
    public var count: Int { labels.count }

    public init(rows: Rows, width: Int, labels: [Int32]) {
        self.rows = rows
        self.width = width
        self.labels = labels
    }

    /// The rows at `indices`, as the model's input and labels.
    public func batch(_ indices: [Int]) throws -> (input: HostTensor, labels: HostTensor) {
        let shape: Shape = [indices.count, width]
        let input: HostTensor
        switch rows {
        case .features(let v):
            var out = [Float](repeating: 0, count: indices.count * width)
            out.withUnsafeMutableBufferPointer { o in
                v.withUnsafeBufferPointer { src in
                    for (r, i) in indices.enumerated() {
                        (o.baseAddress! + r * width).update(from: src.baseAddress! + i * width, count: width)
                    }
                }
            }
            input = try HostTensor(out, shape: shape)
        case .pixels(let v):
            var out = [Float](repeating: 0, count: indices.count * width)
            out.withUnsafeMutableBufferPointer { o in
                v.withUnsafeBufferPointer { src in
                    for (r, i) in indices.enumerated() {
                        let to = o.baseAddress! + r * width, from = src.baseAddress! + i * width
                        for c in 0..<width { to[c] = Float(from[c]) / 255 }   // as torchvision does
                    }
                }
            }
            input = try HostTensor(out, shape: shape)
        case .ids(let v):
            var out = [Int32](repeating: 0, count: indices.count * width)
            for (r, i) in indices.enumerated() { for c in 0..<width { out[r * width + c] = v[i * width + c] } }
            input = try HostTensor(out, shape: shape)
        }
        return (input, try HostTensor(indices.map { labels[$0] }, shape: [indices.count]))
    }
}

/// A task's data and model: Fashion-MNIST (or MNIST) with an MLP, or the lecture's NER task
/// with a word-window classifier.
public struct TaskData: Sendable {
    public let name: String
    public let train: LabeledData
    public let test: LabeledData
    public let spec: ModelSpec
    /// NER: the vocabulary, tags and test sentences (to score entity spans).
    public let vocabulary: Vocabulary?
    public let tags: TagSet?
    public let testSentences: [Sentence]
    /// Pre-trained values for parameters, by name (GloVe vectors for the embedding).
    public let pretrained: [String: HostTensor]

    public init(name: String, train: LabeledData, test: LabeledData, spec: ModelSpec, vocabulary: Vocabulary? = nil,
                tags: TagSet? = nil, testSentences: [Sentence] = [], pretrained: [String: HostTensor] = [:]) {
        self.name = name
        self.train = train
        self.test = test
        self.spec = spec
        self.vocabulary = vocabulary
        self.tags = tags
        self.testSentences = testSentences
        self.pretrained = pretrained
    }

    /// Fashion-MNIST (or MNIST: the same file names) from an IDX directory.
    /// `cnn`: the convolutional network (`ModelSpec.cnn`) instead of the MLP; `hidden`'s first
    /// size is then its Linear layer's.
    public static func images(directory: String, hidden: [Int], activation: UnaryOp = .relu, cnn: Bool = false) throws -> TaskData {
        let train = try ImageDataset.load(directory: directory, split: .train)
        let test = try ImageDataset.load(directory: directory, split: .test)
        let classes = Int((train.labels.max() ?? 0) + 1)
        // The files' images are square (28 x 28 in MNIST's layout); rows of pixels feed both models.
        let side = Int(Double(train.features).squareRoot().rounded())
        if cnn && side * side != train.features {
            throw KilnError.invalidArgument(op: "--model cnn", message: "needs square images; \(directory) has \(train.features) pixels per image")
        }
        return TaskData(name: "fashion-mnist",
                        train: LabeledData(rows: .pixels(train.pixels), width: train.features, labels: train.labels),
                        test: LabeledData(rows: .pixels(test.pixels), width: test.features, labels: test.labels),
                        spec: cnn ? .cnn(channels: [1, 32, 64], image: [side, side], hidden: hidden.first ?? 128,
                                         classes: max(classes, ImageDataset.classCount))
                            : .mlp(sizes: [train.features] + hidden + [max(classes, ImageDataset.classCount)], activation: activation),
                        vocabulary: nil, tags: nil, testSentences: [], pretrained: [:])
    }

    /// The NER task from `train.txt` and `test.txt` (CoNLL format) in `directory`; with
    /// `vectors`, the embedding starts from GloVe vectors of dimension `dim`.
    public static func ner(directory: String, vectors: String?, dim: Int, hidden: Int, window: Int = 5,
                           seed: UInt64, vocabulary given: Vocabulary? = nil, tags givenTags: TagSet? = nil) throws -> TaskData {
        let trainSentences = try CoNLL.read(path: (directory as NSString).appendingPathComponent("train.txt"))
        let testSentences = try CoNLL.read(path: (directory as NSString).appendingPathComponent("test.txt"))
        let vocab = given ?? Vocabulary(sentences: trainSentences)
        let tags = givenTags ?? TagSet(sentences: trainSentences)
        let half = window / 2
        let train = try WordWindows(sentences: trainSentences, vocabulary: vocab, tags: tags, halfWidth: half)
        let test = try WordWindows(sentences: testSentences, vocabulary: vocab, tags: tags, halfWidth: half)
        var pretrained: [String: HostTensor] = [:]
        if let vectors {
            let (values, _) = try GloVe.embeddingMatrix(path: vectors, vocabulary: vocab, dim: dim, seed: seed)
            pretrained["words.table"] = try HostTensor(values, shape: [vocab.count, dim])
        }
        return TaskData(name: "ner",
                        train: LabeledData(rows: .ids(train.ids), width: train.width, labels: train.labels),
                        test: LabeledData(rows: .ids(test.ids), width: test.width, labels: test.labels),
                        spec: .wordWindow(vocabulary: vocab.count, dim: dim, window: train.width, hidden: hidden, classes: tags.count),
                        vocabulary: vocab, tags: tags, testSentences: testSentences, pretrained: pretrained)
    }
}
