import Foundation
import Testing
import Kiln

/// The programs under Examples/ (built beside the test binary) run briefly and train: each
/// prints `final loss X` last, which must fall below the threshold stated here.
@Suite struct ExampleTests {
    /// Runs an example and returns its final loss and its whole output.
    static func run(_ name: String, _ arguments: [String]) throws -> (loss: Double?, output: String) {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            Issue.record("the \(name) example is not beside the test binary at \(binary.path)")
            return (nil, "")
        }
        let (status, text) = try runProgram(binary, arguments)
        #expect(status == 0, "\(name) failed: \(text)")
        let last = text.split(separator: "\n").last { $0.hasPrefix("final loss ") }
        return (last.flatMap { Double($0.dropFirst("final loss ".count)) }, text)
    }

    /// sin(3x) by an MLP with MSE, 70 epochs of 16 Adam steps on the CPU: below 1e-3 (it
    /// reaches about 4e-4).
    @Test func regression() throws {
        let (loss, output) = try Self.run("regression", ["70", "cpu"])
        #expect((loss ?? .infinity) < 1e-3, "\(output)")
    }

    /// The same model trained by two processes under mpirun follows one process: the losses
    /// after 5 epochs agree to 1e-5 relative (float32 sums in another order).
    @Test func regressionUnderTwoProcesses() throws {
        guard let mpirun = DataParallelTests.requireMPI() else { return }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("regression")
        let one = try Self.run("regression", ["5", "cpu"]).loss
        let (status, output) = try runProgram(mpirun, ["--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none", "-np", "2",
                                                       binary.path, "5", "cpu"],
                                              environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
        #expect(status == 0, "\(output)")
        let two = output.split(separator: "\n").last { $0.hasPrefix("final loss ") }.flatMap { Double($0.dropFirst("final loss ".count)) }
        guard let one, let two else { Issue.record("no final loss: \(output)"); return }
        #expect(abs(one - two) <= 1e-5 * abs(one), "one process \(one), two \(two)")
    }

    /// The autoencoder, 150 steps: reconstruction cross-entropy on test images below 0.40 (from
    /// 0.69 at the start; about 0.35 after 150 steps).
    @Test func autoencoder() throws {
        guard OpenCLSupport.context != nil, try TrainingTests.fashionMNIST() != nil else { return }
        let (loss, output) = try Self.run("autoencoder", ["150", "gpu"])
        #expect((loss ?? .infinity) < 0.40, "\(output)")
    }

    /// The classifier with its own loop, one epoch: test accuracy above 0.80 (about 0.84), the
    /// label-smoothed loss below 1.0.
    @Test func classifier() throws {
        guard OpenCLSupport.context != nil, try TrainingTests.fashionMNIST() != nil else { return }
        let (loss, output) = try Self.run("classifier", ["1", "gpu"])
        #expect((loss ?? .infinity) < 1.0, "\(output)")
        let accuracy = output.split(separator: "\n").last { $0.contains("test accuracy") }.flatMap { Double($0.split(separator: " ").last!) }
        #expect((accuracy ?? 0) > 0.80, "\(output)")
    }
}
