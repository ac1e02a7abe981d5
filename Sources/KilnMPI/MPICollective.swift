#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KilnCompiler
import KilnGraph

/// The processes of an MPI job (`MPI_COMM_WORLD`), for data-parallel training.
///
/// `world()` initializes MPI once per process. Every call returns MPI's errors (the
/// communicator's handler is `MPI_ERRORS_RETURN`) and throws them, naming the call.
public final class MPICollective: Collective, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// This process's index among the job's processes on the same machine, and their number
    /// (Open MPI's `OMPI_COMM_WORLD_LOCAL_RANK` / `_LOCAL_SIZE`): the usual way to give each
    /// process its own GPU.
    public let localRank: Int
    public let localSize: Int
    /// The MPI library that was loaded.
    public var library: String { mpi.path }
    let mpi: MPILibrary
    private var requests: [Int: UnsafeMutableRawPointer?] = [:]
    private var nextHandle = 0
    private var finished = false

    nonisolated(unsafe) private static var shared: MPICollective?
    private static let lock = NSLock()

    /// Whether `mpirun` (or another MPI launcher) started this process, by the variables it sets.
    public static func launchedByMPI(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil || environment["PMI_SIZE"] != nil
    }

    /// The job this process belongs to, initializing MPI on first use.
    public static func world() throws -> MPICollective {
        lock.lock()
        defer { lock.unlock() }
        if let s = shared { return s }
        let s = try MPICollective(environment: ProcessInfo.processInfo.environment)
        shared = s
        return s
    }

    private init(environment: [String: String]) throws {
        let mpi = try MPILibrary(settings: MPISettings.fromEnvironment(environment))
        self.mpi = mpi
        var already: Int32 = 0
        try mpi.check(mpi.initialized(&already), "MPI_Initialized")
        if already == 0 {
            var provided: Int32 = 0
            // FUNNELED: only the thread that runs the step calls MPI (batches are built on
            // other threads, which never do).
            try mpi.check(mpi.initThread(nil, nil, MPILibrary.threadFunneled, &provided), "MPI_Init_thread")
        }
        try mpi.check(mpi.setErrhandler(mpi.commWorld, mpi.errorsReturn), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, n: Int32 = 0
        try mpi.check(mpi.commRank(mpi.commWorld, &r), "MPI_Comm_rank")
        try mpi.check(mpi.commSize(mpi.commWorld, &n), "MPI_Comm_size")
        rank = Int(r)
        size = Int(n)
        localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init) ?? 0
        localSize = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
    }

    // MARK: Collective

    public func startSum(_ data: UnsafeMutableRawPointer, count: Int, dtype: DType) throws -> Int {
        guard count <= Int(Int32.max) else {
            throw KilnError.invalidArgument(op: "allReduce", message: "\(count) values exceed MPI's count limit; use smaller buckets (KILN_BUCKET_BYTES)")
        }
        var request: UnsafeMutableRawPointer?
        try mpi.check(mpi.iallreduce(MPILibrary.inPlace, data, Int32(count), mpi.datatype(dtype), mpi.sum, mpi.commWorld, &request),
                      "MPI_Iallreduce(\(count) \(dtype))")
        nextHandle += 1
        requests[nextHandle] = request
        return nextHandle
    }

    public func wait(_ handle: Int) throws {
        guard var request = requests.removeValue(forKey: handle) else { return }
        try mpi.check(mpi.wait(&request, nil), "MPI_Wait")
    }

    public func progress() throws {
        for (handle, var request) in requests where request != nil {
            var done: Int32 = 0
            try mpi.check(mpi.test(&request, &done, nil), "MPI_Test")
            requests[handle] = request   // MPI sets a completed request to MPI_REQUEST_NULL
        }
    }

    // MARK: Host-side collectives

    /// Sums int32 values across all processes (blocking).
    public func sum(_ values: [Int32]) throws -> [Int32] {
        var v = values
        try v.withUnsafeMutableBytes { raw in
            try mpi.check(mpi.allreduce(MPILibrary.inPlace, raw.baseAddress, Int32(values.count), mpi.int32, mpi.sum, mpi.commWorld),
                          "MPI_Allreduce(\(values.count) int32)")
        }
        return v
    }

    /// Copies `bytes` bytes at `data` from process `root` to every other process.
    public func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int = 0) throws {
        var done = 0
        while done < bytes {
            let chunk = min(bytes - done, 1 << 30)
            try mpi.check(mpi.bcast(data + done, Int32(chunk), mpi.byte, Int32(root), mpi.commWorld), "MPI_Bcast(\(chunk) bytes)")
            done += chunk
        }
    }

    /// Every process's `text`, by rank.
    public func gather(_ text: String) throws -> [String] {
        var length = Int32(text.utf8.count)
        var lengths = [Int32](repeating: 0, count: size)
        try lengths.withUnsafeMutableBytes { out in
            try mpi.check(mpi.allgather(&length, 1, mpi.int32, out.baseAddress, 1, mpi.int32, mpi.commWorld), "MPI_Allgather(lengths)")
        }
        let width = Int(lengths.max() ?? 0) + 1
        var mine = [UInt8](text.utf8) + [UInt8](repeating: 0, count: width - text.utf8.count)
        var all = [UInt8](repeating: 0, count: width * size)
        try mine.withUnsafeMutableBytes { m in
            try all.withUnsafeMutableBytes { a in
                try mpi.check(mpi.allgather(m.baseAddress, Int32(width), mpi.byte, a.baseAddress, Int32(width), mpi.byte, mpi.commWorld),
                              "MPI_Allgather(\(width) bytes)")
            }
        }
        return (0..<size).map { r in String(decoding: all[r * width..<r * width + Int(lengths[r])], as: UTF8.self) }
    }

    /// Waits for every process.
    public func barrier() throws {
        try mpi.check(mpi.barrier(mpi.commWorld), "MPI_Barrier")
    }

    /// Ends the whole job at once: every process stops (mpirun reports this rank and `code`).
    /// For failures after which the other processes would wait forever in a collective.
    public func abort(code: Int32) -> Never {
        _ = mpi.abort(mpi.commWorld, code)
        exit(code)
    }

    /// Leaves MPI; every process must call it before exiting normally.
    public func finalize() {
        guard !finished else { return }
        finished = true
        var done: Int32 = 0
        _ = mpi.finalized(&done)
        if done == 0 { _ = mpi.finalize() }
    }
}
