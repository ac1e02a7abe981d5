import ArgumentParser
import Foundation
import Kiln

/// `kiln gradcheck`: autodiff against finite differences on the lecture example and a small MLP.
struct GradcheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check autodiff against finite differences (in Double, on the CPU reference backend)."
    )

    @Flag(help: "Print one JSON object instead of a report.")
    var json = false

    @Option(help: "Seed for the MLP's inputs and weights.")
    var seed: UInt64 = 0

    func run() throws {
        let e = try LectureExample()
        let grads = try e.graph.gradients(of: e.f, wrt: [e.x, e.y, e.z])
        let out = try CPUReference<Double>().run(e.graph, feeds: e.values(), fetch: [e.f] + grads).map(\.scalarValue)
        let lecture = try GradientCheck.run(e.graph, loss: e.f, wrt: [e.x, e.y, e.z], values: e.values())

        let sizes = [8, 16, 4]
        let mlp = try ClassifierGraph.mlp(batch: 5, sizes: sizes, activation: .tanh, dtype: .float64)
        let mlpChecks = try GradientCheck.run(mlp.graph, loss: mlp.loss, wrt: mlp.parameters.tensors, values: mlp.randomValues(seed: seed))

        if json {
            let object: [String: Any] = [
                "example": ["f": out[0], "x": out[1], "y": out[2], "z": out[3]],
                "example_max_relative_error": Dictionary(uniqueKeysWithValues: lecture.map { ($0.name, $0.maxRelativeError) }),
                "mlp_max_relative_error": Dictionary(uniqueKeysWithValues: mlpChecks.map { ($0.name, $0.maxRelativeError) }),
            ]
            print(try JSONText.string(object))
            return
        }
        print("Lecture example f(x, y, z) = (x + y) * max(y, z) at x = 1, y = 2, z = 0")
        print("  f = \(fmt(out[0]))   df/dx = \(fmt(out[1]))   df/dy = \(fmt(out[2]))   df/dz = \(fmt(out[3]))")
        report(lecture)
        print("MLP \(sizes.map(String.init).joined(separator: "-")), tanh, softmax cross-entropy, batch 5, seed \(seed)")
        report(mlpChecks)
    }

    func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }

    func report(_ results: [GradientCheck.Result]) {
        for r in results {
            let name = r.name.padding(toLength: 10, withPad: " ", startingAt: 0)
            print("  \(name) \(r.analytic.count) elements, max relative error \(String(format: "%.2e", r.maxRelativeError))")
        }
    }
}
