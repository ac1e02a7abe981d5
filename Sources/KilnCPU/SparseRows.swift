import KilnCompiler
import KilnGraph

/// An embedding gradient held as the rows a batch touched, for the update that reads it.
///
/// A `scatterAdd` whose sum only an elementwise update reads (the embedding table's optimizer
/// step) need not fill a dense `[rows, D]` tensor with zeros and then have the update read it
/// all back: the scatter sums each touched row into a compact buffer, and the update's load of
/// the gradient gives zeros except at those rows. The sums are the same, added in the same
/// order, so results are bitwise those of the dense path; the table's update still touches
/// every row (momentum decays untouched rows too).
final class SparseRows<T: KilnFloat>: @unchecked Sendable {
    let rows: Int, dim: Int
    /// Per table row: its place in `values`, or -1 when this batch did not touch it.
    private let slot: UnsafeMutablePointer<Int32>
    private let touched: UnsafeMutablePointer<Int32>
    private var touchedCount = 0
    private let values: UnsafeMutablePointer<T>

    init(rows: Int, dim: Int, positions: Int) {
        self.rows = rows
        self.dim = dim
        slot = .allocate(capacity: max(rows, 1))
        slot.initialize(repeating: -1, count: max(rows, 1))
        touched = .allocate(capacity: max(positions, 1))
        values = .allocate(capacity: max(positions * dim, 1))
    }

    deinit {
        slot.deallocate()
        touched.deallocate()
        values.deallocate()
    }

    /// Sums `values[p]` into the row of `ids[p]`, in order of p.
    func scatter(ids: UnsafePointer<Int32>, count: Int, from source: UnsafePointer<T>, op: String) throws {
        for t in 0..<touchedCount { slot[Int(touched[t])] = -1 }
        touchedCount = 0
        for p in 0..<count {
            let id = Int(ids[p])
            guard id >= 0 && id < rows else {
                throw KilnError.invalidValue(op: op, message: "id \(id) at flat position \(p) is outside the table's rows [0, \(rows))")
            }
            var s = Int(slot[id])
            if s < 0 {
                s = touchedCount
                slot[id] = Int32(s)
                touched[s] = Int32(id)
                touchedCount += 1
                (values + s * dim).update(repeating: 0, count: dim)
            }
            let row = values + s * dim, from = source + p * dim
            for d in 0..<dim { row[d] += from[d] }
        }
    }

    /// The dense gradient's elements `start ..< start + n` (flat), into `r`.
    func load(start: Int, n: Int, into r: UnsafeMutablePointer<T>) {
        r.update(repeating: 0, count: n)
        guard n > 0, dim > 0 else { return }
        for row in start / dim...(start + n - 1) / dim {
            let s = Int(slot[row])
            guard s >= 0 else { continue }
            let lo = max(start, row * dim), hi = min(start + n, (row + 1) * dim)
            (r + (lo - start)).update(from: values + s * dim + (lo - row * dim), count: hi - lo)
        }
    }

    /// The scatterAdd kernels of `program` whose sum one elementwise kernel alone reads, at
    /// its own shape: by scatterAdd index, the reader's index and the reader's input index.
    static func candidates(in program: Program) -> [Int: (reader: Int, input: Int)] {
        var found: [Int: (Int, Int)] = [:]
        let fetched = Set(program.fetches.map(\.location))
        for (s, kernel) in program.kernels.enumerated() {
            guard case .node(.scatterAdd) = kernel.kind, let g = kernel.outputs.first, !fetched.contains(g.location) else { continue }
            var readers: [(Int, Int)] = []
            for (k, other) in program.kernels.enumerated() where k > s {
                for (i, input) in other.inputs.enumerated() where input.location == g.location { readers.append((k, i)) }
                // Past the reader the arena may give the place to another tensor: stop at a writer.
                if other.outputs.contains(where: { $0.location == g.location }) { break }
            }
            guard readers.count == 1, let (k, i) = readers.first, case .elementwise(let code) = program.kernels[k].kind,
                  code.shape == g.shape, program.kernels[k].inputs[i].shape == g.shape else { continue }
            found[s] = (k, i)
        }
        return found
    }
}
