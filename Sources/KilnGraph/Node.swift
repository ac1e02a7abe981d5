/// Whether a node belongs to the forward pass or was appended by autodiff.
public enum Role: String, Sendable, Hashable {
    case forward, backward
}

/// One operation in a graph. Nodes are appended in a topological order: every input of a
/// node has a smaller id.
public struct Node: Sendable, Hashable {
    public let id: Int
    public let op: Op
    public let inputs: [Int]
    public let shape: Shape
    public let dtype: DType
    /// The user's name for inputs and parameters; optional elsewhere.
    public let name: String?
    public let role: Role

    /// `name` when given, else `op#id`: how messages refer to the node.
    public var label: String { name ?? "\(op.name)#\(id)" }
}
