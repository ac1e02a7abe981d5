/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
/// counter-based generator, so any element's number is computed from its index alone, in any
/// order, on any backend. The OpenCL code generator writes the same rounds in C (`openCL`).
public enum Philox {
    static let m0: UInt32 = 0xD251_1F53, m1: UInt32 = 0xCD9E_8D57
    static let w0: UInt32 = 0x9E37_79B9, w1: UInt32 = 0xBB67_AE85

    /// The four output words for `counter` under `key`.
    public static func block(_ counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = counter, k = key
        for _ in 0..<10 {
            let p0 = m0.multipliedFullWidth(by: c.0), p1 = m1.multipliedFullWidth(by: c.2)
            c = (p1.high ^ c.1 ^ k.0, p1.low, p0.high ^ c.3 ^ k.1, p0.low)
            k = (k.0 &+ w0, k.1 &+ w1)
        }
        return c
    }

    /// `uniform`'s value for element `index` of `count` at `counter`: block b's four words are
    /// the values of elements b, B + b, 2B + b and 3B + b (B = ceil(count / 4)), so that one
    /// block serves four elements and a block's are as far apart as the range allows (each
    /// backend writes four contiguous runs); a word's value is its top 24 bits over 2^24, exact
    /// in float and double alike.
    public static func uniform(index: UInt32, count: Int, counter: UInt32, seed: UInt32, stream: UInt32) -> Double {
        let quarter = UInt32((count + 3) / 4)
        let w = block((index % quarter, counter, 0, 0), key: (seed, stream))
        let word: UInt32
        switch index / quarter {
        case 0: word = w.0
        case 1: word = w.1
        case 2: word = w.2
        default: word = w.3
        }
        return Double(word >> 8) / 16_777_216
    }

    /// The OpenCL C statements `KILN_PHILOX_WORDS(block, counter, seed, stream)`, declaring
    /// the values `u0`-`u3` of a block's four elements, as `uniform`.
    /// The ten rounds are written out: PoCL vectorizes a kernel across work-items only where
    /// the kernel has no loop of its own (a loop here kept dropout's draws at 0.7 GB/s).
    public static let openCL = """
    // One widening multiply gives both halves (PoCL vectorizes it; mul_hi it did not).
    #define KILN_PHILOX_ROUND { \\
        const ulong p0 = (ulong)0xD2511F53u * c0, p1 = (ulong)0xCD9E8D57u * c2; \\
        c0 = (uint)(p1 >> 32) ^ c1 ^ k0; c1 = (uint)p1; c2 = (uint)(p0 >> 32) ^ c3 ^ k1; c3 = (uint)p0; \\
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    // Block b's four words as values: elements b, B + b, 2B + b and 3B + b.
    #define KILN_PHILOX_WORDS(block, counter, seed, stream) \\
        uint c0 = (block), c1 = (counter), c2 = 0, c3 = 0, k0 = (seed), k1 = (stream); \\
        KILN_PHILOX_ROUND KILN_PHILOX_ROUND KILN_PHILOX_ROUND KILN_PHILOX_ROUND KILN_PHILOX_ROUND \\
        KILN_PHILOX_ROUND KILN_PHILOX_ROUND KILN_PHILOX_ROUND KILN_PHILOX_ROUND KILN_PHILOX_ROUND \\
        const real u0 = (real)(c0 >> 8) / (real)16777216, u1 = (real)(c1 >> 8) / (real)16777216; \\
        const real u2 = (real)(c2 >> 8) / (real)16777216, u3 = (real)(c3 >> 8) / (real)16777216;
    """
}

extension Graph {
    /// Uniform random values in [0, 1) of `shape`, drawn by Philox from the int32 scalar
    /// `counter` (a step counter: `stepCounter()`), the `seed`, and a stream of its own (the
    /// number of uniform nodes made before it in this graph), so that two dropouts draw
    /// different masks and the same graph draws the same ones on every backend and run.
    public func uniform(_ shape: Shape, counter: Tensor, seed: UInt32 = 0, dtype: DType = .float32) throws -> Tensor {
        guard counter.dtype == .int32, counter.shape.count == 1 else {
            throw KilnError.shapeMismatch(op: "uniform", message: "counter must be an int32 scalar, got \(counter.dtype) \(counter.shape)")
        }
        guard dtype.isFloatingPoint else {
            throw KilnError.invalidArgument(op: "uniform", message: "dtype must be float32 or float64, got \(dtype)")
        }
        guard shape.count < Int(UInt32.max) else {
            throw KilnError.invalidArgument(op: "uniform", message: "shape \(shape) has more elements than a 32-bit counter reaches")
        }
        let stream = UInt32(nodes.filter { if case .uniform = $0.op { return true }; return false }.count)
        return try append(.uniform(seed: seed, stream: stream), [counter], shape, dtype)
    }

    /// The int32 scalar feed named `kiln.step` that counts training steps (made on first use):
    /// `ModelStep` feeds it the number of the step being taken (from 1), so random draws
    /// (dropout) differ between steps and repeat when a run resumes.
    public func stepCounter() throws -> Tensor {
        if let t = inputs(.feed).first(where: { $0.node.name == Self.stepCounterName }) { return t }
        return try placeholder(Self.stepCounterName, .scalar, .int32)
    }

    /// The step counter's feed name.
    public static let stepCounterName = "kiln.step"
}
