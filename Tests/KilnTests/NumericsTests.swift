import Testing
import Kiln

/// Numerical faults are caught and named.
@Suite struct NumericsTests {
    /// The first kernel that writes NaN stops the run, named with its tensor, element and run.
    @Test(arguments: DeviceKind.allCases)
    func checkNumericsNamesTheKernel(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        let g = Graph()
        let x = try g.placeholder("x", [2, 3])
        let y = try (x.log() * 2).sum(axes: [1])   // log of a negative number: NaN
        let exe = try Devices.load(g, fetch: [y], on: device, fusion: false)
        exe.checkNumerics = true
        let good = try HostTensor([Float](repeating: 1, count: 6), shape: [2, 3])
        _ = try exe.run(feeds: [x: good])
        do {
            _ = try exe.run(feeds: [x: try HostTensor([1, 2, 3, 4, -5, 6] as [Float], shape: [2, 3])])
            Issue.record("NaN went unnoticed")
        } catch {
            let m = "\(error)"
            #expect(m.contains("k0_elementwise") && m.contains("nan") && m.contains("element 4") && m.contains("run 2") && m.contains("log"), "\(m)")
        }
    }

    /// Softmax cross-entropy stays finite for logits of ±1e4, forward and backward.
    @Test(arguments: DeviceKind.allCases)
    func hugeLogitsStayFinite(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        let g = Graph()
        let logits = try g.parameter("logits", [3, 4])
        let labels = try g.placeholder("labels", [3], .int32)
        let loss = try g.softmaxCrossEntropy(logits: logits, labels: labels)
        let grad = try g.gradients(of: loss, wrt: [logits])[0]
        let exe = try Devices.load(g, fetch: [loss, grad], on: device)
        exe.checkNumerics = true
        try exe.write(logits, try HostTensor([1e4, -1e4, 0, 1e4, -1e4, -1e4, 1e4, 5e3, 0, 0, 0, -1e4] as [Float], shape: [3, 4]))
        let out = try exe.run(feeds: [labels: try HostTensor([1, 2, 3] as [Int32], shape: [3])])
        #expect(out[0].scalarValue.isFinite && out[0].scalarValue > 1e3)
        #expect(out[1].doubles.allSatisfy { $0.isFinite })
    }
}
