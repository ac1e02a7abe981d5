import Foundation
import KilnGraph

/// Knobs of the compiler.
public struct CompileOptions: Sendable {
    /// Fuse elementwise chains, reduction prologues, matmul epilogues and optimizer updates.
    /// `KILN_FUSION=0` in the environment turns it off.
    public var fusion: Bool
    /// The float type to compute in; nil takes the graph's (which must then use only one).
    public var realType: DType?
    /// Whether the program performs the graph's updates (a training step) or only computes
    /// its fetches (evaluation).
    public var updates: Bool
    /// The largest all-reduce bucket in bytes (a bucket holds at least one tensor). Smaller
    /// buckets start sooner and overlap more of the backward pass; larger ones pay the
    /// per-message latency fewer times. `KILN_BUCKET_BYTES` overrides the default of 256 KiB.
    public var bucketBytes: Int

    public init(fusion: Bool? = nil, realType: DType? = nil, updates: Bool = true, bucketBytes: Int? = nil) {
        self.fusion = fusion ?? (ProcessInfo.processInfo.environment["KILN_FUSION"] != "0")
        self.realType = realType
        self.updates = updates
        self.bucketBytes = bucketBytes ?? ProcessInfo.processInfo.environment["KILN_BUCKET_BYTES"].flatMap(Int.init) ?? 1 << 18
    }
}
