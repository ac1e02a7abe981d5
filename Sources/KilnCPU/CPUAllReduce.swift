import KilnCompiler
import KilnGraph

/// The host side of a program's all-reduce buckets: each bucket's contiguous space (allocated
/// at load) and the handle of its sum while it is in flight.
final class CPUAllReduce {
    let collective: Collective?
    let buckets: [AllReduceBucket]
    let staging: [UnsafeMutableRawPointer]
    let elementSize: Int
    let dtype: DType
    private var handles: [Int?]
    /// Sums in flight, so the executable knows when to let them progress.
    private(set) var inFlight = 0

    init(program: Program, collective: Collective?) {
        self.collective = collective
        buckets = program.buckets
        dtype = program.realType
        elementSize = program.realType.byteSize
        staging = program.buckets.map { .allocate(byteCount: max($0.elements * program.realType.byteSize, 64), alignment: 64) }
        handles = [Int?](repeating: nil, count: program.buckets.count)
    }

    deinit { for p in staging { p.deallocate() } }

    /// Copies the bucket's tensors in and starts their sum (with one process, the copy is the sum).
    func start(_ b: Int, from inputs: [UnsafeMutableRawPointer]) throws {
        let bucket = buckets[b]
        for (i, p) in inputs.enumerated() {
            let r = bucket.range(of: i)
            (staging[b] + r.lowerBound * elementSize).copyMemory(from: p, byteCount: r.count * elementSize)
        }
        if let c = collective, c.size > 1 {
            handles[b] = try c.startSum(staging[b], count: bucket.elements, dtype: dtype)
            inFlight += 1
        }
    }

    /// Waits for the bucket's sum and copies it out.
    func finish(_ b: Int, into outputs: [UnsafeMutableRawPointer]) throws {
        if let h = handles[b] {
            handles[b] = nil
            inFlight -= 1
            try collective!.wait(h)
        }
        let bucket = buckets[b]
        for (i, p) in outputs.enumerated() {
            let r = bucket.range(of: i)
            p.copyMemory(from: staging[b] + r.lowerBound * elementSize, byteCount: r.count * elementSize)
        }
    }

    func progress() throws {
        if inFlight > 0 { try collective?.progress() }
    }
}
