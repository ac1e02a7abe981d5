import ArgumentParser
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Kiln: build, differentiate and run tensor graphs for training.",
        subcommands: [GradcheckCommand.self, DevicesCommand.self],
        defaultSubcommand: GradcheckCommand.self
    )
}
