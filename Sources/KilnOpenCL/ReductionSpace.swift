import KilnGraph

/// A reduction's iteration space (the shape of its fused input), with the axes of size 1
/// dropped and neighbouring axes merged where every operand walks them as one: batch norm's sum
/// over axes (0, 2, 3) of `[N, C, H, W]` becomes a loop over N around a contiguous run of H·W.
///
/// The generated reduction kernels index by coordinates along these axes: the kept ones from
/// the output's index, the reduced ones from nested loops. Divisions then happen once per
/// output instead of once per element (PoCL's vectorizer gives up on a loop full of them), and
/// the innermost reduced axis, usually contiguous, is the one work-items share.
struct ReductionSpace {
    struct Axis {
        var size: Int
        let reduced: Bool
        /// The stride of this axis in the fused input (`strides[0]`) and in each load
        /// (`strides[1...]`, 0 where the load is broadcast along it).
        var strides: [Int]
    }

    let axes: [Axis]

    init(shape: Shape, reduced: [Int], loads: [Shape]) {
        let own = shape.strides, broadcast = loads.map { $0.broadcastStrides(to: shape) }
        var axes: [Axis] = []
        for k in 0..<shape.rank where shape[k] != 1 {
            let strides = [own[k]] + broadcast.map { $0[k] }
            let isReduced = reduced.contains(k)
            if let last = axes.last, last.reduced == isReduced,
               zip(last.strides, strides).allSatisfy({ $0 == $1 * shape[k] }) {
                axes[axes.count - 1].size *= shape[k]
                axes[axes.count - 1].strides = strides
            } else {
                axes.append(Axis(size: shape[k], reduced: isReduced, strides: strides))
            }
        }
        self.axes = axes
    }

    /// The positions in `axes` of the reduced axes, outermost first.
    var reducedAxes: [Int] { axes.indices.filter { axes[$0].reduced } }

    /// Declarations of the kept axes' coordinates `cK` from the output index `o`.
    func keptCoordinates(output o: String) -> String {
        coordinates(of: axes.indices.filter { !axes[$0].reduced }, flat: o)
    }

    /// Declarations of the coordinates of axes `among` from one flat index `r` over them
    /// (row-major).
    func coordinates(of among: [Int], flat r: String) -> String {
        var after = among.map { axes[$0].size }.reduce(1, *), lines: [String] = []
        for (n, k) in among.enumerated() {
            after /= axes[k].size
            var t = after == 1 ? r : "(\(r) / \(after))"
            if n > 0 { t = "(\(t) % \(axes[k].size))" }
            lines.append("const int c\(k) = \(t);")
        }
        return lines.joined(separator: " ")
    }

    /// The flat index, in the fused input (`operand` 0) or in load `operand - 1`, of the element
    /// at coordinates `cK`, leaving out axis `excluding`'s term.
    func index(operand: Int, excluding: Int? = nil) -> String {
        index(operand: operand, axes: axes.indices.filter { $0 != excluding })
    }

    /// The terms of `index(operand:)` for `among` alone.
    func index(operand: Int, axes among: [Int]) -> String {
        let terms = among.compactMap { k -> String? in
            let s = axes[k].strides[operand]
            return s == 0 ? nil : s == 1 ? "c\(k)" : "c\(k) * \(s)"
        }
        return terms.isEmpty ? "0" : terms.joined(separator: " + ")
    }
}
