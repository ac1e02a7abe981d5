import Testing
import Kiln

@Suite struct LectureExampleTests {
    /// f(x, y, z) = (x + y) * max(y, z) at (1, 2, 0): f = 6, df/dx = 2, df/dy = 5, df/dz = 0.
    @Test func workedExample() throws {
        let e = try LectureExample()
        let grads = try e.graph.gradients(of: e.f, wrt: [e.x, e.y, e.z])
        let out = try CPUReference<Double>().run(e.graph, feeds: e.values(), fetch: [e.f] + grads)
        #expect(out.map(\.scalarValue) == [6, 2, 5, 0])
    }

    /// y feeds both the sum and the max: its gradient is the sum of both paths.
    @Test func fanOutSumsGradients() throws {
        let e = try LectureExample()
        let checks = try GradientCheck.run(e.graph, loss: e.f, wrt: [e.x, e.y, e.z], values: e.values(x: 1, y: 2, z: 0))
        for c in checks { #expect(c.maxRelativeError < 1e-8, "\(c.name)") }
    }

    /// The tie rule of maximum: at y == z the gradient is split evenly between them.
    @Test func maximumTieSplitsGradient() throws {
        let e = try LectureExample()
        let grads = try e.graph.gradients(of: e.f, wrt: [e.x, e.y, e.z])
        let out = try CPUReference<Double>().run(e.graph, feeds: e.values(x: 1, y: 2, z: 2), fetch: grads)
        // df/dx = max = 2; y: 2 (from the sum) + 3 * 0.5 (half the max's share); z: 3 * 0.5.
        #expect(out.map(\.scalarValue) == [2, 3.5, 1.5])
    }
}
