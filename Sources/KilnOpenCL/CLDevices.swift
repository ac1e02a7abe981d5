import COpenCL
import Foundation
import KilnGraph

/// An OpenCL device and what it offers.
public struct CLDeviceInfo: @unchecked Sendable, CustomStringConvertible {
    public let index: Int
    public let platform: String
    public let name: String
    public let isGPU: Bool
    public let globalMemoryBytes: UInt64
    public let maxAllocationBytes: UInt64
    public let computeUnits: Int
    public let maxWorkGroupSize: Int
    public let localMemoryBytes: UInt64
    public let supportsDouble: Bool
    /// Floats per native vector (8 with AVX2, 16 with AVX-512).
    public let nativeFloatWidth: Int
    /// The OpenCL version the device supports (`CL_DEVICE_VERSION`) and its driver's version
    /// (`CL_DRIVER_VERSION`): with the platform and name, what kernel choices are cached under.
    public let version: String
    public let driverVersion: String
    let id: cl_device_id
    let platformID: cl_platform_id

    public var description: String {
        "#\(index) \(name) [\(isGPU ? "GPU" : "CPU/other")] on \(platform): \(computeUnits) compute units, "
            + "\(globalMemoryBytes >> 20) MiB global, \(localMemoryBytes >> 10) KiB local, max work-group \(maxWorkGroupSize)"
            + (supportsDouble ? ", fp64" : "")
    }
}

/// Finding OpenCL platforms and devices.
public enum CLDevices {
    static let installHint = "no OpenCL platform found: install an OpenCL driver (for the CPU: apt-get install pocl-opencl-icd ocl-icd-libopencl1; for an NVIDIA GPU, its driver's OpenCL ICD)"

    /// Every device of every platform, in platform order.
    public static func all() throws -> [CLDeviceInfo] {
        PoCLThreads.configure
        var count: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &count)
        if status == -1001 || (status == CL_SUCCESS && count == 0) { throw KilnError.device(installHint) }
        try check(status, "clGetPlatformIDs")
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        try check(clGetPlatformIDs(count, &platforms, nil), "clGetPlatformIDs")
        var devices: [CLDeviceInfo] = []
        for case let platform? in platforms {
            let pname = try platformString(platform, cl_platform_info(CL_PLATFORM_NAME))
            var n: cl_uint = 0
            let s = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n)
            if s == CL_DEVICE_NOT_FOUND || n == 0 { continue }
            try check(s, "clGetDeviceIDs")
            var ids = [cl_device_id?](repeating: nil, count: Int(n))
            try check(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &ids, nil), "clGetDeviceIDs")
            for case let id? in ids {
                let type: cl_device_type = try deviceValue(id, CL_DEVICE_TYPE)
                let fp64: cl_device_fp_config = try deviceValue(id, CL_DEVICE_DOUBLE_FP_CONFIG)
                devices.append(CLDeviceInfo(
                    index: devices.count, platform: pname, name: try deviceString(id, CL_DEVICE_NAME),
                    isGPU: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0,
                    globalMemoryBytes: try deviceValue(id, CL_DEVICE_GLOBAL_MEM_SIZE),
                    maxAllocationBytes: try deviceValue(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE),
                    computeUnits: Int(try deviceValue(id, CL_DEVICE_MAX_COMPUTE_UNITS) as cl_uint),
                    maxWorkGroupSize: Int(try deviceValue(id, CL_DEVICE_MAX_WORK_GROUP_SIZE) as Int),
                    localMemoryBytes: try deviceValue(id, CL_DEVICE_LOCAL_MEM_SIZE),
                    supportsDouble: fp64 != 0,
                    nativeFloatWidth: Int(try deviceValue(id, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT) as cl_uint),
                    version: try deviceString(id, CL_DEVICE_VERSION), driverVersion: try deviceString(id, CL_DRIVER_VERSION),
                    id: id, platformID: platform))
            }
        }
        if devices.isEmpty { throw KilnError.device(installHint) }
        return devices
    }

    /// The device `OpenCLOptions.fromEnvironment()` asks for (`KILN_OPENCL_DEVICE`); see
    /// `choose(_:localRank:)`.
    public static func choose(localRank: Int = 0) throws -> CLDeviceInfo {
        try choose(OpenCLOptions.fromEnvironment().device, localRank: localRank)
    }

    /// The device to use: `request` (`OpenCLOptions.device`: an index, or a fragment of the
    /// device or platform name) when given, else the first GPU, else the first device.
    ///
    /// With several GPUs and no request, the process with local rank `localRank` (its index
    /// among a job's processes on this machine) takes GPU `localRank % count`.
    public static func choose(_ request: String?, localRank: Int = 0) throws -> CLDeviceInfo {
        let devices = try all()
        if let request, !request.isEmpty {
            if let i = Int(request) {
                guard i >= 0 && i < devices.count else {
                    throw KilnError.device("KILN_OPENCL_DEVICE=\(request): no device with that index; devices are 0..<\(devices.count) (see `kiln devices`)")
                }
                return devices[i]
            }
            let fragment = request.lowercased()
            guard let d = devices.first(where: { $0.name.lowercased().contains(fragment) || $0.platform.lowercased().contains(fragment) }) else {
                throw KilnError.device("KILN_OPENCL_DEVICE=\(request): no device name or platform contains it (see `kiln devices`)")
            }
            return d
        }
        let gpus = devices.filter(\.isGPU)
        return gpus.isEmpty ? devices[0] : gpus[localRank % gpus.count]
    }

    static func platformString(_ p: cl_platform_id, _ what: cl_platform_info) throws -> String {
        var size = 0
        try check(clGetPlatformInfo(p, what, 0, nil, &size), "clGetPlatformInfo")
        var bytes = [CChar](repeating: 0, count: size + 1)
        try check(clGetPlatformInfo(p, what, size, &bytes, nil), "clGetPlatformInfo")
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func deviceString(_ d: cl_device_id, _ what: Int32) throws -> String {
        var size = 0
        try check(clGetDeviceInfo(d, cl_device_info(what), 0, nil, &size), "clGetDeviceInfo")
        var bytes = [CChar](repeating: 0, count: size + 1)
        try check(clGetDeviceInfo(d, cl_device_info(what), size, &bytes, nil), "clGetDeviceInfo")
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
    }

    static func deviceValue<T: FixedWidthInteger>(_ d: cl_device_id, _ what: Int32) throws -> T {
        var v: T = 0
        try check(clGetDeviceInfo(d, cl_device_info(what), MemoryLayout<T>.size, &v, nil), "clGetDeviceInfo")
        return v
    }
}
