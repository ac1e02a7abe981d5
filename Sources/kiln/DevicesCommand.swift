import ArgumentParser
import Foundation
import Kiln

/// `kiln devices`: the OpenCL platforms and devices, which one `--device gpu` takes, and the
/// matmul kernels measured fastest on each.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List OpenCL platforms and devices (KILN_OPENCL_DEVICE=<index or name> picks one), and the kernels chosen on each.",
        discussion: """
            The first time a matmul shape is loaded on a device, each candidate kernel (the vector family; the tiled \
            family at each tile that fits) is timed at that shape and the fastest kept in a cache (KILN_CACHE_DIR, \
            default ~/.cache/kiln). A candidate that lost 3x or more at two shapes is not measured again on that device.
            """
    )

    @Flag(help: "List every measured matmul shape with each candidate's time.")
    var choices = false

    func run() throws {
        let devices = try CLDevices.all()
        let options = try OpenCLOptions.fromEnvironment()
        let cache = KernelChoiceCache.shared(options)
        var platform = ""
        for d in devices {
            if d.platform != platform {
                platform = d.platform
                print("Platform: \(platform)")
            }
            print("  #\(d.index) \(d.name)  [\(d.isGPU ? "GPU" : "CPU/other")]")
            print("      \(d.computeUnits) compute units, \(formatBytes(Int(d.globalMemoryBytes))) global memory, "
                + "\(formatBytes(Int(d.localMemoryBytes))) local, max work-group \(d.maxWorkGroupSize)\(d.supportsDouble ? ", fp64" : "")"
                + ", native float vector \(d.nativeFloatWidth)")
            print("      \(d.version), driver \(d.driverVersion)")
            let entries = cache.entries(device: d)
            guard !entries.isEmpty else { continue }
            let wins = Dictionary(grouping: entries.values, by: \.choice).mapValues(\.count).sorted { $0.value > $1.value }
            print("      matmul kernels measured at \(entries.count) shapes; fastest: "
                + wins.map { "\($0.key) at \($0.value)" }.joined(separator: ", "))
            guard choices else { continue }
            for (shape, e) in entries.sorted(by: { $0.key < $1.key }) {
                let others = e.milliseconds.sorted { $0.value < $1.value }.map { String(format: "%@ %.3f ms", $0.key, $0.value) }
                print("        \(shape): \(e.choice)   [\(others.joined(separator: ", "))]")
            }
        }
        print("--device gpu takes #\(try CLDevices.choose().index)")
        if let file = cache.file { print("Kernel choices are cached in \(file.path)" + (choices ? "" : " (--choices lists them)")) }
    }
}
