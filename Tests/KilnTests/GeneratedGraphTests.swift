import Testing
import Kiln

/// Seeded random graphs over every op (random shapes with size-1 and broadcast axes, chains,
/// reductions over random axes, fan-out): fused against unfused, OpenCL against the CPU
/// reference, and finite differences in Double. A failure names the seed and prints the graph.
@Suite struct GeneratedGraphTests {
    struct Case {
        let seed: UInt64
        let graph: Graph
        let inputs: [Tensor]
        let loss: Tensor
        let values: [Tensor: HostTensor]
        /// Whether the graph has kinks (relu, max, min, comparisons) where finite differences mislead.
        let kinked: Bool

        /// A reproduction: every node with its op, inputs and shape.
        var listing: String {
            "seed \(seed):\n" + graph.nodes.filter { $0.role == .forward }.map { n in
                "  %\(n.id) = \(n.op.name)(\(n.inputs.map { "%\($0)" }.joined(separator: ", "))) : \(n.dtype) \(n.shape)"
            }.joined(separator: "\n")
        }
    }

    static func generate(seed: UInt64, dtype: DType = .float64) throws -> Case {
        var rng = SeededGenerator(seed: seed)
        let g = Graph()
        func pick<T>(_ a: [T]) -> T { a[Int.random(in: 0..<a.count, using: &rng)] }
        func shape() -> Shape { Shape((0..<Int.random(in: 0...3, using: &rng)).map { _ in pick([1, 2, 3]) }) }
        var values: [Tensor: HostTensor] = [:]
        var inputs: [Tensor] = []
        var pool: [Tensor] = []
        var kinked = false
        for i in 0..<Int.random(in: 1...3, using: &rng) {
            let s = shape()
            let t = try g.placeholder("x\(i)", s, dtype)
            values[t] = try HostTensor(rng.uniform(s.count, in: -1...1), shape: s).converted(to: dtype)
            inputs.append(t)
            pool.append(t)
        }
        for _ in 0..<Int.random(in: 2...7, using: &rng) {
            let a = pick(pool)
            let t: Tensor
            switch Int.random(in: 0..<9, using: &rng) {
            case 0:
                let op = pick(UnaryOp.allCases)
                kinked = kinked || op == .relu
                // log and sqrt get positive inputs: exp(a) or a*a + 0.5.
                t = try op == .log || op == .sqrt ? g.unary(op, a * a + 0.5) : g.unary(op, a)
            case 1, 2:
                let b = pick(pool)
                guard Shape.broadcast(a.shape, b.shape) != nil else { continue }
                let op = pick([BinaryOp.add, .sub, .mul, .div, .maximum, .minimum])
                kinked = kinked || op == .maximum || op == .minimum
                t = try op == .div ? g.binary(op, a, b * b + 1) : g.binary(op, a, b)
            case 3:
                guard a.shape.rank > 0 else { continue }
                let axes = (0..<a.shape.rank).filter { _ in Bool.random(using: &rng) }
                let op = pick(ReduceOp.allCases)
                kinked = kinked || op == .max
                t = try g.reduce(op, a, axes: axes.isEmpty ? nil : axes, keepDims: Bool.random(using: &rng))
            case 4:
                let m = a.shape.rank == 2 ? a : try a.reshaped([1, -1])
                let n = pick([1, 2, 3])
                let w = try g.placeholder("w\(inputs.count)", [m.shape[1], n], dtype)
                values[w] = try HostTensor(rng.uniform(w.shape.count, in: -1...1), shape: w.shape)
                inputs.append(w)
                let tb = Bool.random(using: &rng)
                t = tb ? try m.matmul(w.transposed(), transposeB: true) : try m.matmul(w)
            case 5:
                guard a.shape.rank > 1 else { continue }
                t = try a.transposed(Array(0..<a.shape.rank).shuffled(using: &rng))
            case 6:
                t = try a.reshaped([a.shape.count])
            case 7:
                t = try a.broadcast(to: Shape([pick([1, 2])] + a.shape.dims.map { $0 == 1 ? pick([1, 3]) : $0 }))
            default:
                t = try a * a + a   // fan-out
            }
            pool.append(t)
        }
        var loss = try pool.last!.sum()
        if pool.count > 2 { loss = try loss + pool[pool.count - 2].mean() * 0.5 }
        return Case(seed: seed, graph: g, inputs: inputs, loss: loss, values: values, kinked: kinked)
    }

