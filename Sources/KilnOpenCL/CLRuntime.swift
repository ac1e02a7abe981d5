import COpenCL
import Foundation
import KilnGraph

/// An OpenCL context with one in-order, profiling command queue on one device. Contexts,
/// queues, buffers and programs are thread-safe in OpenCL; kernels are not, and are only
/// touched by the executable that owns them.
public final class CLContext: @unchecked Sendable {
    public let device: CLDeviceInfo
    let context: cl_context
    let queue: cl_command_queue

    public init(device: CLDeviceInfo) throws {
        var status: cl_int = 0
        var id: cl_device_id? = device.id
        guard let context = clCreateContext(nil, 1, &id, nil, nil, &status) else {
            try check(status, "clCreateContext(\(device.name))")
            throw KilnError.device("clCreateContext(\(device.name)) returned no context")
        }
        let props = cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE)
        guard let queue = clCreateCommandQueue(context, device.id, props, &status), status == CL_SUCCESS else {
            clReleaseContext(context)
            try check(status, "clCreateCommandQueue(\(device.name))")
            throw KilnError.device("clCreateCommandQueue(\(device.name)) returned no queue")
        }
        self.device = device
        self.context = context
        self.queue = queue
    }

    deinit {
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    /// Waits for everything enqueued to finish.
    public func finish() throws { try check(clFinish(queue), "clFinish") }
}

/// A device buffer.
final class CLBuffer: @unchecked Sendable {
    let mem: cl_mem
    let bytes: Int

    init(_ ctx: CLContext, bytes: Int, name: String) throws {
        guard UInt64(bytes) <= ctx.device.maxAllocationBytes else {
            throw KilnError.device("buffer '\(name)' needs \(bytes) bytes; \(ctx.device.name) allows at most \(ctx.device.maxAllocationBytes) bytes per buffer (\(ctx.device.globalMemoryBytes) in all)")
        }
        var status: cl_int = 0
        guard let mem = clCreateBuffer(ctx.context, cl_mem_flags(CL_MEM_READ_WRITE), max(bytes, 4), nil, &status), status == CL_SUCCESS else {
            try check(status, "clCreateBuffer('\(name)', \(bytes) bytes)")
            throw KilnError.device("clCreateBuffer('\(name)') returned no buffer")
        }
        self.mem = mem
        self.bytes = bytes
    }

    deinit { clReleaseMemObject(mem) }

    /// Copies host bytes in; `blocking: false` returns at once (the bytes must stay valid
    /// until the queue has run the copy).
    func write(_ ctx: CLContext, from p: UnsafeRawPointer, bytes: Int, offset: Int = 0, blocking: Bool) throws {
        try check(clEnqueueWriteBuffer(ctx.queue, mem, blocking ? cl_bool(CL_TRUE) : cl_bool(CL_FALSE), offset, bytes, p, 0, nil, nil),
                  "clEnqueueWriteBuffer(\(bytes) bytes)")
    }

    func read(_ ctx: CLContext, into p: UnsafeMutableRawPointer, bytes: Int, offset: Int = 0) throws {
        try check(clEnqueueReadBuffer(ctx.queue, mem, cl_bool(CL_TRUE), offset, bytes, p, 0, nil, nil),
                  "clEnqueueReadBuffer(\(bytes) bytes)")
    }
}

/// A built OpenCL program.
final class CLProgram: @unchecked Sendable {
    let program: cl_program

    /// Builds `source`; a failed build throws with the compiler's log. `printBuildLog`
    /// (`OpenCLOptions.debug`) writes the log of a successful build to stderr too.
    init(_ ctx: CLContext, source: String, options: String = "", printBuildLog: Bool = false) throws {
        var status: cl_int = 0
        let built: cl_program? = source.withCString { s in
            var ptr: UnsafePointer<CChar>? = s
            var len = strlen(s)
            return clCreateProgramWithSource(ctx.context, 1, &ptr, &len, &status)
        }
        guard let program = built, status == CL_SUCCESS else {
            try check(status, "clCreateProgramWithSource")
            throw KilnError.device("clCreateProgramWithSource returned no program")
        }
        self.program = program
        var id: cl_device_id? = ctx.device.id
        let result = clBuildProgram(program, 1, &id, options, nil, nil)
        if result != CL_SUCCESS {
            throw KilnError.device("clBuildProgram failed: \(clErrorName(result)) (\(result)); build log:\n\(Self.buildLog(program, ctx))")
        }
        if printBuildLog {
            let log = Self.buildLog(program, ctx)
            if !log.isEmpty { FileHandle.standardError.write(Data("OpenCL build log:\n\(log)\n".utf8)) }
        }
    }

    static func buildLog(_ program: cl_program, _ ctx: CLContext) -> String {
        var size = 0
        clGetProgramBuildInfo(program, ctx.device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
        var log = [CChar](repeating: 0, count: size + 1)
        clGetProgramBuildInfo(program, ctx.device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &log, nil)
        return String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit { clReleaseProgram(program) }
}

/// A kernel object with its arguments bound once.
final class CLKernel {
    let kernel: cl_kernel
    let name: String

    init(_ program: CLProgram, name: String) throws {
        var status: cl_int = 0
        guard let k = clCreateKernel(program.program, name, &status), status == CL_SUCCESS else {
            try check(status, "clCreateKernel(\(name))")
            throw KilnError.device("clCreateKernel(\(name)) returned no kernel")
        }
        kernel = k
        self.name = name
    }

    deinit { clReleaseKernel(kernel) }

    func set(_ index: Int, _ buffer: CLBuffer) throws {
        var m: cl_mem? = buffer.mem
        try check(clSetKernelArg(kernel, cl_uint(index), MemoryLayout<cl_mem?>.size, &m), "clSetKernelArg(\(name), \(index))")
    }

    func set(_ index: Int, int value: Int) throws {
        var v = Int32(truncatingIfNeeded: value)
        try check(clSetKernelArg(kernel, cl_uint(index), 4, &v), "clSetKernelArg(\(name), \(index))")
    }

    func set(_ index: Int, real value: Double, size: Int) throws {
        var d = value, f = Float(value)
        let status = size == 8 ? clSetKernelArg(kernel, cl_uint(index), 8, &d) : clSetKernelArg(kernel, cl_uint(index), 4, &f)
        try check(status, "clSetKernelArg(\(name), \(index))")
    }

    /// Enqueues a 1- or 2-D launch; the global size must be a multiple of the local size.
    func enqueue(_ ctx: CLContext, global: [Int], local: [Int], event: UnsafeMutablePointer<cl_event?>?) throws {
        try global.withUnsafeBufferPointer { g in
            try local.withUnsafeBufferPointer { l in
                try check(clEnqueueNDRangeKernel(ctx.queue, kernel, cl_uint(global.count), nil, g.baseAddress, l.baseAddress, 0, nil, event),
                          "clEnqueueNDRangeKernel(\(name), global \(global), local \(local))")
            }
        }
    }
}
