import KilnGraph

/// Compiles a graph (forward, backward and update nodes alike) into a `Program`.
public enum Compiler {
    /// Compiles what `fetch` and the graph's updates need into a schedule of kernels and a
    /// memory plan.
    public static func compile(_ graph: Graph, fetch: [Tensor], options: CompileOptions = CompileOptions()) throws -> Program {
        for t in fetch where t.graph !== graph {
            throw KilnError.invalidArgument(op: "compile", message: "fetched tensor \(t) belongs to another graph")
        }
        let updates = options.updates ? graph.updates : []
        let knobs = try options.resolved()
        var fusion = Fusion(graph: graph, roots: fetch.map(\.id) + updates.map(\.value.id),
                            external: Set(fetch.map(\.id) + updates.map(\.value.id)), updates: updates, enabled: knobs.fusion,
                            recompute: options.recompute)
        fusion.run()
        let realType = try options.realType ?? floatType(graph, fusion.needed)
        var kernels = fusion.kernels()
        kernels.sort { $0.root < $1.root }
        let buckets = AllReduceBuckets.place(in: &kernels, fusion: fusion, realSize: realType.byteSize,
                                             capacity: knobs.bucketBytes)
        var planner = MemoryPlanner(graph: graph, fusion: fusion, kernels: kernels, fetch: fetch.map(\.id),
                                    realType: realType, updates: updates, buckets: buckets, inPlace: options.inPlace)
        return try planner.plan()
    }

    static func floatType(_ graph: Graph, _ needed: [Bool]) throws -> DType {
        let types = Set(graph.nodes.filter { needed[$0.id] && $0.dtype.isFloatingPoint }.map(\.dtype))
        guard types.count <= 1 else {
            throw KilnError.invalidArgument(op: "compile", message: "the graph mixes \(types.map(\.rawValue).sorted()); a program computes in one float type")
        }
        return types.first ?? .float32
    }
}

/// A kernel before memory planning: it names graph nodes rather than buffer locations.
struct PendingKernel {
    var kind: Kernel.Kind
    /// The node whose value each input index reads.
    var inputs: [Int]
    /// The node whose value each output holds.
    var outputs: [Int]
    var nodes: [Int]
    /// The latest node computed: kernels run in the order of their roots.
    var root: Int
    /// Inputs read as strided views: input index to the transpose node viewed (`Fusion.matmulViews`).
    var views: [Int: Int] = [:]
}
