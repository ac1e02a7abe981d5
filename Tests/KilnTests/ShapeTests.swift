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

/// slice, pad, concat, split and where: their shapes, the exact values where() chooses, and
/// errors that name the op and the shapes.
@Suite struct MovementTests {
    func message(_ body: () throws -> Void) -> String { thrownMessage(body) }

    @Test func shapes() throws {
        let g = Graph()
        let x = try g.placeholder("x", [4, 5, 6])
        #expect(try g.slice(x, starts: [1, 0, 1], ends: [4, 5, 6], steps: [2, 1, 2]).shape == [2, 5, 3])
        #expect(try x.slice(axis: -1, from: 2, to: 6, step: 3).shape == [4, 5, 2])
        #expect(try x.slice(axis: 0, from: 0, to: 4) == x)
        #expect(try x.padded([(1, 2), (0, 0), (3, 0)]).shape == [7, 5, 9])
        #expect(try g.pad(x, low: [0, 0, 0], high: [0, 1, 0], interior: [1, 0, 2]).shape == [7, 6, 16])
        let y = try g.placeholder("y", [4, 2, 6])
        #expect(try g.concat([x, y, x], axis: 1).shape == [4, 12, 6])
        let parts = try x.split([1, 4, 1], axis: -1)
        #expect(parts.map(\.shape) == [[4, 5, 1], [4, 5, 4], [4, 5, 1]])
    }

    @Test func whereChoosesExactly() throws {
        let g = Graph()
        let m = try g.placeholder("m", [4], .float64), a = try g.placeholder("a", [4], .float64)
        let out = try g.where(m, a, a.scalar(7))
        let grad = try g.gradients(of: out.sum(), wrt: [a])[0]
        let values = try CPUReference<Double>().run(g, feeds: [
            m: try HostTensor([1, 0, -2, 0] as [Double], shape: [4]),
            a: try HostTensor([Double.infinity, .nan, 0.5, -.infinity], shape: [4]),
        ], fetch: [out, grad])
        #expect(values[0].doubles == [.infinity, 7, 0.5, 7])
        #expect(values[1].doubles == [1, 0, 1, 0])
    }

    @Test func badInputNamesOpAndShapes() throws {
        let g = Graph()
        let x = try g.placeholder("x", [4, 5]), y = try g.placeholder("y", [3, 6])
        let m1 = message { _ = try g.slice(x, starts: [0, 2], ends: [4, 9]) }
        #expect(m1.contains("slice") && m1.contains("[4, 5]") && m1.contains("2..<9"), "\(m1)")
        let m2 = message { _ = try x.slice(axis: 0, from: 0, to: 4, step: 0) }
        #expect(m2.contains("slice") && m2.contains("step"), "\(m2)")
        let m3 = message { _ = try x.padded([(1, -1), (0, 0)]) }
        #expect(m3.contains("pad") && m3.contains("[4, 5]"), "\(m3)")
        let m4 = message { _ = try g.concat([x, y], axis: 0) }
        #expect(m4.contains("concat") && m4.contains("[4, 5]") && m4.contains("[3, 6]"), "\(m4)")
        let m5 = message { _ = try x.split([2, 2], axis: 1) }
        #expect(m5.contains("split") && m5.contains("[2, 2]") && m5.contains("[4, 5]"), "\(m5)")
        let m6 = message { _ = try g.concat([], axis: 0) }
        #expect(m6.contains("concat"), "\(m6)")
        let m7 = message { _ = try x.slice(axis: 2, from: 0, to: 1) }
        #expect(m7.contains("slice") && m7.contains("axis 2"), "\(m7)")
    }
}
