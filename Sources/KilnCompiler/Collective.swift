import KilnGraph

/// The processes of a data-parallel job, as the backends see them: each runs the same program
/// on its own shard of the batch, and `allReduce` kernels sum their tensors across all of them.
///
/// Backends call it from the thread that runs the program. `Kiln.MPICollective` implements it
/// over MPI; without one, a program's all-reduces return their input (a job of one process).
public protocol Collective: AnyObject {
    /// This process's index in the job, in `0..<size`.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Starts summing `count` values of `dtype` (float32, float64 or int32) at `data` in place
    /// across all processes, and returns a handle for `wait`. `data` must stay untouched until then.
    func startSum(_ data: UnsafeMutableRawPointer, count: Int, dtype: DType) throws -> Int
    /// Returns once the sum started under `handle` is in its buffer.
    func wait(_ handle: Int) throws
    /// Lets sums in flight progress while the caller computes (MPI advances non-blocking
    /// collectives inside its own calls).
    func progress() throws
}

extension Collective {
    /// Sums `values` across all processes and returns the total (blocking).
    public func sum(_ values: [Double]) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            try wait(startSum(base, count: values.count, dtype: .float64))
        }
        return v
    }
}
