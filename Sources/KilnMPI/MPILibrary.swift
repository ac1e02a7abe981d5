#if canImport(Glibc)
import Glibc
#endif
import KilnGraph

/// Open MPI's C API, opened at run time with dlopen.
///
/// Loading MPI only when a job runs under `mpirun` keeps the `kiln` binary free of a link
/// dependency on it: it runs unchanged on machines without MPI. Open MPI's handles
/// (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, ...) are addresses of library globals
/// (`&ompi_mpi_comm_world`, ...), found here with dlsym; `MPI_IN_PLACE` is `(void *)1` and
/// `MPI_STATUS_IGNORE` is NULL (Open MPI's mpi.h).
final class MPILibrary: @unchecked Sendable {
    typealias Handle = UnsafeMutableRawPointer
    typealias InitThread = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    typealias NoArgs = @convention(c) () -> Int32
    typealias IntOut = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    typealias CommIntOut = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias CommHandle = @convention(c) (Handle, Handle) -> Int32
    typealias Allreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    typealias Iallreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle,
                                           UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int32
    typealias Wait = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutableRawPointer?) -> Int32
    typealias Test = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32
    typealias Bcast = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    typealias Allgather = @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle) -> Int32
    typealias Abort = @convention(c) (Handle, Int32) -> Int32
    typealias CommOnly = @convention(c) (Handle) -> Int32
    typealias ErrorString = @convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32

    nonisolated(unsafe) static let inPlace = UnsafeRawPointer(bitPattern: 1)
    static let threadFunneled: Int32 = 1

    let path: String
    let initThread: InitThread
    let initialized: IntOut
    let finalized: IntOut
    let finalize: NoArgs
    let commRank: CommIntOut
    let commSize: CommIntOut
    let setErrhandler: CommHandle
    let allreduce: Allreduce
    let iallreduce: Iallreduce
    let wait: Wait
    let test: Test
    let bcast: Bcast
    let allgather: Allgather
    let abort: Abort
    let barrier: CommOnly
    let errorString: ErrorString

    let commWorld: Handle
    let float: Handle, double: Handle, int32: Handle, byte: Handle
    let sum: Handle, max: Handle
    let errorsReturn: Handle

    /// Opens Open MPI's library: `settings.library` (`KILN_MPI_LIBRARY`), else `libmpi.so.40`
    /// (Open MPI 3 and 4), else `libmpi.so`.
    init(settings: MPISettings) throws {
        let candidates = settings.library.map { [$0] } ?? ["libmpi.so.40", "libmpi.so"]
        var errors: [String] = []
        var opened: UnsafeMutableRawPointer?
        var openedPath = ""
        for name in candidates {
            // RTLD_GLOBAL: Open MPI's own plug-ins look up libmpi's symbols when it loads them.
            if let h = dlopen(name, RTLD_NOW | RTLD_GLOBAL) {
                opened = h
                openedPath = name
                break
            }
            errors.append(String(cString: dlerror()))
        }
        guard let lib = opened else {
            throw KilnError.device("MPI: could not load Open MPI's library (\(errors.joined(separator: "; "))); install it (Debian: apt-get install openmpi-bin libopenmpi-dev) or set KILN_MPI_LIBRARY")
        }
        path = openedPath
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let p = dlsym(lib, name) else {
                throw KilnError.device("MPI: \(openedPath) has no symbol \(name): Kiln needs Open MPI (other MPI libraries define their handles differently)")
            }
            return p
        }
        func function<F>(_ name: String, _ type: F.Type) throws -> F { unsafeBitCast(try symbol(name), to: F.self) }
        initThread = try function("MPI_Init_thread", InitThread.self)
        initialized = try function("MPI_Initialized", IntOut.self)
        finalized = try function("MPI_Finalized", IntOut.self)
        finalize = try function("MPI_Finalize", NoArgs.self)
        commRank = try function("MPI_Comm_rank", CommIntOut.self)
        commSize = try function("MPI_Comm_size", CommIntOut.self)
        setErrhandler = try function("MPI_Comm_set_errhandler", CommHandle.self)
        allreduce = try function("MPI_Allreduce", Allreduce.self)
        iallreduce = try function("MPI_Iallreduce", Iallreduce.self)
        wait = try function("MPI_Wait", Wait.self)
        test = try function("MPI_Test", Test.self)
        bcast = try function("MPI_Bcast", Bcast.self)
        allgather = try function("MPI_Allgather", Allgather.self)
        abort = try function("MPI_Abort", Abort.self)
        barrier = try function("MPI_Barrier", CommOnly.self)
        errorString = try function("MPI_Error_string", ErrorString.self)
        commWorld = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float")
        double = try symbol("ompi_mpi_double")
        int32 = try symbol("ompi_mpi_int")
        byte = try symbol("ompi_mpi_byte")
        sum = try symbol("ompi_mpi_op_sum")
        max = try symbol("ompi_mpi_op_max")
        errorsReturn = try symbol("ompi_mpi_errors_return")
    }

    /// Throws unless `code` is MPI_SUCCESS, naming the call and MPI's message.
    func check(_ code: Int32, _ call: @autoclosure () -> String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 512)
        var length: Int32 = 0
        _ = errorString(code, &text, &length)
        let message = String(decoding: text.prefix(Int(Swift.max(0, Swift.min(length, 511)))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw KilnError.device("\(call()) failed: \(message) (MPI error \(code))")
    }

    func datatype(_ dtype: DType) -> Handle {
        switch dtype {
        case .float32: return float
        case .float64: return double
        case .int32: return int32
        }
    }
}
