import COpenCL
import KilnCompiler

/// Groups a scatter-add's fed ids by value on the host before each run, for the
/// `scatter_add_grouped` kernel: the distinct ids, where each one's positions start, and the
/// positions in increasing order within each id (a stable counting sort). The host already
/// holds the ids (they are a feed); grouping them takes microseconds and lets the device sum
/// every (id, column) in parallel, in the same order as the one-column-per-work-item kernel.
final class IdGrouping {
    let spec: OpenCLCodegen.Grouping
    /// Per table row: its index among this run's distinct ids, or -1.
    private let slot: UnsafeMutablePointer<Int32>
    private let counts: UnsafeMutablePointer<Int32>
    private let rows: UnsafeMutablePointer<Int32>
    private let starts: UnsafeMutablePointer<Int32>
    private let order: UnsafeMutablePointer<Int32>
    private let distinct: UnsafeMutablePointer<Int32>

    init(_ spec: OpenCLCodegen.Grouping) {
        self.spec = spec
        slot = .allocate(capacity: max(spec.limit, 1))
        slot.initialize(repeating: -1, count: max(spec.limit, 1))
        counts = .allocate(capacity: spec.count)
        rows = .allocate(capacity: spec.count)
        starts = .allocate(capacity: spec.count + 1)
        order = .allocate(capacity: spec.count)
        distinct = .allocate(capacity: 1)
    }

    deinit {
        for p in [slot, counts, rows, starts, order, distinct] { p.deallocate() }
    }

    /// Groups `ids` (checked to lie in `0..<limit` before) and enqueues the four writes into
    /// the scratch buffers; returns the bytes written.
    func group(_ ids: [Int32], context: CLContext, scratch: [CLBuffer]) throws -> Int {
        var n = 0
        ids.withUnsafeBufferPointer { all in
            let ids = all.baseAddress! + spec.idsOffset
            for p in 0..<spec.count {
                let id = Int(ids[p])
                var u = slot[id]
                if u < 0 {
                    u = Int32(n)
                    slot[id] = u
                    rows[n] = Int32(id)
                    counts[n] = 0
                    n += 1
                }
                counts[Int(u)] += 1
            }
            starts[0] = 0
            for u in 0..<n { starts[u + 1] = starts[u] + counts[u]; counts[u] = starts[u] }   // counts: next free place
            for p in 0..<spec.count {
                let u = Int(slot[Int(ids[p])])
                order[Int(counts[u])] = Int32(p)
                counts[u] += 1
            }
            for u in 0..<n { slot[Int(rows[u])] = -1 }
        }
        distinct[0] = Int32(n)
        let writes: [(Int, UnsafeMutablePointer<Int32>, Int)] = [(spec.rows, rows, n), (spec.starts, starts, n + 1),
                                                                 (spec.order, order, spec.count), (spec.distinct, distinct, 1)]
        var bytes = 0
        for (buffer, data, count) in writes where count > 0 {
            try scratch[buffer].write(context, from: data, bytes: count * 4, blocking: false)
            bytes += count * 4
        }
        return bytes
    }
}
