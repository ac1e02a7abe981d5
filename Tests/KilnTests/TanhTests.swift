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

/// float exp on the CPU backend is a polynomial (libm's expf is a call per element, slow where it
/// underflows): within 2 ulp of exp over the normal range, subnormals as they round, 0 below,
/// infinity above, and NaN stays NaN. OpenCL uses the device's exp, checked the same way.
@Suite struct ExpTests {
    @Test(arguments: DeviceKind.allCases)
    func approximationIsCloseAtEveryEdge(device: DeviceKind) throws {
        if device == .gpu && OpenCLSupport.context == nil { return }
        let sweep = stride(from: -87.0, through: 88.7, by: 0.00731).map { Float($0) }
        let edges: [Float] = [0, -0, 1e-30, -1e-7, 88.72, 88.73, 89, 100, -87.5, -95, -103.9, -104, -110, -1e9, .infinity, -.infinity, .nan]
        let xs = sweep + edges
        let g = Graph()
        let x = try g.placeholder("x", [xs.count])
        let exe = try Devices.load(g, fetch: [try x.exp()], on: device)
        let y = try exe.run(feeds: [x: HostTensor(xs, shape: [xs.count])])[0].floats
        for (v, e) in zip(xs, y) where !v.isNaN {
            let want = Foundation.exp(Double(v)), wantFloat = Float(want)
            if wantFloat.isInfinite || wantFloat == 0 || !wantFloat.isNormal {
                // Beyond the normal range: the same infinity or zero, or a subnormal within one of its steps.
                #expect(abs(Double(e) - want) <= Double(Float.leastNonzeroMagnitude) || e == wantFloat, "exp(\(v)) = \(e), want \(wantFloat)")
            } else {
                #expect(abs(Double(e) - want) <= 2 * Double(wantFloat.ulp), "exp(\(v)) = \(e), want \(want)")
            }
        }
        #expect(y.last!.isNaN, "exp(nan) = \(y.last!)")
    }
}
