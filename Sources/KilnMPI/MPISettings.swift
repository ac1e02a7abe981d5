import Foundation
import KilnGraph

/// The MPI layer's settings from the environment: the one place that reads `KILN_MPI_LIBRARY`.
public struct MPISettings: Sendable, Equatable {
    /// The MPI library to open (`KILN_MPI_LIBRARY`: a file name or path for `dlopen`). Default
    /// nil: `libmpi.so.40` (Open MPI 3 and 4), else `libmpi.so`.
    public var library: String?

    public init() {}

    /// The settings given by `env`'s variables, the defaults for those unset.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> MPISettings {
        var settings = MPISettings()
        settings.library = SettingsReader(env).string("KILN_MPI_LIBRARY")
        return settings
    }
}
