import Testing
import Kiln

/// Finite-difference checks in Double of every op's gradient rule: loss = sum(op(inputs) * r)
/// for a fixed random r, so every output element's gradient is exercised.
@Suite struct GradientCheckTests {
    static let tolerance = 1e-6

    /// Builds `op` on float64 placeholders of `shapes` filled from `range`, and checks the
    /// gradient with respect to every input.
    func check(_ shapes: [Shape], range: ClosedRange<Double> = -1...1, seed: UInt64 = 1,
               extra: [Tensor: HostTensor] = [:], graph: Graph = Graph(),
               _ op: (Graph, [Tensor]) throws -> Tensor) throws {
        var rng = SeededGenerator(seed: seed)
        let ins = try shapes.enumerated().map { try graph.placeholder("in\($0.offset)", $0.element, .float64) }
        var values = extra
        for t in ins { values[t] = try HostTensor(rng.uniform(t.shape.count, in: range), shape: t.shape) }
        let out = try op(graph, ins)
        let r = try graph.placeholder("r", out.shape, .float64)
        values[r] = try HostTensor(rng.uniform(out.shape.count, in: -1...1), shape: out.shape)
        let loss = try (out * r).sum()
        for result in try GradientCheck.run(graph, loss: loss, wrt: ins, values: values) {
            #expect(result.maxRelativeError < Self.tolerance, "\(result.name): \(result.maxRelativeError)")
        }
    }

    @Test(arguments: UnaryOp.allCases)
    func unary(_ op: UnaryOp) throws {
        switch op {
        case .log, .sqrt: try check([[3, 4]], range: 0.5...2) { g, x in try g.unary(op, x[0]) }
        // Away from relu's kink at 0, where finite differences are meaningless.
        case .relu:
            let graph = Graph()
            let signs = try graph.placeholder("signs", [3, 4], .float64)
            let feed = [signs: try HostTensor((0..<12).map { $0 % 3 == 0 ? 1.0 : -1.0 }, shape: [3, 4])]
            try check([[3, 4]], range: 0.1...1, extra: feed, graph: graph) { g, x in try g.unary(op, x[0] * signs) }
        default: try check([[3, 4]]) { g, x in try g.unary(op, x[0]) }
        }
    }

    static let broadcastPairs: [(Shape, Shape)] = [([2, 3], [2, 3]), ([3, 1, 4], [2, 1]), ([2, 3], []), ([4], [3, 4]), ([1, 3], [2, 1])]

    @Test(arguments: [BinaryOp.add, .sub, .mul, .div, .maximum, .minimum, .greater, .equal])
    func binary(_ op: BinaryOp) throws {
        for (a, b) in Self.broadcastPairs {
            // Division stays away from 0 by taking inputs from [0.5, 2].
            try check([a, b], range: op == .div ? 0.5...2 : -1...1) { g, x in try g.binary(op, x[0], x[1]) }
        }
    }

    @Test(arguments: ReduceOp.allCases)
    func reduce(_ op: ReduceOp) throws {
        let axesSets: [[Int]?] = [[0], [1], [2], [-1], [0, 2], [1, 2], [0, 1, 2], nil]
        for axes in axesSets {
            for keep in [false, true] {
                try check([[2, 3, 4]]) { g, x in try g.reduce(op, x[0], axes: axes, keepDims: keep) }
            }
        }
    }

    @Test func matmulAllTransposeForms() throws {
        for ta in [false, true] {
            for tb in [false, true] {
                let a: Shape = ta ? [5, 3] : [3, 5], b: Shape = tb ? [4, 5] : [5, 4]
                try check([a, b]) { g, x in try g.matmul(x[0], x[1], transposeA: ta, transposeB: tb) }
            }
        }
    }

    @Test func layoutOps() throws {
        try check([[2, 3, 4]]) { g, x in try g.transpose(x[0], perm: [2, 0, 1]) }
        try check([[3, 5]]) { g, x in try g.transpose(x[0]) }
        try check([[2, 3, 4]]) { g, x in try g.reshape(x[0], [4, -1]) }
        try check([[3, 1]]) { g, x in try g.broadcast(x[0], to: [2, 3, 4]) }
        try check([[]]) { g, x in try g.broadcast(x[0], to: [2, 2]) }
    }

    @Test func gatherAndScatterAdd() throws {
        let graph = Graph()
        let ids = try graph.placeholder("ids", [3, 5], .int32)
        // Repeated ids, within a row and across rows, must accumulate.
        let feed: [Tensor: HostTensor] = [ids: try HostTensor([1, 4, 4, 0, 2, 3, 1, 6, 6, 6, 0, 0, 5, 2, 1] as [Int32], shape: [3, 5])]
        try check([[7, 4]], extra: feed, graph: graph) { g, x in try g.gather(x[0], ids: ids) }
        let graph2 = Graph()
        let ids2 = try graph2.placeholder("ids", [3, 5], .int32)
        let feed2: [Tensor: HostTensor] = [ids2: feed.values.first!]
        try check([[3, 5, 2]], extra: feed2, graph: graph2) { g, x in try g.scatterAdd(x[0], ids: ids2, rows: 7) }
    }

    @Test func softmaxCrossEntropy() throws {
        let graph = Graph()
        let labels = try graph.placeholder("labels", [4], .int32)
        let feed: [Tensor: HostTensor] = [labels: try HostTensor([2, 0, 4, 2] as [Int32], shape: [4])]
        try check([[4, 5]], range: -3...3, extra: feed, graph: graph) { g, x in
            try g.softmaxCrossEntropy(logits: x[0], labels: labels)
        }
    }

    /// One node used several times: gradients along every use are summed.
    @Test func fanOut() throws {
        try check([[3, 4]]) { g, x in try x[0] * x[0] + x[0].exp() * x[0] }
        try check([[2, 3]]) { g, x in try x[0].matmul(x[0], transposeB: true) }
    }

    /// A whole MLP and word-window classifier, every parameter.
    @Test func models() throws {
        let mlp = try ClassifierGraph.mlp(batch: 5, sizes: [8, 16, 4], activation: .tanh, dtype: .float64)
        for r in try GradientCheck.run(mlp.graph, loss: mlp.loss, wrt: mlp.parameters.tensors, values: mlp.randomValues(seed: 3)) {
            #expect(r.maxRelativeError < Self.tolerance, "MLP \(r.name)")
        }
        let ww = try ClassifierGraph.wordWindow(batch: 4, vocabulary: 9, dim: 3, hidden: 6, classes: 5, dtype: .float64)
        for r in try GradientCheck.run(ww.graph, loss: ww.loss, wrt: ww.parameters.tensors, values: ww.randomValues(seed: 4)) {
            #expect(r.maxRelativeError < Self.tolerance, "word window \(r.name)")
        }
    }
}
