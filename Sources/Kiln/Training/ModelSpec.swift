import Foundation

/// What model a run trains: enough to rebuild its graph for any batch size, and to tell
/// whether a checkpoint belongs to it. Stored as JSON in checkpoints.
public struct ModelSpec: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case mlp
        case wordWindow = "word-window"
        /// Two convolution blocks (conv 3x3 padding 1, batch norm, ReLU, max-pool 2), then
        /// dropout, Linear, ReLU, dropout, Linear.
        case cnn
    }

    public var kind: Kind
    /// MLP layer sizes, input first.
    public var sizes: [Int] = []
    public var activation: String = "relu"
    /// Word-window classifier sizes.
    public var vocabulary = 0, dim = 0, window = 5, hidden = 0, classes = 0
    /// CNN: image channels then each convolution's (`[1, 32, 64]`), the image's height and width,
    /// the dropout probability (`hidden` and `classes` size the Linear layers). Absent in the
    /// checkpoints of other models.
    public var channels: [Int]?
    public var image: [Int]?
    public var dropout: Double?

    public static func mlp(sizes: [Int], activation: UnaryOp = .relu) -> ModelSpec {
        ModelSpec(kind: .mlp, sizes: sizes, activation: activation.rawValue)
    }

    public static func wordWindow(vocabulary: Int, dim: Int, window: Int, hidden: Int, classes: Int) -> ModelSpec {
        ModelSpec(kind: .wordWindow, vocabulary: vocabulary, dim: dim, window: window, hidden: hidden, classes: classes)
    }

    /// The CNN for `image` (height, width) with `channels[0]` channels, fed as flat rows.
    public static func cnn(channels: [Int] = [1, 32, 64], image: [Int] = [28, 28], hidden: Int = 128, classes: Int = 10,
                           dropout: Double = 0.25) -> ModelSpec {
        ModelSpec(kind: .cnn, hidden: hidden, classes: classes, channels: channels, image: image, dropout: dropout)
    }

    /// Float features per example (MLP and CNN).
    public var inputFeatures: Int {
        kind == .cnn ? (channels?.first ?? 1) * (image ?? [0, 0]).reduce(1, *) : (sizes.first ?? 0)
    }

    /// The model's graph for a batch size: a training step's (batch statistics, dropout), or
    /// with `training` false, evaluation's.
    public func build(batch: Int, training: Bool = true) throws -> ClassifierGraph {
        switch kind {
        case .mlp:
            guard let act = UnaryOp(rawValue: activation) else {
                throw KilnError.invalidArgument(op: "model", message: "unknown activation '\(activation)'")
            }
            return try .mlp(batch: batch, sizes: sizes, activation: act)
        case .wordWindow:
            return try .wordWindow(batch: batch, vocabulary: vocabulary, dim: dim, window: window, hidden: hidden, classes: classes)
        case .cnn:
            return try ClassifierGraph.build(ClassifierModel(self), batch: batch, training: training)
        }
    }

    /// A one-line description.
    public var summary: String {
        switch kind {
        case .mlp: return "MLP \(sizes.map(String.init).joined(separator: "-")) \(activation)"
        case .wordWindow: return "word-window classifier: vocabulary \(vocabulary), dim \(dim), window \(window), hidden \(hidden) tanh, \(classes) classes"
        case .cnn:
            let c = channels ?? []
            return "CNN \(c.map(String.init).joined(separator: "->")) conv 3x3-BN-ReLU-maxpool 2, dropout \(dropout ?? 0), Linear \(hidden), \(classes) classes"
        }
    }

    /// The spec as checkpoints store it, every field by its Codable name, so that
    /// `from(json:)` reads it back.
    public var json: String {
        var object: [String: Any] = ["kind": kind.rawValue, "sizes": sizes, "activation": activation, "vocabulary": vocabulary,
                                     "dim": dim, "window": window, "hidden": hidden, "classes": classes]
        if let channels { object["channels"] = channels }
        if let image { object["image"] = image }
        if let dropout { object["dropout"] = dropout }
        // Strings, integers and a probability, which JSONSerialization writes.
        return (try? JSONText.string(object)) ?? "{}"
    }

    public static func from(json: String) throws -> ModelSpec {
        do { return try JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)) } catch {
            throw KilnError.invalidValue(op: "checkpoint", message: "its model description is not valid: \(error)")
        }
    }
}
