import KilnCompiler
import KilnGraph

extension OpenCLCodegen {
    /// The coordinate of output axis `k` of `shape` at flat index `gid`, as an expression.
    static func coordinate(_ shape: Shape, _ k: Int, gid: String = "gid") -> String {
        let s = shape.strides[k]
        let t = s == 1 ? gid : "(\(gid) / \(s))"
        return k == 0 ? t : "(\(t) % \(shape[k]))"
    }

    /// The element read for output flat index `gid` of `shape` with `strides` per output axis, from `base`.
    static func stridedIndex(_ shape: Shape, _ strides: [Int], base: Int) -> String {
        ([String(base)] + (0..<shape.rank).filter { shape[$0] > 1 }.map { "\(coordinate(shape, $0)) * \(strides[$0])" })
            .joined(separator: " + ")
    }

    /// transpose, slice, pad and concat: a work-item per output element, its source computed from its
    /// coordinates with every size and stride a constant.
    mutating func emitMovement(_ k: Kernel, index: Int) {
        let name = k.name, ins = k.inputs, out = k.outputs[0]
        let (params, bufferArgs) = parameters(k)
        let shape = out.shape
        guard shape.count > 0 else { return }   // nothing to write (and strides of 0 to divide by)
        func element(_ o: Operand, _ at: String) -> String { "b\(o.location.buffer)[\(offset(o)) + \(at)]" }
        var body: String
        switch k.kind {
        case let .node(.slice(starts, steps)):
            // Read at starts + steps·c along each axis.
            let strides = ins[0].shape.strides
            body = "\(element(out, "gid")) = \(element(ins[0], Self.stridedIndex(shape, zip(strides, steps).map { $0 * $1 }, base: zip(starts, strides).map { $0 * $1 }.reduce(0, +))));"
        case .node(.transpose(let perm)):
            let strides = ins[0].shape.strides
            body = "\(element(out, "gid")) = \(element(ins[0], Self.stridedIndex(shape, perm.map { strides[$0] }, base: 0)));"
        case let .node(.pad(low, interior, value)):
            // An output coordinate c holds input element (c − low) / (interior + 1) where that
            // divides exactly and lies inside the input; the value elsewhere.
            let inShape = ins[0].shape, strides = inShape.strides
            var lines = ["int src = 0, inside = 1;"]
            for a in 0..<shape.rank {
                let p = interior[a] + 1, span = inShape[a] == 0 ? 0 : (inShape[a] - 1) * p + 1
                let t = "t\(a)"
                var cond = "\(t) >= 0 && \(t) < \(span)"
                if p > 1 { cond += " && \(t) % \(p) == 0" }
                lines.append("const int \(t) = \(Self.coordinate(shape, a)) - \(low[a]); inside = inside && \(cond); src += (\(p > 1 ? "\(t) / \(p)" : t)) * \(strides[a]);")
            }
            lines.append("\(element(out, "gid")) = inside ? \(element(ins[0], "src")) : \(Self.literal(value));")
            body = lines.joined(separator: "\n    ")
        case .node(.concat(let axis)):
            // The part whose range along the axis holds the coordinate c, read at c minus the range's start.
            let inner = shape.dims[(axis + 1)...].reduce(1, *), total = shape[axis]
            var lines = ["const int c = \(Self.coordinate(shape, axis)), o = gid / \(total * inner), i = gid % \(inner);"]
            var start = 0
            let ranges = ins.map { part -> (Operand, Int, Int) in
                defer { start += part.shape[axis] }
                return (part, start, part.shape[axis])
            }.filter { $0.2 > 0 }
            for (j, (part, from, n)) in ranges.enumerated() {
                let read = "\(element(out, "gid")) = \(element(part, "o * \(n * inner) + (c - \(from)) * \(inner) + i"));"
                lines.append((j > 0 ? "else " : "") + (j == ranges.count - 1 ? "" : "if (c < \(from + n)) ") + read)
            }
            body = lines.joined(separator: "\n    ")
        default:
            return
        }
        generated.append("""
        __kernel void \(name)(\(params)int n) {
            const int gid = get_global_id(0);
            if (gid >= n) return;
            \(body)
        }
        """)
        // Work-groups of 64, as the transposes had before they joined these kernels.
        launch(name, bufferArgs + [.int(shape.count)], items: shape.count, local: min(64, maxWorkGroupSize), kernel: index)
    }
}
