import Foundation
import KilnGraph

/// The compiler's settings from the environment: the one place that reads `KILN_FUSION`,
/// `KILN_BUCKET_BYTES` and `KILN_CHECK_NUMERICS`. What `CompileOptions` is given explicitly (a
/// command-line flag) wins over these.
public struct CompilerSettings: Sendable, Equatable {
    /// Fuse elementwise chains, reduction prologues, matmul epilogues and optimizer updates
    /// (`KILN_FUSION=0` turns it off). Default: on.
    public var fusion = true
    /// The largest all-reduce bucket in bytes (`KILN_BUCKET_BYTES`). Default: 256 KiB.
    public var bucketBytes = 1 << 18
    /// Executables check every kernel's outputs for NaN and Inf (`KILN_CHECK_NUMERICS=1`).
    /// Default: off.
    public var checkNumerics = false

    public init() {}

    /// The settings given by `env`'s variables, the defaults for those unset.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> CompilerSettings {
        let reader = SettingsReader(env)
        var settings = CompilerSettings()
        if let v = try reader.flag("KILN_FUSION") { settings.fusion = v }
        if let v = try reader.integer("KILN_BUCKET_BYTES") { settings.bucketBytes = v }
        if let v = try reader.flag("KILN_CHECK_NUMERICS") { settings.checkNumerics = v }
        return settings
    }
}
