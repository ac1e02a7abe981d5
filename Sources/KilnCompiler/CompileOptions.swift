import Foundation
import KilnGraph

/// Knobs of the compiler.
public struct CompileOptions: Sendable {
    /// Fuse elementwise chains, reduction prologues, matmul epilogues and optimizer updates.
    /// `KILN_FUSION=0` in the environment turns it off.
    public var fusion: Bool
    /// The float type to compute in; nil takes the graph's (which must then use only one).
    public var realType: DType?

    public init(fusion: Bool? = nil, realType: DType? = nil) {
        self.fusion = fusion ?? (ProcessInfo.processInfo.environment["KILN_FUSION"] != "0")
        self.realType = realType
    }
}
