import CThreadSupport
import Foundation

/// PoCL's CPU device runs work-groups on a pool of worker threads, one per core, woken for each
/// kernel. Left unpinned, about half of all processes ran small kernels at about half speed for
/// their whole life.
/// PoCL pins worker `i` to CPU `i` when `POCL_AFFINITY=1` (8 of 8 processes fast); this turns that on
/// before PoCL starts, but only where it is safe: when the process may run on exactly CPUs
/// `0..<n` (pinning outside its CPU set would fail) and nobody set `POCL_AFFINITY` already; a
/// job's processes on one machine would all pin to the same first cores, so
/// `Devices.shareMachine` sets `POCL_AFFINITY=0` for them.
enum PoCLThreads {
    /// Runs once, before the first OpenCL call (PoCL reads the variable when it starts its threads).
    static let configure: Void = {
        guard ProcessInfo.processInfo.environment["POCL_AFFINITY"] == nil, kiln_allowed_cpus_from_zero() > 0 else { return }
        setenv("POCL_AFFINITY", "1", 0)
    }()
}
