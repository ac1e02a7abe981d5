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

    /// The process's OpenCL context (chosen by `CLDevices.choose`, so `KILN_OPENCL_DEVICE`
    /// applies).
    public static func openCLContext() throws -> CLContext {
        lock.lock()
        defer { lock.unlock() }
        if let c = sharedContext { return c }
        let c = try CLContext(device: CLDevices.choose())
        sharedContext = c
        return c
    }

    /// The float type programs for this device compute in.
    public static func realType(for device: DeviceKind) -> DType { .float32 }

    /// Compiles `graph` for `device` and loads it.
    public static func load(_ graph: Graph, fetch: [Tensor], on device: DeviceKind, fusion: Bool? = nil) throws -> Executable {
        let program = try Compiler.compile(graph, fetch: fetch, options: CompileOptions(fusion: fusion, realType: realType(for: device)))
        return try load(program, on: device)
    }

    /// Loads a compiled program on `device`.
    public static func load(_ program: Program, on device: DeviceKind) throws -> Executable {
        switch device {
        case .cpu: return try CPUExecutable<Float>(program: program)
        case .gpu: return try OpenCLExecutable(program: program, context: openCLContext())
        }
    }

    /// One line naming the device a kind resolves to.
    public static func describe(_ device: DeviceKind) throws -> String {
        switch device {
        case .cpu: return "cpu: host (\(ProcessInfo.processInfo.activeProcessorCount) cores)"
        case .gpu:
            let d = try openCLContext().device
            return "gpu: OpenCL \(d.name) on \(d.platform)\(d.isGPU ? "" : " (no GPU found; an OpenCL CPU device)")"
        }
    }
}
