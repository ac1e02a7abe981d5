/// Examples a model trains or is evaluated on: a batch of them is a set of named feeds
/// (features, ids, targets, masks) of any dtype, each with the batch as its first dimension.
public protocol Dataset: Sendable {
    /// The number of examples.
    var count: Int { get }
    /// The examples at `indices`, as named feeds whose first dimension is `indices.count`.
    func batch(_ indices: [Int]) throws -> [String: HostTensor]
}

/// A dataset held in memory: named tensors whose first dimension counts the examples.
public struct TensorDataset: Dataset {
    public let tensors: [String: HostTensor]
    public let count: Int

    /// Every tensor must have the same first dimension (the number of examples).
    public init(_ tensors: [String: HostTensor]) throws {
        guard let first = tensors.values.first else {
            throw KilnError.invalidArgument(op: "TensorDataset", message: "needs at least one named tensor")
        }
        let counts = tensors.mapValues { $0.shape.rank > 0 ? $0.shape[0] : -1 }
        guard counts.values.allSatisfy({ $0 == counts.values.first! && $0 >= 0 }) else {
            throw KilnError.shapeMismatch(op: "TensorDataset", message: "every tensor's first dimension must count the examples: \(tensors.keys.sorted().map { "\($0) \(tensors[$0]!.shape)" }.joined(separator: ", "))")
        }
        self.tensors = tensors
        count = first.shape[0]
    }

    public func batch(_ indices: [Int]) throws -> [String: HostTensor] {
        try tensors.mapValues { t in
            let row = t.shape.count / max(t.shape[0], 1)
            let shape = Shape([indices.count] + t.shape.dims.dropFirst())
            for i in indices where !(0..<count).contains(i) {
                throw KilnError.invalidArgument(op: "TensorDataset", message: "example \(i) is outside [0, \(count))")
            }
            func pick<T>(_ v: [T]) -> [T] {
                var out: [T] = []
                out.reserveCapacity(indices.count * row)
                for i in indices { out += v[i * row..<(i + 1) * row] }
                return out
            }
            switch t.storage {
            case .float32(let v): return try HostTensor(pick(v), shape: shape)
            case .float64(let v): return try HostTensor(pick(v), shape: shape)
            case .int32(let v): return try HostTensor(pick(v), shape: shape)
            }
        }
    }
}
