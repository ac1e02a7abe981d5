import ArgumentParser
import Foundation
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Kiln: build, differentiate and run tensor graphs for training.",
        subcommands: [TrainCommand.self, EvalCommand.self, CompileCommand.self, BenchCommand.self, DevicesCommand.self, GradcheckCommand.self, SelftestCommand.self, ExportCommand.self, PredictCommand.self, GenerateCommand.self],
        defaultSubcommand: nil
    )

    static func main() {
        // OpenBLAS chose its kernels when it loaded: when it fell back to old ones on a CPU that
        // has AVX2 or AVX-512 (a virtual machine's generic CPU model), start again with the
        // right ones named.
        if let core = BLASCore.mismatch {
            setenv("OPENBLAS_CORETYPE", core, 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // exec failed: go on with the slow kernels.
            unsetenv("OPENBLAS_CORETYPE")
        }
        main(nil)
    }
}