    static let seeds: [UInt64] = Array(1...500)

    /// 500 graphs: fused equals unfused (loss and gradients) on the CPU in Double; where the
    /// graph has no kinks, gradients equal central finite differences.
    @Test func fusedUnfusedAndFiniteDifferences() throws {
        var checked = 0
        for seed in Self.seeds {
            let c = try Self.generate(seed: seed)
            let grads = try c.graph.gradients(of: c.loss, wrt: c.inputs)
            let fetch = [c.loss] + grads
            let fused = try CPUExecutable<Double>(program: Compiler.compile(c.graph, fetch: fetch, options: CompileOptions(fusion: true, realType: .float64)))
            let unfused = try CPUExecutable<Double>(program: Compiler.compile(c.graph, fetch: fetch, options: CompileOptions(fusion: false, realType: .float64)))
            let a = try fused.run(feeds: c.values), b = try unfused.run(feeds: c.values)
            for (i, (x, y)) in zip(a, b).enumerated() where maxError(x.doubles, y.doubles) > 1e-12 {
                Issue.record("fused differs from unfused at fetch \(i): \(maxError(x.doubles, y.doubles))\n\(c.listing)")
            }
            guard !c.kinked else { continue }
            checked += 1
            let fresh = try Self.generate(seed: seed)
            for r in try GradientCheck.run(fresh.graph, loss: fresh.loss, wrt: fresh.inputs, values: fresh.values)
            where r.maxRelativeError > 1e-5 {
                Issue.record("gradient of \(r.name) off by \(r.maxRelativeError)\n\(fresh.listing)")
            }
        }
        #expect(checked > 150)
    }

    /// The first 60 graphs in one program on OpenCL (float32), fused, against the reference.
    @Test func openCLParity() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let g = Graph()
        var fetch: [Tensor] = [], values: [Tensor: HostTensor] = [:], labels: [String] = []
        for seed in Self.seeds.prefix(60) {
            // Rebuild each case inside one shared graph by replaying it with prefixed names.
            let c = try Self.generate(seed: seed, dtype: .float32)
            let (outputs, feeds) = try replay(c, into: g, prefix: "s\(seed).")
            fetch += outputs
            values.merge(feeds) { a, _ in a }
            labels += outputs.indices.map { "seed \(seed) fetch \($0)\n\(c.listing)" }
        }
        let (device, reference) = try openCLAndReference(g, fetch: fetch, values: values, fusion: true, context: ctx)
        for (label, (d, r)) in zip(labels, zip(device, reference)) where maxError(d.doubles, r.doubles) > 1e-4 {
            Issue.record("OpenCL differs by \(maxError(d.doubles, r.doubles)) at \(label)")
        }
    }

    /// Copies a case's forward nodes into `g` (inputs renamed), adds its gradients; returns the
    /// loss and gradients and the feeds.
    func replay(_ c: Case, into g: Graph, prefix: String) throws -> ([Tensor], [Tensor: HostTensor]) {
        var map: [Int: Tensor] = [:]
        var feeds: [Tensor: HostTensor] = [:]
        for n in c.graph.nodes where n.id <= c.loss.id {
            let x = n.inputs.map { map[$0]! }
            let t: Tensor
            switch n.op {
            case .input:
                t = try g.placeholder(prefix + n.label, n.shape, n.dtype)
                feeds[t] = try c.values[c.graph.tensor(n.id)]?.converted(to: n.dtype)
            case .constant(let v): t = g.constant(v, n.dtype)
            case .unary(let op): t = try g.unary(op, x[0])
            case .binary(let op): t = try g.binary(op, x[0], x[1])
            case let .reduce(op, axes, keep): t = try g.reduce(op, x[0], axes: axes, keepDims: keep)
            case let .matmul(ta, tb): t = try g.matmul(x[0], x[1], transposeA: ta, transposeB: tb)
            case .transpose(let perm): t = try g.transpose(x[0], perm: perm)
            case .reshape: t = try g.reshape(x[0], n.shape)
            case .broadcastTo: t = try g.broadcast(x[0], to: n.shape)
            default: throw KilnError.invalidArgument(op: "replay", message: "\(n.op.name) is not generated")
            }
            map[n.id] = t
        }
        let loss = map[c.loss.id]!
        let inputs = c.inputs.map { map[$0.id]! }
        return ([loss] + (try g.gradients(of: loss, wrt: inputs)), feeds)
    }
}
