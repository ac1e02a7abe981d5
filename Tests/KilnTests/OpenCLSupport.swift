import Foundation
import Testing
import Kiln

/// The OpenCL context the parity tests share, or nil where no OpenCL device exists. Under
/// `KILN_REQUIRE_OPENCL=1` (set by CI) a missing device is a failure, never a skip.
enum OpenCLSupport {
    static let shared: Result<CLContext, Error> = Result { try CLContext(device: CLDevices.choose()) }

    static var context: CLContext? {
        switch shared {
        case .success(let c): return c
        case .failure(let e):
            if ProcessInfo.processInfo.environment["KILN_REQUIRE_OPENCL"] == "1" {
                Issue.record("KILN_REQUIRE_OPENCL=1 but no OpenCL device: \(e)")
            }
            return nil
        }
    }
}

/// Runs `graph`'s `fetch` on OpenCL (fused or not) and on the oracle, through the library's
/// comparison (`DeviceCheck.compare`, which `kiln selftest` uses too).
/// `matmul` picks the matmul kernel family (tiled or vector; nil: the device's own).
func openCLAndReference(_ graph: Graph, fetch: [Tensor], values: [Tensor: HostTensor], fusion: Bool,
                        context: CLContext, matmul: String? = nil) throws -> (device: [HostTensor], reference: [HostTensor]) {
    let (device, oracle) = try DeviceCheck.compare(graph, fetch: fetch, values: values, fusion: fusion) {
        try OpenCLExecutable(program: $0, context: context, matmul: matmul)
    }
    return (device, oracle)
}

/// The `kiln` executable built beside the test binary (the test target depends on it), or nil
/// after recording an issue.
func kilnExecutable() -> URL? {
    let kiln = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kiln")
    guard FileManager.default.isExecutableFile(atPath: kiln.path) else {
        Issue.record("the kiln executable is not beside the test binary at \(kiln.path)")
        return nil
    }
    return kiln
}

/// Runs a program to its end (with `environment` added to this process's): its exit status
/// and its output (stdout and stderr together).
func runProgram(_ url: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = url
    p.arguments = arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}
