import Testing
import Kiln

/// Every op, forward and gradient, on OpenCL against the CPU reference in Double.
/// Tolerances: float32 programs agree to 1e-4 (relative to max(1, |value|)); float64 programs
/// to 1e-10.
@Suite struct OpenCLParityTests {
    static func tolerance(_ dtype: DType) -> Double { dtype == .float64 ? 1e-10 : 1e-4 }

    /// All golden cases' ops in one graph (one program build per configuration), forward and,
    /// where differentiable, backward; both precisions, fused and unfused.
    @Test(arguments: [DType.float32, .float64], [false, true])
    func goldenCases(dtype: DType, fusion: Bool) throws {
        guard let ctx = OpenCLSupport.context else { return }
        let g = Graph()
        var values: [Tensor: HostTensor] = [:]
        var fetch: [Tensor] = []
        var labels: [String] = []
        for c in Fixtures.opCases {
            let (_, ins, out) = try c.build(dtype: dtype, into: g, prefix: c.name + ".")
            values.merge(try c.feeds(ins, dtype: dtype)) { a, _ in a }
            fetch.append(out)
            labels.append("\(c.name) output")
            if let upstream = c.upstream {
                let u = try g.placeholder(c.name + ".upstream", Shape(upstream.shape), dtype)
                values[u] = try upstream.host(dtype)
                let floatInputs = ins.indices.filter { !c.intInputs.contains($0) }
                fetch += try g.gradients(of: (out * u).sum(), wrt: floatInputs.map { ins[$0] })
                labels += floatInputs.map { "\(c.name) gradient \($0)" }
            }
        }
        let (device, reference) = try openCLAndReference(g, fetch: fetch, values: values, fusion: fusion, context: ctx)
        for (label, (d, r)) in zip(labels, zip(device, reference)) {
            #expect(d.shape == r.shape, "\(label)")
            #expect(maxError(d.doubles, r.doubles) < Self.tolerance(dtype), "\(label)")
        }
    }
}
