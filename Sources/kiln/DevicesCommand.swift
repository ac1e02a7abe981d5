import ArgumentParser
import Kiln

/// `kiln devices`: the OpenCL platforms and devices, and which one `--device gpu` takes.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List OpenCL platforms and devices (KILN_OPENCL_DEVICE=<index or name> picks one)."
    )

    func run() throws {
        let devices = try CLDevices.all()
        var platform = ""
        for d in devices {
            if d.platform != platform {
                platform = d.platform
                print("Platform: \(platform)")
            }
            print("  #\(d.index) \(d.name)  [\(d.isGPU ? "GPU" : "CPU/other")]")
            print("      \(d.computeUnits) compute units, \(formatBytes(Int(d.globalMemoryBytes))) global memory, "
                + "\(formatBytes(Int(d.localMemoryBytes))) local, max work-group \(d.maxWorkGroupSize)\(d.supportsDouble ? ", fp64" : "")")
        }
        print("--device gpu takes #\(try CLDevices.choose().index)")
    }
}
