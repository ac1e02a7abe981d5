import Foundation

/// What model a run trains: enough to rebuild its graph for any batch size, and to tell
/// whether a checkpoint belongs to it. Stored as JSON in checkpoints.
public struct ModelSpec: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case mlp
        case wordWindow = "word-window"
    }

    public var kind: Kind
    /// MLP layer sizes, input first.
    public var sizes: [Int] = []
    public var activation: String = "relu"
    /// Word-window classifier sizes.
    public var vocabulary = 0, dim = 0, window = 5, hidden = 0, classes = 0

    public static func mlp(sizes: [Int], activation: UnaryOp = .relu) -> ModelSpec {
        ModelSpec(kind: .mlp, sizes: sizes, activation: activation.rawValue)
    }

    public static func wordWindow(vocabulary: Int, dim: Int, window: Int, hidden: Int, classes: Int) -> ModelSpec {
        ModelSpec(kind: .wordWindow, vocabulary: vocabulary, dim: dim, window: window, hidden: hidden, classes: classes)
    }

    /// The model's graph for a batch size.
    public func build(batch: Int) throws -> ClassifierGraph {
        switch kind {
        case .mlp:
            guard let act = UnaryOp(rawValue: activation) else {
                throw KilnError.invalidArgument(op: "model", message: "unknown activation '\(activation)'")
            }
            return try .mlp(batch: batch, sizes: sizes, activation: act)
        case .wordWindow:
            return try .wordWindow(batch: batch, vocabulary: vocabulary, dim: dim, window: window, hidden: hidden, classes: classes)
        }
    }

    /// A one-line description.
    public var summary: String {
        switch kind {
        case .mlp: return "MLP \(sizes.map(String.init).joined(separator: "-")) \(activation)"
        case .wordWindow: return "word-window classifier: vocabulary \(vocabulary), dim \(dim), window \(window), hidden \(hidden) tanh, \(classes) classes"
        }
    }

    /// The spec as checkpoints store it, every field by its Codable name, so that
    /// `from(json:)` reads it back.
    public var json: String {
        let object: [String: Any] = ["kind": kind.rawValue, "sizes": sizes, "activation": activation, "vocabulary": vocabulary,
                                     "dim": dim, "window": window, "hidden": hidden, "classes": classes]
        // Strings and integers only, which JSONSerialization always writes.
        return (try? JSONText.string(object)) ?? "{}"
    }

    public static func from(json: String) throws -> ModelSpec {
        do { return try JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)) } catch {
            throw KilnError.invalidValue(op: "checkpoint", message: "its model description is not valid: \(error)")
        }
    }
}
