/// How to train.
public struct TrainingOptions: Sendable {
    public var epochs = 3
    public var batchSize = 128
    public var learningRate = 0.1
    public var optimizer = Optimizer(.momentum(0.9))
    public var schedule = LRSchedule.constant
    public var seed: UInt64 = 0
    /// Drop the last partial batch of each epoch instead of training on it.
    public var dropLast = false
    public var device = DeviceKind.gpu
    public var fusion: Bool?
    /// Stop at the first kernel that writes NaN or Inf; nil: the executables' default
    /// (`CompilerSettings.checkNumerics`, `KILN_CHECK_NUMERICS=1`).
    public var checkNumerics: Bool?
    /// Data parallelism: the MPI job whose processes train together (nil: this process alone).
    /// Each process takes its shard of every global batch of `batchSize` examples.
    public var job: MPICollective?

    public init() {}
}
