import Foundation
import Testing
@testable import KilnCPU
import CThreadSupport
import Kiln

/// The CPU backend's worker pool, and the GEMMs it splits by rows or columns.
@Suite struct WorkerPoolTests {
    /// Every part runs exactly once, also when many threads ask for the pool at once (all but
    /// one then run their parts themselves).
    @Test func everyPartRunsOnce() {
        let pool = WorkerPool(threads: 3)
        for parts in [1, 2, 3, 5] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: parts)
            counts.initialize(repeating: 0, count: parts)
            defer { counts.deallocate() }
            for _ in 0..<200 { pool.run(parts: parts) { counts[$0] += 1 } }
            #expect((0..<parts).allSatisfy { counts[$0] == 200 }, "parts \(parts)")
        }
        let lock = NSLock()
        nonisolated(unsafe) var totals = [Int](repeating: 0, count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { caller in
            for _ in 0..<100 {
                var seen = [Bool](repeating: false, count: 3)
                seen.withUnsafeMutableBufferPointer { s in pool.run(parts: 3) { s[$0] = true } }
                lock.lock(); totals[caller] += seen.filter { $0 }.count; lock.unlock()
            }
        }
        #expect(totals == [Int](repeating: 300, count: 8))
    }

    /// Threads are bound to CPUs only when the process may run on exactly CPUs 0..<n, as the
    /// kernel lists them.
    @Test func allowedCPUsAreCountedFromZero() throws {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let list = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
            .split(separator: ":")[1].trimmingCharacters(in: .whitespaces)
        var cpus: [Int] = []
        for part in list.split(separator: ",") {
            let ends = part.split(separator: "-").compactMap { Int($0) }
            cpus += ends[0]...ends[ends.count - 1]
        }
        #expect(Int(kiln_allowed_cpus_from_zero()) == (cpus == Array(0..<cpus.count) ? cpus.count : -1), "\(list)")
        #expect(WorkerPool.shared.pinned == (cpus == Array(0..<cpus.count) && WorkerPool.shared.threads == cpus.count))
    }

    /// A GEMM big enough to split (rows when C is tall, columns from multiples of 16 when it is
    /// wide, with every transpose) equals the plain loops.
    @Test(arguments: [(300, 70, 200), (40, 90, 333), (17, 300, 1000)])
    func splitGemmMatchesTheLoops(m: Int, k: Int, n: Int) throws {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let g = Graph()
            let a = try g.placeholder("a", ta ? [k, m] : [m, k]), b = try g.placeholder("b", tb ? [n, k] : [k, n])
            let c = try g.matmul(a, b, transposeA: ta, transposeB: tb)
            let program = try Compiler.compile(g, fetch: [c], options: CompileOptions(realType: .float32))
            var rng = SeededGenerator(seed: 3)
            let feeds = [a: try HostTensor(rng.uniform(m * k, in: -1...1).map(Float.init), shape: a.shape),
                         b: try HostTensor(rng.uniform(k * n, in: -1...1).map(Float.init), shape: b.shape)]
            let fast = try CPUExecutable<Float>(program: program).run(feeds: feeds)[0].doubles
            let loops = try CPUExecutable<Float>(program: program, blas: false).run(feeds: feeds)[0].doubles
            let worst = zip(fast, loops).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-4 * Double(k), "\(m)x\(k)x\(n) ta \(ta) tb \(tb): differs by \(worst)")
        }
    }
}
