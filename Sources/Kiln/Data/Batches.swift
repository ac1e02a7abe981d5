/// The mini-batches of one epoch over `count` examples: a Fisher–Yates permutation driven by
/// `SeededGenerator` seeded from (seed, epoch), so every epoch is shuffled differently and every
/// run with the same seed sees the same batches. Yields arrays of example indices.
public struct BatchIterator: Sequence, IteratorProtocol, Sendable {
    /// The example indices of this epoch, in visiting order.
    public let order: [Int]
    /// Examples per batch (the last may hold fewer unless `dropLast`).
    public let batchSize: Int
    /// Whether a final batch smaller than `batchSize` is dropped.
    public let dropLast: Bool
    /// Where in `order` the next batch starts.
    private var position = 0

    /// The batches of epoch `epoch` over examples `0..<count`; throws when `count` is negative
    /// or `batchSize` not positive. `shuffle: false` visits the examples in order (for evaluation).
    public init(count: Int, batchSize: Int, seed: UInt64, epoch: Int, dropLast: Bool, shuffle: Bool = true) throws {
        guard count >= 0 else { throw KilnError.invalidArgument(op: "BatchIterator", message: "count \(count) is negative") }
        guard batchSize > 0 else { throw KilnError.invalidArgument(op: "BatchIterator", message: "batch size \(batchSize) is not positive") }
        var order = Array(0..<count)
        if shuffle {
            var rng = Self.generator(seed: seed, epoch: epoch)
            var i = count - 1
            while i > 0 {
                order.swapAt(i, Self.uniformIndex(below: i + 1, using: &rng))
                i -= 1
            }
        }
        self.order = order
        self.batchSize = batchSize
        self.dropLast = dropLast
    }

    /// The generator for one epoch: the epoch is mixed into the seed through one SplitMix step
    /// so that nearby (seed, epoch) pairs give unrelated streams.
    public static func generator(seed: UInt64, epoch: Int) -> SeededGenerator {
        var mixer = SeededGenerator(seed: seed ^ (UInt64(bitPattern: Int64(epoch)) &* 0xD1B5_4A32_D192_ED03))
        return SeededGenerator(seed: mixer.next())
    }

    /// A uniform integer in 0..<bound (Lemire's multiply-shift with rejection), written out
    /// rather than `Int.random(in:using:)` so the permutation cannot change with the standard
    /// library's implementation.
    static func uniformIndex(below bound: Int, using rng: inout SeededGenerator) -> Int {
        let b = UInt64(bound)
        let threshold = (0 &- b) % b
        while true {
            let (high, low) = rng.next().multipliedFullWidth(by: b)
            if low >= threshold { return Int(high) }
        }
    }

    /// The number of batches this epoch yields.
    public var batchCount: Int {
        dropLast ? order.count / batchSize : (order.count + batchSize - 1) / batchSize
    }

    /// The indices of the next batch, or nil when the epoch is done.
    public mutating func next() -> [Int]? {
        let remaining = order.count - position
        guard remaining > 0, !(dropLast && remaining < batchSize) else { return nil }
        let end = position + Swift.min(batchSize, remaining)
        defer { position = end }
        return Array(order[position..<end])
    }
}
