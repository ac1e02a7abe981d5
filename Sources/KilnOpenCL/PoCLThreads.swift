import Foundation

/// PoCL's CPU device runs work-groups on a pool of worker threads, one per core, woken for each
/// kernel. Left unpinned, about half of all processes ran small kernels at about half speed for
/// their whole life (measured on 2 cores: the MLP's first layer 0.23 instead of 0.14 ms in 4 of 8
/// processes; W1 epochs 0.39-0.43 s in 5 of 5 processes against 0.29-0.40 s pinned).
/// PoCL pins worker `i` to CPU `i` when `POCL_AFFINITY=1` (8 of 8 processes fast); this turns that on
/// before PoCL starts, but only where it is safe: when the process may run on exactly CPUs
/// `0..<n` (pinning outside its CPU set would fail), nobody set `POCL_AFFINITY` already, and
/// the process has the machine to itself (`Devices.shareMachine` sets `POCL_AFFINITY=0` for
/// several processes, which would otherwise all pin to the first cores).
enum PoCLThreads {
    /// Runs once, before the first OpenCL call (PoCL reads the variable when it starts its threads).
    static let configure: Void = {
        guard ProcessInfo.processInfo.environment["POCL_AFFINITY"] == nil, let cpus = allowedCPUs(),
              !cpus.isEmpty, cpus == Array(0..<cpus.count) else { return }
        setenv("POCL_AFFINITY", "1", 0)
    }()

    /// The CPUs this process may run on, in order (Linux's `Cpus_allowed_list`, e.g. `0-3,8`),
    /// or nil where the system does not say.
    static func allowedCPUs(status: String? = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) -> [Int]? {
        guard let line = status?.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return nil }
        var cpus: [Int] = []
        for part in line.dropFirst("Cpus_allowed_list:".count).split(separator: ",") {
            let ends = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let first = ends.first ?? nil, let last = ends.last ?? nil, ends.count <= 2, first <= last else { return nil }
            cpus += first...last
        }
        return cpus
    }
}
