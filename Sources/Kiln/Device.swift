import Foundation

/// Where a compiled program runs.
public enum DeviceKind: String, Sendable, CaseIterable {
    /// The host CPU backend.
    case cpu
    /// OpenCL: a GPU when there is one, else the first OpenCL device (PoCL on the CPU).
    case gpu
}

/// Loading programs on a device kind; one OpenCL context per process, made on first use.
public enum Devices {
    nonisolated(unsafe) private static var sharedContext: CLContext?
    private static let lock = NSLock()
    /// In a data-parallel job: this process's index among the job's processes on this
    /// machine, and their number. Set before the first OpenCL use; `--device gpu` then takes
    /// GPU `rank % GPUs` (processes share a device when there are fewer GPUs than processes).
    nonisolated(unsafe) public static var local: (rank: Int, size: Int) = (0, 1)

    /// Declares this process rank `rank` of the `size` processes of a job on this machine:
    /// `--device gpu` takes GPU `rank % GPUs`, and the CPU backend (and PoCL, when it runs the
    /// OpenCL device) use their share of the cores and bind no threads. Call before the first
    /// program is loaded; loading one with an `MPICollective` calls it when nothing did.
    public static func shareMachine(rank: Int, size: Int) {
        local = (rank, size)
        CPUThreads.share(processes: size)
        // PoCL reads this when OpenCL is first used, which has not happened yet.
        if size > 1 && ProcessInfo.processInfo.environment["POCL_MAX_PTHREAD_COUNT"] == nil {
            setenv("POCL_MAX_PTHREAD_COUNT", "\(max(1, ProcessInfo.processInfo.activeProcessorCount / size))", 0)
        }
        // Every process would pin its PoCL workers to the same first cores.
        if size > 1 { setenv("POCL_AFFINITY", "0", 0) }
    }

    /// The process's OpenCL context (chosen by `CLDevices.choose`, so `KILN_OPENCL_DEVICE`
    /// applies).
    public static func openCLContext() throws -> CLContext {
        lock.lock()
        defer { lock.unlock() }
        if let c = sharedContext { return c }
        let c = try CLContext(device: CLDevices.choose(localRank: local.rank))
        sharedContext = c
        return c
    }

    /// The float type programs for this device compute in.
    public static func realType(for device: DeviceKind) -> DType { .float32 }

    /// How to compile a program for `device`: its float type, recomputation where fused code
    /// runs in registers (OpenCL), and elementwise kernels in place (see
    /// `CompileOptions.recompute` and `inPlace`).
    public static func compileOptions(for device: DeviceKind, fusion: Bool? = nil) -> CompileOptions {
        CompileOptions(fusion: fusion, realType: realType(for: device), recompute: device != .cpu, inPlace: true)
    }

    /// Compiles `graph` for `device` and loads it.
    public static func load(_ graph: Graph, fetch: [Tensor], on device: DeviceKind, fusion: Bool? = nil) throws -> Executable {
        let program = try Compiler.compile(graph, fetch: fetch, options: compileOptions(for: device, fusion: fusion))
        return try load(program, on: device)
    }

    /// Loads a compiled program on `device`; its all-reduces sum over `collective`'s processes.
    public static func load(_ program: Program, on device: DeviceKind, collective: Collective? = nil) throws -> Executable {
        if let job = collective as? MPICollective, job.localSize > 1, local.size == 1 {
            shareMachine(rank: job.localRank, size: job.localSize)
        }
        switch device {
        case .cpu: return try CPUExecutable<Float>(program: program, collective: collective)
        case .gpu: return try OpenCLExecutable(program: program, context: openCLContext(), collective: collective)
        }
    }

    /// One line naming the device a kind resolves to.
    public static func describe(_ device: DeviceKind) throws -> String {
        switch device {
        case .cpu: return "cpu: host (\(ProcessInfo.processInfo.activeProcessorCount) cores)"
        case .gpu:
            let d = try openCLContext().device
            var text = "gpu: OpenCL \(d.name) on \(d.platform)\(d.isGPU ? "" : " (no GPU found; an OpenCL CPU device)")"
            if local.size > 1 {
                let gpus = try CLDevices.all().filter(\.isGPU).count
                text += gpus >= local.size ? " (GPU \(local.rank % max(gpus, 1)) of \(gpus), one per process)"
                    : " (shared by the \(local.size) processes on this machine: \(max(gpus, 1)) device\(gpus > 1 ? "s" : "") for \(local.size) processes)"
            }
            return text
        }
    }
}
