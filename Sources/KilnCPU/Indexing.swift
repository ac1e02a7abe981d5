import KilnGraph

/// The memory offset of every element of `shape`, in row-major order, for a layout with
/// `strides` (a stride of 0 repeats an axis: broadcasting; permuted strides: transposing).
func stridedOffsets(_ shape: Shape, _ strides: [Int]) -> [Int] {
    let count = shape.count
    var out = [Int]()
    out.reserveCapacity(count)
    guard count > 0 else { return out }
    var index = [Int](repeating: 0, count: shape.rank)
    var offset = 0
    for _ in 0..<count {
        out.append(offset)
        var d = shape.rank - 1
        while d >= 0 {
            index[d] += 1
            offset += strides[d]
            if index[d] < shape[d] { break }
            offset -= strides[d] * shape[d]
            index[d] = 0
            d -= 1
        }
    }
    return out
}

/// Splits `shape` around `axis` into (outer, n, inner) element counts.
func splitAround(_ shape: Shape, axis: Int) -> (outer: Int, n: Int, inner: Int) {
    let outer = shape.dims[..<axis].reduce(1, *)
    let inner = shape.dims[(axis + 1)...].reduce(1, *)
    return (outer, shape[axis], inner)
}
