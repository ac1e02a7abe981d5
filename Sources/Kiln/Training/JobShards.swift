/// What every data-parallel loop does with its job: split items, and copy rank 0's values.
extension MPICollective {
    /// The part of `count` items (a global batch, the test set) that this process takes:
    /// contiguous and as even as can be.
    public func shard(_ count: Int) -> Range<Int> {
        count * rank / size..<count * (rank + 1) / size
    }

    /// Rank 0's value of `t`, in every process.
    public func broadcast(_ t: HostTensor) throws -> HostTensor {
        func send<T>(_ values: [T]) throws -> [T] {
            var v = values
            try v.withUnsafeMutableBytes { if let p = $0.baseAddress { try broadcast(p, bytes: $0.count) } }
            return v
        }
        switch t.storage {
        case .float32(let v): return try HostTensor(send(v), shape: t.shape)
        case .float64(let v): return try HostTensor(send(v), shape: t.shape)
        case .int32(let v): return try HostTensor(send(v), shape: t.shape)
        }
    }
}

extension Optional where Wrapped == MPICollective {
    /// This process's part of `count` items: all of them without a job.
    func shard(_ count: Int) -> Range<Int> { map { $0.shard(count) } ?? 0..<count }
}
