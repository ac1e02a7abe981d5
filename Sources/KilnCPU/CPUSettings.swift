import Foundation
import KilnGraph

/// The CPU backend's settings from the environment: the one place that reads
/// `KILN_CPU_THREADS` and, for the CPU backend, `KILN_PROFILE`.
public struct CPUSettings: Sendable, Equatable {
    /// Threads of the worker pool that runs GEMMs and large elementwise kernels
    /// (`KILN_CPU_THREADS`). Default nil: one per core, or the process's share of the cores
    /// in a job (`CPUThreads.share(processes:)`).
    public var threads: Int?
    /// Time every kernel and print a per-kernel table when an executable is released
    /// (`KILN_PROFILE=1`). Default: off.
    public var profile = false
    /// A convolution's patches and its product (unfold then matmul; matmul then fold) are
    /// computed in chunks of images whose patches take at most this many bytes, so that each
    /// chunk is still in cache when the second kernel reads it (a core's L2 and then some).
    /// Default 2 MiB; 0 or less: never.
    public var chunkBytes = 2 << 20

    public init() {}

    /// The settings given by `env`'s variables, the defaults for those unset.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> CPUSettings {
        let reader = SettingsReader(env)
        var settings = CPUSettings()
        settings.threads = try reader.integer("KILN_CPU_THREADS")
        if let v = try reader.flag("KILN_PROFILE") { settings.profile = v }
        return settings
    }
}
