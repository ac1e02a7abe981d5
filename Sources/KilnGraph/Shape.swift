/// The dimensions of a tensor, outermost first. A scalar has no dimensions.
public struct Shape: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    /// The shape of a scalar.
    public static let scalar = Shape([])

    public var rank: Int { dims.count }
    /// The number of elements (1 for a scalar).
    public var count: Int { dims.reduce(1, *) }
    public subscript(i: Int) -> Int { dims[i] }

    /// Row-major strides, in elements.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: rank)
        var acc = 1
        for i in stride(from: rank - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= dims[i]
        }
        return s
    }

    /// Strides for reading a tensor of this shape as if it had `target`'s shape (NumPy
    /// broadcasting): axes of size 1 and missing leading axes get stride 0.
    /// The caller must have checked that `self` broadcasts to `target`.
    public func broadcastStrides(to target: Shape) -> [Int] {
        let own = strides
        let lead = target.rank - rank
        return (0..<target.rank).map { i in
            let j = i - lead
            return j < 0 || dims[j] == 1 ? 0 : own[j]
        }
    }

    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

    /// The NumPy broadcast of two shapes, or nil when they are incompatible.
    public static func broadcast(_ a: Shape, _ b: Shape) -> Shape? {
        let rank = max(a.rank, b.rank)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.rank ? 1 : a.dims[i - (rank - a.rank)]
            let db = i < rank - b.rank ? 1 : b.dims[i - (rank - b.rank)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return Shape(out)
    }

    /// Whether this shape broadcasts to `target` without changing `target`.
    public func broadcasts(to target: Shape) -> Bool {
        Shape.broadcast(self, target) == target
    }
}

extension Shape {
    /// For a transpose of this shape that swaps two blocks of axes behind leading ones that
    /// stay (`[B, R, C]` to `[B, C, R]`, with B, R and C products of axes: `[N, H, W, C]` to
    /// `[N, C, H, W]` and back, a matrix's transpose): B, R and C. nil for any other permutation.
    public func batchedTranspose(_ perm: [Int]) -> (batch: Int, rows: Int, columns: Int)? {
        let r = perm.count
        var k = 0
        while k < r && perm[k] == k { k += 1 }
        guard k < r, perm[k] > k else { return nil }
        let m = perm[k]
        guard perm == Array(0..<k) + Array(m..<r) + Array(k..<m) else { return nil }
        return (dims[..<k].reduce(1, *), dims[k..<m].reduce(1, *), dims[m...].reduce(1, *))
    }
}
