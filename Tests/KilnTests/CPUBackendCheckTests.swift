import Testing
import Kiln

/// The CPU backend's own kernels (float32, fused: BLAS, the vectorized passes, pooling written
/// out for windows that tile the plane) against the oracle, as `kiln selftest --device cpu`
/// runs them: every op case and every training step.
@Suite struct CPUBackendCheckTests {
    @Test func everyCaseMatchesTheOracle() {
        for check in DeviceCheck.all {
            let result = check.check(on: .cpu, fusion: nil)
            #expect(result.passed, "\(result.line(width: 70))")
        }
    }
}
