import Testing
import Kiln

/// What `kiln compile` prints: the schedule and plan, and the graph drawing.
@Suite struct ListingTests {
    @Test func scheduleListingNamesKernelsTensorsAndPlan() throws {
        let m = try ClassifierGraph.mlp(batch: 128, sizes: [784, 256, 128, 10])
        _ = try stepGraph(m)
        let listing = try Compiler.compile(m.graph, fetch: [m.loss]).listing()
        #expect(listing.hasPrefix("Schedule: 16 kernels, float32, fusion on"))
        #expect(listing.contains("k0_matmul_epilogue  [matmul(A·B), add, relu]"))
        #expect(listing.contains("in  x float32 [128, 784] 392.0 KiB @x"))
        #expect(listing.contains("parameter fc1.weight 784.0 KiB"))
        #expect(listing.contains("Memory plan: arena") && listing.contains("liveness lower bound"))
    }

    /// The lecture graph: forward and backward nodes, gradient edges, ∂-links and values.
    @Test func dotMarksGradients() throws {
        let e = try LectureExample()
        let grads = try e.graph.gradients(of: e.f, wrt: [e.x, e.y, e.z])
        let all = e.graph.nodes.map { e.graph.tensor($0.id) }
        var values: [Int: Double] = [:]
        for (t, v) in zip(all, try CPUReference<Double>().run(e.graph, feeds: e.values(), fetch: all)) { values[t.id] = v.scalarValue }
        let dot = GraphDot.render(e.graph, values: values, title: "lecture")
        #expect(dot.hasPrefix("digraph \"lecture\" {"))
        #expect(dot.contains("fillcolor=\"#f8d0d0\""))                 // backward nodes
        #expect(dot.contains("style=dashed"))                          // gradient edges
        #expect(dot.contains("label=\"∂\""))                           // links to the gradients
        #expect(dot.contains("∂loss/∂y") && dot.contains("= 5"))       // df/dy = 5 drawn on its node
        #expect(dot.contains("\\n= 6\""))                               // f = 6
        #expect(grads.count == 3)
    }
}
