import KilnGraph

extension Program {
    /// A readable listing: each kernel with the nodes it computes and its inputs and outputs
    /// (name, shape, bytes, where they live), then the buffers and the memory plan.
    public func listing() -> String {
        let realSize = realType.byteSize
        func bytes(_ o: Operand) -> Int { o.shape.count * (o.dtype == .int32 ? 4 : realSize) }
        func describe(_ o: Operand) -> String {
            let where_ = o.location.buffer == 0 ? "arena+\(o.location.byteOffset)" : buffers[o.location.buffer].name
            let view = o.strides.map { " (read in place with strides \($0))" } ?? ""
            return "\(graph.nodes[o.node].label) \(o.dtype) \(o.shape) \(formatBytes(bytes(o))) @\(where_)\(view)"
        }
        var lines = ["Schedule: \(kernels.count) kernels, \(realType), fusion \(fused ? "on" : "off")"]
        for k in kernels {
            let ops = k.nodes.map { graph.nodes[$0].op.name }
            lines.append("\(k.name)  [\(ops.joined(separator: ", "))]")
            for i in k.inputs { lines.append("    in  \(describe(i))") }
            for o in k.outputs { lines.append("    out \(describe(o))") }
        }
        lines.append("Buffers:")
        for b in buffers { lines.append("    \(b.kind.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(b.name) \(formatBytes(b.bytes))") }
        lines.append("Memory plan: arena \(formatBytes(memory.arenaBytes)) for \(formatBytes(memory.transientBytes)) of transient tensors"
            + " (liveness lower bound \(formatBytes(memory.liveLowerBound))); persistent \(formatBytes(memory.persistentBytes))")
        return lines.joined(separator: "\n")
    }
}

/// Bytes in B, KiB or MiB with one decimal.
public func formatBytes(_ b: Int) -> String {
    if b < 1024 { return "\(b) B" }
    if b < 1 << 20 { return "\((Double(b) / 1024 * 10).rounded() / 10) KiB" }
    return "\((Double(b) / 1048576 * 10).rounded() / 10) MiB"
}
