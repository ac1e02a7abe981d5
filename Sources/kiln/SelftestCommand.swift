import ArgumentParser
import Foundation
import Kiln

/// `kiln selftest`: every kernel family and whole training steps on a device, compared with the
/// oracle (the CPU backend computing in Double with plain loops, unfused). It needs no Swift
/// toolchain and no fixture files, so a machine that has only a driver can check its device
/// before its benchmark figures are trusted.
struct SelftestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check a device against the CPU reference in Double: every kernel family and whole training steps.",
        discussion: """
            Each case runs a small graph (forward and gradients) or three training steps on the device in float32 \
            and on the oracle (the CPU backend in Double, plain loops, unfused) from the same seeded inputs. \
            Errors: abs = max |device - oracle|; rel = max |device - oracle| / max(1, |oracle|), which must stay \
            within the case's tolerance (as in the test suite). Exits with status 1 if any case fails.
            """
    )

    @Option(help: "cpu or gpu.")
    var device: DeviceKind = .gpu

    @Flag(name: .customLong("no-fusion"), help: "Compile the device's programs without fusion.")
    var noFusion = false

    @Option(help: "Run only the cases whose name contains this text.")
    var filter: String?

    @Flag(help: "Print one JSON object instead of a report.")
    var json = false

    @Flag(help: "The same kernel families, fusion patterns and tile edges at small sizes, and only small models' steps: for a simulator such as Oclgrind.")
    var small = false

    func run() throws {
        let description = try Devices.describe(device)
        let fusion: Bool? = noFusion ? false : nil
        let cases = (small ? DeviceCheck.small : DeviceCheck.all).filter { c in filter.map { c.name.contains($0) } ?? true }
        guard !cases.isEmpty else {
            throw KilnError.invalidArgument(op: "--filter", message: "no case name contains '\(filter ?? "")'")
        }
        let width = cases.map(\.name.count).max()! + 2
        if !json {
            print("Device \(description)")
            print("Oracle: the CPU backend in Double, plain loops, unfused. rel = |device - oracle| / max(1, |oracle|)")
            print("case".padding(toLength: width, withPad: " ", startingAt: 0) + "outputs    max abs    max rel   tolerance   seconds")
            fflush(nil)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        var results: [DeviceCheckResult] = []
        for c in cases {
            let r = c.check(on: device, fusion: fusion)
            results.append(r)
            if !json {
                print(r.line(width: width))
                fflush(nil)  // a driver crash in a later case must not swallow the lines so far
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let failed = results.filter { !$0.passed }
        if json {
            let object: [String: Any] = [
                "device": description, "fusion": try CompileOptions(fusion: fusion).resolved().fusion, "seconds": seconds,
                "passed": results.count - failed.count, "failed": failed.count, "cases": results.map(\.json),
            ]
            print(try JSONText.string(object))
        } else {
            print(String(format: "%d of %d cases passed in %.1f s", results.count - failed.count, results.count, seconds)
                + (failed.isEmpty ? "" : "; failed: " + failed.map(\.name).joined(separator: ", ")))
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
