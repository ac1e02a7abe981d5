import KilnGraph

/// The reference kernels: plain loops over row-major arrays, written to be read and trusted
/// rather than to be fast.
enum CPUKernels<T: KilnFloat> {
    static func unary(_ op: UnaryOp, _ x: [T]) -> [T] {
        switch op {
        case .neg: return x.map { -$0 }
        case .exp: return x.map { T.exp($0) }
        case .log: return x.map { T.log($0) }
        case .sqrt: return x.map { T.squareRoot($0) }
        case .tanh: return x.map { T.tanh($0) }
        case .sigmoid: return x.map { 1 / (1 + T.exp(-$0)) }
        case .relu: return x.map { $0 > 0 ? $0 : 0 }
        }
    }

    static func apply(_ op: BinaryOp, _ a: T, _ b: T) -> T {
        switch op {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .maximum: return a >= b ? a : b
        case .minimum: return a <= b ? a : b
        case .greater: return a > b ? 1 : 0
        case .equal: return a == b ? 1 : 0
        }
    }

    static func binary(_ op: BinaryOp, _ a: [T], _ aShape: Shape, _ b: [T], _ bShape: Shape, out: Shape) -> [T] {
        let ia = stridedOffsets(out, aShape.broadcastStrides(to: out))
        let ib = stridedOffsets(out, bShape.broadcastStrides(to: out))
        return (0..<out.count).map { apply(op, a[ia[$0]], b[ib[$0]]) }
    }

    static func broadcast(_ x: [T], _ shape: Shape, to out: Shape) -> [T] {
        stridedOffsets(out, shape.broadcastStrides(to: out)).map { x[$0] }
    }

    static func transpose(_ x: [T], _ shape: Shape, perm: [Int]) -> [T] {
        let strides = shape.strides
        let outShape = Shape(perm.map { shape[$0] })
        return stridedOffsets(outShape, perm.map { strides[$0] }).map { x[$0] }
    }

    static func reduce(_ op: ReduceOp, _ x: [T], _ shape: Shape, axes: [Int]) -> [T] {
        let kept = Shape(shape.dims.enumerated().map { axes.contains($0.offset) ? 1 : $0.element })
        var strides = kept.strides
        for a in axes { strides[a] = 0 }
        let target = stridedOffsets(shape, strides)
        var out = [T](repeating: op == .max ? -T.infinity : 0, count: kept.count)
        for i in 0..<x.count {
            switch op {
            case .sum, .mean: out[target[i]] += x[i]
            case .max: if x[i] > out[target[i]] || x[i].isNaN { out[target[i]] = x[i] }
            }
        }
        if op == .mean {
            let n = T(axes.reduce(1) { $0 * shape[$1] })
            for i in out.indices { out[i] /= n }
        }
        return out
    }

    static func matmul(_ a: [T], _ aShape: Shape, _ b: [T], _ bShape: Shape, ta: Bool, tb: Bool) -> [T] {
        let m = ta ? aShape[1] : aShape[0], k = ta ? aShape[0] : aShape[1]
        let n = tb ? bShape[0] : bShape[1]
        let lda = aShape[1], ldb = bShape[1]
        var c = [T](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: T = 0
                for p in 0..<k {
                    let av = ta ? a[p * lda + i] : a[i * lda + p]
                    let bv = tb ? b[j * ldb + p] : b[p * ldb + j]
                    acc += av * bv
                }
                c[i * n + j] = acc
            }
        }
        return c
    }

    static func checkIds(_ op: String, _ ids: [Int32], _ rows: Int) throws {
        if let p = ids.firstIndex(where: { $0 < 0 || Int($0) >= rows }) {
            throw KilnError.invalidValue(op: op, message: "id \(ids[p]) at flat position \(p) is outside the table's rows [0, \(rows))")
        }
    }

    static func gather(_ ids: [Int32], _ table: [T], rows: Int, dim: Int) throws -> [T] {
        try checkIds("gather", ids, rows)
        var out = [T]()
        out.reserveCapacity(ids.count * dim)
        for id in ids { out.append(contentsOf: table[Int(id) * dim ..< (Int(id) + 1) * dim]) }
        return out
    }

    static func scatterAdd(_ ids: [Int32], _ values: [T], rows: Int, dim: Int) throws -> [T] {
        try checkIds("scatterAdd", ids, rows)
        var out = [T](repeating: 0, count: rows * dim)
        for (p, id) in ids.enumerated() {
            for d in 0..<dim { out[Int(id) * dim + d] += values[p * dim + d] }
        }
        return out
    }

    static func checkLabels(_ op: String, _ labels: [Int32], classes: Int) throws {
        if let b = labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw KilnError.invalidValue(op: op, message: "label \(labels[b]) at row \(b) is outside [0, \(classes))")
        }
    }

    /// log(sum(exp(row))) computed as max + log(sum(exp(row - max))), finite for any finite row.
    static func logSumExp(_ row: ArraySlice<T>) -> T {
        let m = row.max()!
        return m + T.log(row.reduce(0) { $0 + T.exp($1 - m) })
    }

    static func softmaxCrossEntropy(_ logits: [T], _ labels: [Int32], classes c: Int) throws -> T {
        try checkLabels("softmaxCrossEntropy", labels, classes: c)
        var total: T = 0
        for (b, label) in labels.enumerated() {
            let row = logits[b * c ..< (b + 1) * c]
            total += logSumExp(row) - row[b * c + Int(label)]
        }
        return total / T(labels.count)
    }

    static func softmaxCrossEntropyGrad(_ logits: [T], _ labels: [Int32], upstream: T, classes c: Int) throws -> [T] {
        try checkLabels("softmaxCrossEntropyGrad", labels, classes: c)
        var out = [T](repeating: 0, count: logits.count)
        let scale = upstream / T(labels.count)
        for (b, label) in labels.enumerated() {
            let row = logits[b * c ..< (b + 1) * c]
            let lse = logSumExp(row)
            for j in 0..<c {
                let p = T.exp(row[b * c + j] - lse)
                out[b * c + j] = (p - (j == Int(label) ? 1 : 0)) * scale
            }
        }
        return out
    }

    static func argmax(_ x: [T], _ shape: Shape, axis: Int) -> [Int32] {
        let (outer, n, inner) = splitAround(shape, axis: axis)
        var out = [Int32](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                for k in 1..<n where x[(o * n + k) * inner + i] > x[(o * n + best) * inner + i] { best = k }
                out[o * inner + i] = Int32(best)
            }
        }
        return out
    }

    static func accuracy(_ logits: [T], _ shape: Shape, _ labels: [Int32]) throws -> T {
        try checkLabels("accuracy", labels, classes: shape[1])
        let predicted = argmax(logits, shape, axis: 1)
        let hits = zip(predicted, labels).filter { $0 == $1 }.count
        return T(hits) / T(labels.count)
    }
}
