import KilnGraph

/// The CPU kernels of the movement ops (transpose, slice, pad, concat): copies of rows along the last
/// axis, each row's start from a table built at load time, so a run computes no index per element.
enum MovementSteps<T: KilnFloat> {
    /// Copies `rows` rows of `width` elements, row r read from `from + sources[r]` at `readStep`
    /// and written to `to + targets[r]` at `writeStep`; split among the pool's threads when large.
    static func copyRows(from: UnsafeMutablePointer<T>, sources: [Int], readStep: Int,
                         to: UnsafeMutablePointer<T>, targets: [Int], writeStep: Int, width: Int) {
        let parts = sources.count * width >= 1 << 16 ? WorkerPool.shared.threads : 1
        WorkerPool.shared.run(parts: parts) { p in
            for r in sources.count * p / parts..<sources.count * (p + 1) / parts {
                let src = from + sources[r], dst = to + targets[r]
                if readStep == 1 && writeStep == 1 { dst.update(from: src, count: width); continue }
                for j in 0..<width { dst[j * writeStep] = src[j * readStep] }
            }
        }
    }

    /// The offsets of the rows (all but the last axis) of `shape` in a layout of `strides`, plus `base`.
    static func rowStarts(_ shape: Shape, _ strides: [Int], base: Int) -> [Int] {
        guard shape.rank > 0 else { return [base] }
        return stridedOffsets(Shape(Array(shape.dims.dropLast())), Array(strides.dropLast())).map { $0 + base }
    }

    /// `out` (row-major, `outShape`) read from `x + base` with `strides` per output axis: a
    /// slice (the input's strides times the steps) or a transpose (its strides permuted).
    static func strided(_ x: UnsafeMutablePointer<T>, strides: [Int], base: Int, _ out: UnsafeMutablePointer<T>,
                        _ outShape: Shape) -> () -> Void {
        let rank = outShape.rank
        let sources = rowStarts(outShape, strides, base: base)
        let targets = rowStarts(outShape, outShape.strides, base: 0)
        let width = rank > 0 ? outShape[rank - 1] : 1, step = rank > 0 ? strides[rank - 1] : 1
        guard outShape.count > 0 else { return {} }
        return { copyRows(from: x, sources: sources, readStep: step, to: out, targets: targets, writeStep: 1, width: width) }
    }

    /// `out[i] = x[starts + steps·i]`.
    static func slice(_ x: UnsafeMutablePointer<T>, _ inShape: Shape, _ out: UnsafeMutablePointer<T>, _ outShape: Shape,
                      starts: [Int], steps: [Int]) -> () -> Void {
        let strides = inShape.strides
        return strided(x, strides: zip(strides, steps).map { $0 * $1 }, base: zip(starts, strides).map { $0 * $1 }.reduce(0, +),
                       out, outShape)
    }

    /// `out` filled with `value`, then `out[low + (interior + 1)·i] = x[i]`.
    static func pad(_ x: UnsafeMutablePointer<T>, _ inShape: Shape, _ out: UnsafeMutablePointer<T>, _ outShape: Shape,
                    low: [Int], interior: [Int], value: Double) -> () -> Void {
        let strides = outShape.strides, rank = inShape.rank
        let write = zip(strides, interior).map { $0 * ($1 + 1) }
        let targets = rowStarts(inShape, write, base: zip(low, strides).map { $0 * $1 }.reduce(0, +))
        let sources = rowStarts(inShape, inShape.strides, base: 0)
        let width = rank > 0 ? inShape[rank - 1] : 1, step = rank > 0 ? write[rank - 1] : 1
        let (fill, count, empty) = (T(value), outShape.count, inShape.count == 0)
        return {
            out.update(repeating: fill, count: count)
            if !empty { copyRows(from: x, sources: sources, readStep: 1, to: out, targets: targets, writeStep: step, width: width) }
        }
    }

    /// The parts joined along `axis`: for each index of the axes before it, each part's block in turn.
    static func concat(_ parts: [(UnsafeMutablePointer<T>, Shape)], _ out: UnsafeMutablePointer<T>, _ outShape: Shape,
                       axis: Int) -> () -> Void {
        let (outer, total, inner) = splitAround(outShape, axis: axis)
        var offset = 0
        let blocks = parts.map { part, shape -> (UnsafeMutablePointer<T>, Int, Int) in
            defer { offset += shape[axis] * inner }
            return (part, shape[axis] * inner, offset)
        }
        let row = total * inner
        return {
            for (part, block, start) in blocks where block > 0 {
                for o in 0..<outer { (out + o * row + start).update(from: part + o * block, count: block) }
            }
        }
    }
}
