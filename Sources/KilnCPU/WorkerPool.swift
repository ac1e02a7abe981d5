import COpenBLAS
import CThreadSupport
import Foundation
import Synchronization

/// The CPU backend's threads: the calling thread and `threads - 1` workers, which run the parts
/// of one kernel together (row or column blocks of a GEMM, block ranges of an elementwise
/// kernel).
///
/// One pool for everything, with OpenBLAS single-threaded inside it: with OpenBLAS's own
/// threads as well, its idle threads spin (calling sched_yield) on the cores the elementwise
/// kernels' threads need, and step times varied with how the threads fell.
/// Between kernels the workers spin for a short while, so the next kernel of a step starts
/// without waking a thread (a wake-up takes tens of microseconds in a VM); then they sleep.
///
/// One kernel at a time: a call made while the pool is busy (another executable's step on
/// another thread, or a part that itself asks for the pool) runs its parts on the caller.
final class WorkerPool: @unchecked Sendable {
    /// The process's pool, made on first use with `CPUThreads.count` threads.
    static let shared = WorkerPool(threads: CPUThreads.count)

    let threads: Int
    /// How long an idle worker spins before it sleeps.
    static let spinNanoseconds: UInt64 = 200_000

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let condition = NSCondition()
    private var sleepers = 0
    /// The current kernel's work: part index -> work. Set before `generation` is bumped and
    /// cleared after every worker reported back, so the workers read it only while it is valid.
    private var job: ((Int) -> Void)?
    private var parts = 0

    /// Whether threads are bound to CPUs: when the pool has the whole machine (the process may
    /// run on exactly CPUs 0..<threads). Worker `w` then stays on CPU `w`, and a caller found on
    /// a worker's CPU moves to CPU 0 for the kernel. Unbound, the scheduler at times left the
    /// caller and a worker on one CPU for a whole run, which then ran at one thread's speed.
    let pinned: Bool

    init(threads: Int) {
        self.threads = max(1, threads)
        pinned = self.threads > 1 && kiln_allowed_cpus_from_zero() == Int32(self.threads)
        // OpenBLAS runs inside the pool's threads, one GEMM part each.
        openblas_set_num_threads(1)
        for w in 1..<self.threads {
            // The workers keep their pool: a pool lives as long as the process.
            let thread = Thread { self.work(index: w) }
            thread.name = "kiln-cpu-\(w)"
            thread.start()
        }
    }

    /// Calls `body(p)` for every part `p` in `0..<parts`, thread `t` taking parts `t`,
    /// `t + threads`, ..., at the same time, and returns when all are done. Allocates nothing.
    func run(parts: Int, _ body: (Int) -> Void) {
        guard parts > 1, threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for p in 0..<max(parts, 0) { body(p) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        // Off the workers' CPUs for the kernel, then free again (it stays on CPU 0 unless moved);
        // only a caller that may run on exactly the pool's CPUs, so its own binding is restored.
        let moved = pinned && kiln_current_cpu() > 0 && kiln_allowed_cpus_from_zero() == Int32(threads) && kiln_pin_current_thread(0) == 0
        defer { if moved { _ = kiln_unpin_current_thread(Int32(threads)) } }
        withoutActuallyEscaping(body) { body in
            job = body
            self.parts = parts
            pending.store(threads - 1, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            condition.lock()
            if sleepers > 0 { condition.broadcast() }
            condition.unlock()
            for p in stride(from: 0, to: parts, by: threads) { body(p) }
            while pending.load(ordering: .acquiring) > 0 { kiln_spin_pause() }
            job = nil
        }
    }

    private func work(index: Int) {
        if pinned { _ = kiln_pin_current_thread(Int32(index)) }
        var seen = 0
        while true {
            // Wait for the next kernel: spin, then sleep.
            var spins = 0, since = DispatchTime.now().uptimeNanoseconds
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                kiln_spin_pause()
                guard spins % 64 == 0 else { continue }
                if DispatchTime.now().uptimeNanoseconds - since < Self.spinNanoseconds { continue }
                condition.lock()
                sleepers += 1
                while generation.load(ordering: .acquiring) == seen { condition.wait() }
                sleepers -= 1
                condition.unlock()
                since = DispatchTime.now().uptimeNanoseconds
            }
            seen = generation.load(ordering: .acquiring)
            for p in stride(from: index, to: parts, by: threads) { job!(p) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}
