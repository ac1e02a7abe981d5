import ArgumentParser
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Kiln: build, differentiate and run tensor graphs for training.",
        subcommands: [TrainCommand.self, EvalCommand.self, CompileCommand.self, BenchCommand.self, DevicesCommand.self, GradcheckCommand.self, SelftestCommand.self, ExportCommand.self, PredictCommand.self, GenerateCommand.self],
        defaultSubcommand: nil
    )
}
