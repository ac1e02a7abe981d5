import Foundation
import KilnGraph

/// Knobs of the compiler.
public struct CompileOptions: Sendable {
    /// Fuse elementwise chains, reduction prologues, matmul epilogues and optimizer updates;
    /// nil takes the settings' (`KILN_FUSION=0` in the environment turns it off).
    public var fusion: Bool?
    /// The float type to compute in; nil takes the graph's (which must then use only one).
    public var realType: DType?
    /// With fusion, compute a cheap elementwise value again in each kernel that reads it
    /// instead of storing it (see `Fusion`): for backends whose fused code runs in registers
    /// (OpenCL). The CPU backend evaluates fused code an operation at a time over blocks of
    /// elements, where the extra operations cost more than the store saves (W3 6% slower).
    public var recompute: Bool
    /// An elementwise kernel writes its output over an input of the same shape that it reads
    /// element for element and is the last to read (see `MemoryPlanner`): its writes then land
    /// on cache lines its reads just brought in, with no read for ownership of fresh memory.
    /// Both backends read every input of an element before writing it. Default off (the plans
    /// of `Devices.compileOptions` have it on).
    public var inPlace: Bool
    /// Whether the program performs the graph's updates (a training step) or only computes
    /// its fetches (evaluation).
    public var updates: Bool
    /// The largest all-reduce bucket in bytes (a bucket holds at least one tensor). Smaller
    /// buckets start sooner and overlap more of the backward pass; larger ones pay the
    /// per-message latency fewer times. nil takes the settings' (`KILN_BUCKET_BYTES`, default 256 KiB).
    public var bucketBytes: Int?
    /// Where what is nil above comes from; nil: `CompilerSettings.fromEnvironment()`, read when
    /// compiling.
    public var settings: CompilerSettings?

    public init(fusion: Bool? = nil, realType: DType? = nil, recompute: Bool = true, inPlace: Bool = false, updates: Bool = true,
                bucketBytes: Int? = nil, settings: CompilerSettings? = nil) {
        self.fusion = fusion
        self.realType = realType
        self.recompute = recompute
        self.inPlace = inPlace
        self.updates = updates
        self.bucketBytes = bucketBytes
        self.settings = settings
    }

    /// Whether fusion is on, and the bucket size: the explicit values, else the settings'.
    public func resolved() throws -> (fusion: Bool, bucketBytes: Int) {
        if let fusion, let bucketBytes { return (fusion, bucketBytes) }
        let settings = try self.settings ?? CompilerSettings.fromEnvironment()
        return (fusion ?? settings.fusion, bucketBytes ?? settings.bucketBytes)
    }
}
