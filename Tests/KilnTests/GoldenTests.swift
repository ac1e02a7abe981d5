import Testing
import Kiln

/// Values from PyTorch (scripts/make_golden.py), computed in float64; the CPU reference runs
/// in Double and must agree to round-off.
@Suite struct GoldenTests {
    @Test func fixturesCoverEveryOp() {
        let covered = Set(Fixtures.opCases.map(\.op))
        let expected = Set(UnaryOp.allCases.map(\.rawValue) + ["add", "sub", "mul", "div", "maximum", "minimum"]
            + ReduceOp.allCases.map(\.rawValue)
            + ["matmul", "transpose", "reshape", "broadcastTo", "gather", "softmaxCrossEntropy", "argmax", "accuracy"])
        #expect(expected.subtracting(covered).isEmpty, "ops without a golden case: \(expected.subtracting(covered).sorted())")
    }

    @Test(arguments: Fixtures.opCases.map(\.name))
    func op(_ name: String) throws {
        let c = Fixtures.opCases.first { $0.name == name }!
        let (g, ins, out) = try c.build()
        var feeds = try c.feeds(ins)
        let cpu = CPUReference<Double>()
        let got = try cpu.run(g, feeds: feeds, fetch: [out])[0]
        #expect(got.shape == Shape(c.output.shape))
        #expect(maxError(got.doubles, c.output.data) < 1e-12, "\(name) output")

        guard let upstream = c.upstream else { return }
        let u = try g.placeholder("upstream", Shape(upstream.shape), .float64)
        feeds[u] = try upstream.host(.float64)
        let loss = try (out * u).sum()
        let floatInputs = ins.indices.filter { !c.intInputs.contains($0) }
        let grads = try g.gradients(of: loss, wrt: floatInputs.map { ins[$0] })
        let values = try cpu.run(g, feeds: feeds, fetch: grads)
        for (i, v) in zip(floatInputs, values) {
            let expected = try #require(c.grads[i], "\(name): fixture lacks gradient \(i)")
            #expect(v.shape == Shape(expected.shape))
            #expect(maxError(v.doubles, expected.data) < 1e-12, "\(name) gradient of input \(i)")
        }
    }

    /// Loads a model fixture's parameters by name, runs loss, logits and gradients.
    func check(_ fixture: ModelFixture, graph: Graph, feeds: [Tensor: HostTensor], parameters: [Tensor],
               logits: Tensor, loss: Tensor) throws {
        var feeds = feeds
        for p in parameters { feeds[p] = try #require(fixture.params[p.node.label]).host(.float64) }
        let grads = try graph.gradients(of: loss, wrt: parameters)
        let out = try CPUReference<Double>().run(graph, feeds: feeds, fetch: [loss, logits] + grads)
        #expect(abs(out[0].scalarValue - fixture.loss.data[0]) < 1e-12)
        #expect(maxError(out[1].doubles, fixture.logits.data) < 1e-12)
        for (p, g) in zip(parameters, out[2...]) {
            let expected = try #require(fixture.grads[p.node.label])
            #expect(maxError(g.doubles, expected.data) < 1e-12, "gradient of \(p.node.label)")
        }
    }

    @Test func mlpForwardBackward() throws {
        let f = try Fixtures.load("mlp.json", as: ModelFixture.self)
        let x = try #require(f.x)
        let m = try MLPGraph(batch: x.shape[0], sizes: [6, 5, 3], activation: .relu, dtype: .float64)
        try check(f, graph: m.graph, feeds: [m.x: x.host(.float64), m.labels: f.labels.host(.int32)],
                  parameters: m.parameters, logits: m.logits, loss: m.loss)
    }

    @Test func wordWindowForwardBackward() throws {
        let f = try Fixtures.load("window.json", as: ModelFixture.self)
        let ids = try #require(f.ids)
        let m = try WordWindowGraph(batch: 3, vocab: 12, dim: 4, window: 5, hidden: 6, classes: 5, dtype: .float64)
        try check(f, graph: m.graph, feeds: [m.ids: ids.host(.int32), m.labels: f.labels.host(.int32)],
                  parameters: m.parameters, logits: m.logits, loss: m.loss)
    }
}
