import Testing
import Kiln

/// Values from PyTorch (scripts/make_golden.py), computed in float64; the CPU reference runs
/// in Double and must agree to round-off.
@Suite struct GoldenTests {
    /// Every op the catalogue says owes golden values has a case in ops.json, and every case
    /// names an op of the catalogue.
    @Test func fixturesCoverEveryOp() {
        let covered = Set(Fixtures.opCases.compactMap(\.kind))
        let expected = Set(OpKind.allCases.filter(\.traits.golden))
        #expect(expected.subtracting(covered).isEmpty, "ops without a golden case (add them to scripts/make_golden.py): \(expected.subtracting(covered).map(\.rawValue).sorted())")
        #expect(Fixtures.opCases.allSatisfy { $0.kind != nil }, "\(Fixtures.opCases.filter { $0.kind == nil }.map(\.op))")
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
    /// `names` maps the fixture's parameter names to the model's.
    func check(_ fixture: ModelFixture, _ m: ClassifierGraph, input: HostTensor, names: [String: String]) throws {
        let graph = m.graph, parameters = m.parameters.tensors, logits = m.logits, loss = m.loss
        var feeds: [Tensor: HostTensor] = [m.input: input, m.labels: try fixture.labels.host(.int32)]
        let fixtureName = Dictionary(uniqueKeysWithValues: names.map { ($1, $0) })
        for p in parameters { feeds[p] = try #require(fixture.params[fixtureName[p.node.label]!]).host(.float64) }
        let grads = try graph.gradients(of: loss, wrt: parameters)
        let out = try CPUReference<Double>().run(graph, feeds: feeds, fetch: [loss, logits] + grads)
        #expect(abs(out[0].scalarValue - fixture.loss.data[0]) < 1e-12)
        #expect(maxError(out[1].doubles, fixture.logits.data) < 1e-12)
        for (p, g) in zip(parameters, out[2...]) {
            let expected = try #require(fixture.grads[fixtureName[p.node.label]!])
            #expect(maxError(g.doubles, expected.data) < 1e-12, "gradient of \(p.node.label)")
        }
    }

    @Test func mlpForwardBackward() throws {
        let f = try Fixtures.load("mlp.json", as: ModelFixture.self)
        let x = try #require(f.x)
        let m = try ClassifierGraph.mlp(batch: x.shape[0], sizes: [6, 5, 3], activation: .relu, dtype: .float64)
        try check(f, m, input: x.host(.float64),
                  names: ["W1": "fc1.weight", "b1": "fc1.bias", "W2": "fc2.weight", "b2": "fc2.bias"])
    }

    @Test func wordWindowForwardBackward() throws {
        let f = try Fixtures.load("window.json", as: ModelFixture.self)
        let ids = try #require(f.ids)
        let m = try ClassifierGraph.wordWindow(batch: 3, vocabulary: 12, dim: 4, window: 5, hidden: 6, classes: 5, dtype: .float64)
        try check(f, m, input: ids.host(.int32),
                  names: ["E": "words.table", "W1": "hidden.weight", "b1": "hidden.bias", "W2": "out.weight", "b2": "out.bias"])
    }
}
