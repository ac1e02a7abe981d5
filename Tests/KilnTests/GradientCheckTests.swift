import Testing
import Kiln

/// Finite-difference checks in Double of every op's gradient rule (the cases are
/// `OpCases.gradients`), and of whole models.
@Suite struct GradientCheckTests {
    static let tolerance = 1e-6

    /// Each case of the catalogue's gradient checks: the gradient of a randomly weighted sum
    /// of its outputs with respect to every float input, against central differences.
    @Test(arguments: OpCases.gradients.map(\.name))
    func opCase(_ name: String) throws {
        let c = try #require(OpCases.gradients.first { $0.name == name })
        let results = try CaseGraph([c], dtype: .float64).gradientCheck()
        #expect(!results.isEmpty, "\(name) checks no gradient")
        for r in results {
            #expect(r.maxRelativeError < Self.tolerance, "\(name): \(r.name): \(r.maxRelativeError)")
        }
    }

    /// Every op with a gradient rule lies between an input and an output of some case.
    @Test func everyGradientRuleIsChecked() throws {
        let checked = try OpCases.gradients.reduce(into: Set<OpKind>()) { $0.formUnion(try $1.differentiatedKinds()) }
        let rules = Set(OpKind.allCases.filter { $0.traits.gradient == .rule })
        #expect(rules.subtracting(checked).isEmpty, "gradient rules no case checks: \(rules.subtracting(checked).map(\.rawValue).sorted())")
    }

    /// `stopGradient` passes its input's value and no gradient: the gradient of Σ x·stop(x) is
    /// x, not 2x; and it costs no kernel.
    @Test func stopGradientPassesNoGradient() throws {
        let g = Graph()
        let x = try g.placeholder("x", [3, 4], .float64)
        let loss = try (x * x.detached()).sum()
        let dx = try g.gradients(of: loss, wrt: [x])[0]
        var rng = SeededGenerator(seed: 2)
        let xs = rng.uniform(x.shape.count, in: -1...1)
        let out = try CPUReference<Double>().run(g, feeds: [x: try HostTensor(xs, shape: x.shape)], fetch: [loss, dx])
        #expect(abs(out[0].doubles[0] - xs.map { $0 * $0 }.reduce(0, +)) < 1e-12)
        #expect(out[1].doubles == xs)
        let program = try Compiler.compile(g, fetch: [try x.detached() * 2], options: CompileOptions(fusion: true, realType: .float64))
        #expect(program.kernels.count == 1, "\(program.listing())")
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
