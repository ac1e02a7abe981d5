import Foundation
import Testing
import Kiln

/// float tanh is a rational approximation on both backends: within 5e-7 of tanh everywhere
/// (infinities included), and NaN stays NaN (so the checks for non-finite values still see it).
@Suite struct TanhTests {
    @Test(arguments: DeviceKind.allCases)
    func approximationIsCloseAndKeepsNaN(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        let xs: [Float] = stride(from: -12, through: 12, by: 0.01).map { Float($0) } + [0, -0, 1e-30, -1e-7, 100, -1e30, .infinity, -.infinity, .nan]
        let g = Graph()
        let x = try g.placeholder("x", [xs.count])
        let exe = try Devices.load(g, fetch: [try x.tanh()], on: device)
        let y = try exe.run(feeds: [x: HostTensor(xs, shape: [xs.count])])[0].floats
        for (v, t) in zip(xs, y) where !v.isNaN {
            #expect(abs(Double(t) - Foundation.tanh(Double(v))) <= 5e-7, "tanh(\(v)) = \(t)")
        }
        #expect(y.last!.isNaN, "tanh(nan) = \(y.last!)")
    }
}
