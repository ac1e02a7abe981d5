import COpenBLAS
import Foundation

/// Which of OpenBLAS's kernel sets runs the CPU backend's GEMMs. OpenBLAS picks one from the
/// CPU's model number when the library loads; on a virtual machine that reports a generic
/// model it falls back to Prescott's SSE3 kernels, 5-7x slower than the AVX-512 or AVX2 ones
/// the CPU has. `OPENBLAS_CORETYPE` overrides the pick, but only when set before the library
/// loads: `kiln` restarts itself with it (`mismatch` says when).
public enum BLASCore {
    /// The kernel set OpenBLAS chose (`SkylakeX`, `Haswell`, `Prescott`, ...).
    public static var name: String { String(cString: openblas_get_corename()) }

    /// The kernel set the CPU's features call for, from /proc/cpuinfo: `SkylakeX` with AVX-512,
    /// `Haswell` with AVX2 and FMA; nil otherwise or when unknown.
    public static var fitting: String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// Kernel sets older than AVX2: chosen on a CPU that has AVX2 or AVX-512, they are a
    /// misdetection rather than a choice.
    static let fallbacks: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                                         "coppermine", "northwood", "banias", "sandybridge"]

    /// The kernel set to restart with when OpenBLAS fell back to an old one on a CPU with
    /// AVX2 or AVX-512 and `OPENBLAS_CORETYPE` is not set; nil when nothing is wrong.
    public static var mismatch: String? {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let fitting,
              fallbacks.contains(name.lowercased()) else { return nil }
        return fitting
    }
}
