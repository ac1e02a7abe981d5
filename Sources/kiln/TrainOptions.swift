import ArgumentParser
import Foundation
import Kiln

enum TaskName: String, ExpressibleByArgument, CaseIterable {
    case fashionMNIST = "fashion-mnist"
    case ner
    /// A character-level GPT, trained by steps (`kiln train --task charlm`).
    case charlm
}

/// The options that define a task's data and model, shared by train, eval, compile and bench.
struct TaskOptions: ParsableArguments {
    init() {}
    @Option(help: "The task: fashion-mnist (an MLP on Fashion-MNIST or MNIST), ner (the word-window classifier) or charlm (a character-level GPT).")
    var task: TaskName = .fashionMNIST

    @Option(help: "Data directory (default: \(ImageDataset.defaultFashionMNISTDirectory) for fashion-mnist, data/ner-sample for ner); for charlm a UTF-8 text file or a directory of them (default: \(TextCorpus.defaultDirectory)).")
    var data: String?

    @Option(help: "fashion-mnist: mlp, or cnn (two conv 3x3-batch norm-ReLU-maxpool blocks of 32 and 64 channels, dropout 0.25, Linear 128); ner: mlp (the word-window classifier) or transformer (whole sentences: --width, --layers, --heads).")
    var model: ModelName = .mlp

    @Option(help: "Hidden layer sizes, comma-separated (default: 256,128 for fashion-mnist, 128 for ner and the CNN).")
    var hidden: String?

    @Option(help: "NER: word vector dimension.")
    var dim = 50

    @Option(help: "NER: GloVe text-format vectors to start the embedding from.")
    var vectors: String?

    var dataDirectory: String {
        switch task {
        case .ner: data ?? "data/ner-sample"
        case .charlm: data ?? TextCorpus.defaultDirectory
        case .fashionMNIST: data ?? ImageDataset.defaultFashionMNISTDirectory
        }
    }

    func hiddenSizes() throws -> [Int] {
        let text = hidden ?? (task == .ner || model == .cnn ? "128" : "256,128")
        let sizes = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw KilnError.invalidArgument(op: "--hidden", message: "'\(text)' is not a comma-separated list of positive sizes")
        }
        if (task == .ner || model == .cnn) && sizes.count != 1 {
            throw KilnError.invalidArgument(op: "--hidden", message: "the word-window classifier has one hidden layer; got '\(text)'")
        }
        return sizes.map { $0! }
    }

    func load(seed: UInt64, vocabulary: Vocabulary? = nil, tags: TagSet? = nil) throws -> TaskData {
        guard dim > 0 else { throw KilnError.invalidArgument(op: "--dim", message: "must be positive, got \(dim)") }
        switch task {
        case .fashionMNIST:
            guard model != .transformer else { throw KilnError.invalidArgument(op: "--model", message: "transformer is for --task ner; fashion-mnist has mlp and cnn") }
            return try .images(directory: dataDirectory, hidden: hiddenSizes(), cnn: model == .cnn)
        case .charlm:
            throw KilnError.invalidArgument(op: "--task", message: "charlm is trained by steps and has no epochs or test set: use `kiln train --task charlm` and `kiln bench step --task charlm`")
        case .ner:
            guard model == .mlp else { throw KilnError.invalidArgument(op: "--model", message: "ner's \(model.rawValue) model is trained by `kiln train --task ner --model transformer`; here ner has the word-window model (mlp)") }
            return try .ner(directory: dataDirectory, vectors: vectors, dim: dim, hidden: hiddenSizes()[0],
                                   seed: seed, vocabulary: vocabulary, tags: tags)
        }
    }
}

enum ModelName: String, ExpressibleByArgument, CaseIterable {
    case mlp, cnn
    /// ner: a transformer tagging whole sentences.
    case transformer
}

enum OptimizerName: String, ExpressibleByArgument, CaseIterable {
    case sgd, momentum, nesterov, adam, adamw

    /// The optimizer this name stands for (AdamW's decay defaults to 0.01 when none is given).
    func optimizer(momentum: Double = 0.9, weightDecay: Double = 0) -> Optimizer {
        switch self {
        case .sgd: return Optimizer(.sgd, weightDecay: weightDecay)
        case .momentum: return Optimizer(.momentum(momentum), weightDecay: weightDecay)
        case .nesterov: return Optimizer(.nesterov(momentum), weightDecay: weightDecay)
        case .adam: return .adam(weightDecay: weightDecay)
        case .adamw: return .adamW(weightDecay: weightDecay == 0 ? 0.01 : weightDecay)
        }
    }
}

enum ScheduleName: String, ExpressibleByArgument, CaseIterable {
    case constant, step, cosine
}

extension DeviceKind: ExpressibleByArgument {}
