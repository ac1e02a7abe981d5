import Foundation
import Testing
import Kiln

/// Device faults give clear errors, never crashes.
@Suite struct DeviceFaultTests {
    /// With no OpenCL platform at all (an empty ICD directory), `kiln` says what to install.
    @Test func noPlatformSaysWhatToInstall() throws {
        guard let kiln = kilnExecutable() else { return }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-no-icd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let p = Process()
        p.executableURL = kiln
        p.arguments = ["devices"]
        p.environment = ProcessInfo.processInfo.environment.merging(["OCL_ICD_VENDORS": empty.path]) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 1)
        #expect(message.contains("no OpenCL platform found") && message.contains("pocl-opencl-icd"), "\(message)")
    }

    /// A device lost mid-run (injected: PoCL cannot lose its device) surfaces as an error
    /// naming the call and the OpenCL error; the executable stays usable afterwards.
    @Test func lostDeviceIsNamed() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let m = try ClassifierGraph.mlp(batch: 4, sizes: [3, 4, 2])
        let exe = try OpenCLExecutable(program: Compiler.compile(m.graph, fetch: [m.loss]), context: ctx)
        for (t, v) in try m.parameters.initialValues(seed: 1) { try exe.write(t, v) }
        let batch = try m.randomBatch(seed: 2)
        _ = try exe.run(feeds: batch)
        exe.injectedFault = -2   // CL_DEVICE_NOT_AVAILABLE
        do {
            _ = try exe.run(feeds: batch)
            Issue.record("the injected fault went unnoticed")
        } catch {
            #expect("\(error)".contains("clFinish") && "\(error)".contains("CL_DEVICE_NOT_AVAILABLE"), "\(error)")
        }
        #expect(try exe.run(feeds: batch)[0].scalarValue.isFinite)
    }
}
