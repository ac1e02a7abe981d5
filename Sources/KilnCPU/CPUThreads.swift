import Foundation

/// How many threads the CPU backend uses (its `WorkerPool`, which runs GEMMs and large
/// elementwise kernels; OpenBLAS itself runs single-threaded in it). `KILN_CPU_THREADS` overrides.
public enum CPUThreads {
    nonisolated(unsafe) private static var chosen: Int?
    private static let lock = NSLock()

    /// `CPUSettings.threads` (`KILN_CPU_THREADS`), or what `share(processes:)` set, or the
    /// machine's cores. (An invalid `KILN_CPU_THREADS` fails the load of every CPU executable,
    /// which comes before the pool is made; here it counts as unset.)
    public static var count: Int {
        lock.lock()
        defer { lock.unlock() }
        if let chosen { return chosen }
        if let v = (try? CPUSettings.fromEnvironment())?.threads { return v }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    /// Gives this process its share of the machine's cores when `processes` processes run on it
    /// (a data-parallel job's ranks on one machine), as launchers of other frameworks do:
    /// without it each would start a thread per core, processes x cores threads in all.
    /// A `KILN_CPU_THREADS` given in the environment is kept. Call before loading programs.
    public static func share(processes: Int) {
        guard processes > 1 else { return }
        let each = max(1, ProcessInfo.processInfo.activeProcessorCount / processes)
        if (try? CPUSettings.fromEnvironment())?.threads == nil {
            lock.lock()
            chosen = each
            lock.unlock()
        }
    }
}
