import KilnCompiler
import KilnGraph

/// The reference: runs a graph's unfused program on the host in `T` (Double for the oracle),
/// given a value for every input it reads: feeds, parameters, and state (zero if not given).
///
/// Every other execution path (fused programs, OpenCL) is tested against it.
public struct CPUReference<T: KilnFloat>: Sendable {
    public init() {}

    /// Evaluates `fetch`; `feeds` holds values for feeds and parameters alike.
    public func run(_ graph: Graph, feeds: [Tensor: HostTensor], fetch: [Tensor]) throws -> [HostTensor] {
        let realType: DType = T.self == Double.self ? .float64 : .float32
        let program = try Compiler.compile(graph, fetch: fetch, options: CompileOptions(fusion: false, realType: realType))
        let exe = try CPUExecutable<T>(program: program, blas: false)
        var runFeeds: [Tensor: HostTensor] = [:]
        for decl in program.buffers {
            guard let id = decl.node else { continue }
            let t = graph.tensor(id)
            switch decl.kind {
            case .feed:
                if let v = feeds[t] { runFeeds[t] = v }
            case .parameter:
                guard let v = feeds[t] else {
                    throw KilnError.invalidValue(op: "run", message: "no value given for parameter '\(t.node.label)' \(t.dtype) \(t.shape)")
                }
                try exe.write(t, v)
            case .state:
                if let v = feeds[t] { try exe.write(t, v) }
            default: break
            }
        }
        return try exe.run(feeds: runFeeds)
    }
}
