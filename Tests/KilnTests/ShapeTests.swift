import Testing
import Kiln

@Suite struct ShapeTests {
    @Test func broadcastingFollowsNumPy() {
        #expect(Shape.broadcast([3, 1, 4], [2, 1]) == [3, 2, 4])
        #expect(Shape.broadcast([2, 3], []) == [2, 3])
        #expect(Shape.broadcast([1], [5]) == [5])
        #expect(Shape.broadcast([0, 3], [1, 3]) == [0, 3])
        #expect(Shape.broadcast([2, 3], [3, 2]) == nil)
        #expect(Shape([3, 1]).broadcasts(to: [2, 3, 4]))
        #expect(!Shape([2, 4]).broadcasts(to: [2, 1]))
    }

    @Test func shapesOfOps() throws {
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 4])
        #expect(try x.sum(axes: [1]).shape == [2, 4])
        #expect(try x.mean(axes: [0, 2], keepDims: true).shape == [1, 3, 1])
        #expect(try x.max().shape == .scalar)
        #expect(try x.transposed([2, 0, 1]).shape == [4, 2, 3])
        #expect(try x.reshaped([-1, 4]).shape == [6, 4])
        let a = try g.placeholder("a", [3, 5]), b = try g.placeholder("b", [4, 5])
        #expect(try a.matmul(b, transposeB: true).shape == [3, 4])
        #expect(try a.matmul(a, transposeA: true).shape == [5, 5])
        let ids = try g.placeholder("ids", [2, 5], .int32)
        #expect(try g.gather(a, ids: ids).shape == [2, 5, 5])
        #expect(try g.argmax(x, axis: 1).dtype == .int32)
    }

    /// Autodiff appends only backward nodes, after the forward ones, in topological order.
    @Test func backwardNodesFollowForward() throws {
        let m = try ClassifierGraph.mlp(batch: 4, sizes: [3, 5, 2])
        let forward = m.graph.nodes.count
        _ = try m.graph.gradients(of: m.loss, wrt: m.parameters.tensors)
        let nodes = m.graph.nodes
        #expect(nodes.count > forward)
        #expect(nodes[..<forward].allSatisfy { $0.role == .forward })
        #expect(nodes[forward...].allSatisfy { $0.role == .backward })
        #expect(nodes.allSatisfy { n in n.inputs.allSatisfy { $0 < n.id } })
    }
}
