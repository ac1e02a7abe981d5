/// The named inputs of one compiled program, as a model's code sees them: one placeholder per
/// feed, of the shape and dtype of the values fed. `batch["x"]` is the placeholder `x`.
public struct Batch {
    public let graph: Graph
    public let inputs: [String: Tensor]

    /// Placeholders for feeds of these shapes and dtypes, in a new graph.
    init(signature: FeedSignature) throws {
        let g = Graph()
        var inputs: [String: Tensor] = [:]
        for f in signature.feeds { inputs[f.name] = try g.placeholder(f.name, f.shape, f.dtype) }
        graph = g
        self.inputs = inputs
    }

    /// The placeholder named `name`, or an error listing the names fed.
    public subscript(name: String) -> Tensor {
        get throws {
            guard let t = inputs[name] else {
                throw KilnError.invalidArgument(op: "batch", message: "no input named '\(name)'; the feeds are \(inputs.keys.sorted())")
            }
            return t
        }
    }

    /// The batch size: the first dimension every input shares.
    public var size: Int { inputs.values.first.map { $0.shape.rank > 0 ? $0.shape[0] : 1 } ?? 0 }
}

/// The names, shapes and dtypes of a run's feeds: programs are compiled once per signature.
struct FeedSignature: Hashable {
    struct Feed: Hashable {
        let name: String
        let shape: Shape
        let dtype: DType
    }
    let feeds: [Feed]

    init(_ values: [String: HostTensor]) {
        feeds = values.keys.sorted().map { Feed(name: $0, shape: values[$0]!.shape, dtype: values[$0]!.dtype) }
    }

    var description: String { feeds.map { "\($0.name): \($0.dtype) \($0.shape)" }.joined(separator: ", ") }
}
