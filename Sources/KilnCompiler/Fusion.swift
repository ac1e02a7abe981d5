import KilnGraph

/// Decides which nodes share a kernel, and builds each kernel's fused code.
///
/// Nodes are visited in reverse topological order, so every consumer is placed before its
/// producers. An elementwise node joins its consumers' group when all of them lie in one group
/// (so the group has no way out and back in, and no cycle can form); otherwise it starts a
/// group of its own, materialized in memory. A reduction owns a group that computes its input
/// (a prologue); a matmul whose consumers all lie in one group of its output's shape becomes
/// that group's producer, the group its epilogue (also through a reshape that alone reads the
/// product: a Linear over `[B, T, in]` multiplies `[B·T, in]` rows, then adds its bias to
/// `[B, T, out]`). An optimizer's update chain for a parameter therefore becomes one kernel with
/// several outputs. A transpose read only by matmuls is never materialized: they read its input
/// in place with its strides. A cheap elementwise node (arithmetic, reading at most one tensor
/// of its own size) whose consumers lie in several groups is computed again in each of them
/// instead of being materialized: they read its input instead of it, and its kernel, write and
/// read are saved (batch norm's centered and normalized values). Reductions of one space that
/// do not read each other share one kernel, whose pass reads their inputs once. With fusion off,
/// every op is a kernel.
struct Fusion {
    struct Group {
        var shape: Shape
        var root: Int
        var members: Set<Int> = []
        /// The reduction whose input this group computes.
        var prologueOf: Int?
        /// Later reductions of the same op, axes and input shape whose inputs this group also
        /// computes, in the same pass (`shareReductionPasses`).
        var siblings: [Int] = []
        /// A prologue group whose reduction joined another's (`siblings`): no kernel of its own.
        var joined = false
        /// Where a shared reduction's kernel runs when a sibling joined it early (its own
        /// reduction's place, before that sibling's); nil: at its latest reduction.
        var placement: Int?
        /// The matmul whose output this group consumes as its accumulator.
        var matmul: Int?
        /// The node the group reads as the accumulator: the matmul, or a reshape of its output
        /// (a Linear over `[B, T, in]` multiplies rows, then reshapes back before its bias).
        var accumulator: Int?
    }

    let graph: Graph
    let nodes: [Node]
    let enabled: Bool
    /// Whether cheap elementwise nodes read by several groups are computed in each.
    let recompute: Bool
    /// Nodes whose value leaves the program (fetched, or written to a parameter).
    let external: Set<Int>
    private(set) var needed: [Bool]
    private(set) var consumers: [[Int]]
    private(set) var groups: [Group] = []
    private(set) var groupOf: [Int?]
    private var prologueGroup: [Int: Int] = [:]
    /// Elementwise nodes computed again in each of these groups instead of being materialized.
    private(set) var recomputedIn: [Int: Set<Int>] = [:]
    /// Broadcasts that are never materialized: their consumers read the input with broadcasting.
    private(set) var transparent: Set<Int> = []
    /// Transposes that are never materialized: every consumer is a matmul, which reads the
    /// transpose's input in place with the permuted strides (attention's heads split off
    /// `[B, T, H, d]` as `[B, H, T, d]`).
    private(set) var matmulViews: Set<Int> = []

    init(graph: Graph, roots: [Int], external: Set<Int>, updates: [(target: Tensor, value: Tensor)], enabled: Bool,
         recompute: Bool = true) {
        self.graph = graph
        self.nodes = graph.nodes
        self.enabled = enabled
        self.recompute = recompute
        self.external = external
        var needed = [Bool](repeating: false, count: nodes.count)
        for r in roots { needed[r] = true }
        for u in updates { needed[u.target.id] = true }
        for id in stride(from: nodes.count - 1, through: 0, by: -1) where needed[id] {
            for i in nodes[id].inputs { needed[i] = true }
        }
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for n in nodes where needed[n.id] {
            for i in Set(n.inputs) { consumers[i].append(n.id) }
        }
        self.needed = needed
        self.consumers = consumers
        self.groupOf = [Int?](repeating: nil, count: nodes.count)
    }

    static func isElementwise(_ op: Op) -> Bool { op.kind.traits.fusion == .elementwise }

    /// The groups `id`'s consumers would compute it in (a recomputed consumer's several), or nil
    /// where a consumer reads it from memory.
    private func consumerGroups(_ id: Int) -> Set<Int>? {
        var found: Set<Int> = []
        for c in consumers[id] {
            if Self.isElementwise(nodes[c].op) {
                if let g = groupOf[c] { found.insert(g) } else if let gs = recomputedIn[c] { found.formUnion(gs) } else { return nil }
            } else if let g = prologueGroup[c] {
                found.insert(g)
            } else {
                return nil
            }
        }
        return found.isEmpty ? nil : found
    }

    /// The group every consumer of `id` would compute it in, if there is exactly one.
    private func commonGroup(_ id: Int) -> Int? {
        guard let groups = consumerGroups(id), groups.count == 1 else { return nil }
        return groups.first
    }

    /// Whether computing elementwise node `id` again in each consumer's kernel costs no more
    /// memory traffic than storing it: arithmetic (no exp, tanh…), at most one input of its
    /// size (the others broadcast), and few kernels to compute it in.
    private func recomputable(_ id: Int, in groups: Set<Int>) -> Bool {
        let node = nodes[id]
        guard recompute, !external.contains(id), groups.count <= 8, groups.allSatisfy({ node.shape.broadcasts(to: self.groups[$0].shape) }) else { return false }
        switch node.op {
        case .binary: break
        case .unary(let u) where u == .neg || u == .relu: break
        default: return false
        }
        return node.inputs.filter { nodes[resolve($0)].shape.count >= node.shape.count }.count <= 1
    }

    mutating func run() {
        for id in stride(from: nodes.count - 1, through: 0, by: -1) where needed[id] {
            let node = nodes[id]
            switch node.op {
            case .unary, .binary, .broadcastTo:
                if enabled {
                    if node.op == .broadcastTo, !external.contains(id), !consumers[id].isEmpty,
                       consumers[id].allSatisfy({ Self.isElementwise(nodes[$0].op) || prologueGroup[$0] != nil }) {
                        transparent.insert(id)
                        continue
                    }
                    if let g = commonGroup(id), node.shape.broadcasts(to: groups[g].shape),
                       !external.contains(id) || (node.shape == groups[g].shape && groups[g].prologueOf == nil) {
                        groups[g].members.insert(id)
                        groupOf[id] = g
                        continue
                    }
                    if let gs = consumerGroups(id), gs.count > 1, recomputable(id, in: gs) {
                        for g in gs { groups[g].members.insert(id) }
                        recomputedIn[id] = gs
                        continue
                    }
                }
                groups.append(Group(shape: node.shape, root: id, members: [id]))
                groupOf[id] = groups.count - 1
            case .transpose(let perm) where enabled:
                if isMatmulView(id, perm: perm) { matmulViews.insert(id) }
            case .reduce where enabled:
                groups.append(Group(shape: nodes[node.inputs[0]].shape, root: id, prologueOf: id))
                prologueGroup[id] = groups.count - 1
            case .matmul where enabled:
                // The consumers' group, seen through a reshape that is the product's only reader.
                var read = id
                if consumers[id].count == 1, let r = consumers[id].first, nodes[r].op == .reshape, !external.contains(r) {
                    read = r
                }
                if !external.contains(id), let g = commonGroup(read), groups[g].prologueOf == nil,
                   groups[g].matmul == nil, groups[g].shape == nodes[read].shape {
                    groups[g].matmul = id
                    groups[g].accumulator = read
                    groupOf[id] = g
                }
            default:
                break
            }
        }
        if enabled { shareReductionPasses() }
    }

    /// At most this many reductions share one pass.
    static let maxSharedReductions = 4

    /// Reductions of the same op and axes over inputs of one shape, none depending on another,
    /// share one kernel: its pass reads their common inputs once (batch norm's four gradient
    /// sums: four passes become one). A reduction joins the earliest
    /// group it can whose reductions' consumers all come after it, so that the kernel, placed
    /// at its latest reduction, still runs before every reader; or, where everything it reads
    /// is computed before the group's kernel, that kernel stays where it is and computes the
    /// joining reduction early (batch norm's gradient sum of the upstream, made after another
    /// sum's readers).
    private mutating func shareReductionPasses() {
        var open: [String: [Int]] = [:]
        for g in groups.indices.sorted(by: { groups[$0].root < groups[$1].root }) {
            guard let r = groups[g].prologueOf, case .reduce = nodes[r].op else { continue }
            let key = "\(nodes[r].op) \(groups[g].shape)"
            let before = upstream(of: r)
            // The latest node the reduction reads that its own pass does not compute.
            let latestInput = before.subtracting(groups[g].members.union([r])).max() ?? -1
            var early = false
            let host = open[key, default: []].first { h in
                let shared = [groups[h].prologueOf!] + groups[h].siblings
                guard shared.count < Self.maxSharedReductions, shared.allSatisfy({ !before.contains($0) }) else { return false }
                if groups[h].placement == nil && shared.allSatisfy({ firstReader(of: $0) > r }) { return true }
                early = latestInput < kernelRoot(h)
                return early
            }
            guard let h = host else {
                open[key, default: []].append(g)
                continue
            }
            if early { groups[h].placement = kernelRoot(h) }
            groups[h].siblings.append(r)
            groups[h].members.formUnion(groups[g].members)
            for m in groups[g].members where groupOf[m] == g { groupOf[m] = h }
            for (m, gs) in recomputedIn where gs.contains(g) { recomputedIn[m] = gs.subtracting([g]).union([h]) }
            prologueGroup[r] = h
            groups[g].joined = true
            groups[g].members = []
        }
    }

    /// The earliest root among the kernels that read `id` (through views and broadcasts): the
    /// schedule runs kernels in the order of their roots.
    private func firstReader(of id: Int) -> Int {
        consumers[id].map { c -> Int in
            if transparent.contains(c) || matmulViews.contains(c) || nodes[c].op.kind.traits.fusion == .view {
                return firstReader(of: c)
            }
            if let gs = recomputedIn[c] { return gs.map(kernelRoot).min() ?? c }
            if let g = groupOf[c] ?? prologueGroup[c] { return kernelRoot(g) }
            return c
        }.min() ?? Int.max
    }

    /// The root of group `g`'s kernel: a shared reduction's is its latest.
    private func kernelRoot(_ g: Int) -> Int {
        groups[g].placement ?? ([groups[g].root] + groups[g].siblings).max()!
    }

    /// The nodes `r` depends on, counting every node of a group one of them is computed in
    /// (a kernel computes its group whole, so the kernel of a group that reads `r` must not
    /// feed `r`). A recomputed node is computed where it is read, so it brings no group.
    private func upstream(of r: Int) -> Set<Int> {
        var seen: Set<Int> = [], stack = nodes[r].inputs
        var groupsSeen: Set<Int> = []
        while let n = stack.popLast() {
            guard seen.insert(n).inserted else { continue }
            stack += nodes[n].inputs
            if let g = groupOf[n], groupsSeen.insert(g).inserted {
                stack += groups[g].members
                if let m = groups[g].matmul { stack.append(m) }
                if let p = groups[g].prologueOf { stack.append(p) }
                stack += groups[g].siblings
            }
        }
        return seen
    }

    /// Whether matmuls can read transpose `id` in place: it is internal, read only by matmuls,
    /// of rank 2 to 4 (at most two batch axes), its input materialized, and its matrices stored
    /// in the input by rows or by columns with a leading dimension BLAS accepts.
    private func isMatmulView(_ id: Int, perm: [Int]) -> Bool {
        let input = nodes[id].inputs[0], r = perm.count
        guard !external.contains(id), !consumers[id].isEmpty, (2...4).contains(r), !transparent.contains(input),
              consumers[id].allSatisfy({ if case .matmul = nodes[$0].op { return true }; return false }) else { return false }
        return Operand.matrixLayout(shape: nodes[id].shape, strides: permutedStrides(id, perm), transposed: false) != nil
    }

    /// The strides of transpose `id`'s input, in the transpose's axis order.
    private func permutedStrides(_ id: Int, _ perm: [Int]) -> [Int] {
        let strides = nodes[nodes[id].inputs[0]].shape.strides
        return perm.map { strides[$0] }
    }

    /// The input strides a matmul view of transpose `id` reads with.
    func viewStrides(_ id: Int) -> [Int]? {
        guard matmulViews.contains(id), case .transpose(let perm) = nodes[id].op else { return nil }
        return permutedStrides(id, perm)
    }

    /// A matmul's operand: the node to read, and the transpose it reads as a view, if any.
    func matmulOperand(_ id: Int) -> (node: Int, view: Int?) {
        matmulViews.contains(id) ? (nodes[id].inputs[0], id) : (resolve(id), nil)
    }

    /// The kernels, unordered.
    func kernels() -> [PendingKernel] {
        var out: [PendingKernel] = []
        for g in groups.indices {
            let group = groups[g]
            if group.joined { continue }
            if let r = group.prologueOf {
                let reductions = [r] + group.siblings
                var b = CodeBuilder(fusion: self, group: g, accumulator: nil)
                let code = b.build(outputs: reductions.map { nodes[$0].inputs[0] }, shape: group.shape)
                guard case let .reduce(op, axes, _) = nodes[r].op else { continue }
                out.append(PendingKernel(kind: .reduce(op, axes: axes, input: code), inputs: b.loads,
                                         outputs: reductions, nodes: group.members.sorted() + reductions, root: kernelRoot(g)))
                continue
            }
            let outputs = [group.root] + group.members.filter { $0 != group.root && external.contains($0) }.sorted()
            if let m = group.matmul {
                guard case let .matmul(ta, tb) = nodes[m].op else { continue }
                var b = CodeBuilder(fusion: self, group: g, accumulator: group.accumulator ?? m)
                let operands = nodes[m].inputs.map { matmulOperand($0) }
                b.loads = operands.map(\.node)
                // The epilogue must not load a view's input as if it were the view.
                b.viewLoads = Set(operands.indices.filter { operands[$0].view != nil })
                let code = b.build(outputs: outputs, shape: group.shape)
                out.append(PendingKernel(kind: .matmul(transposeA: ta, transposeB: tb, epilogue: code), inputs: b.loads,
                                         outputs: outputs, nodes: [m] + group.members.sorted(), root: group.root,
                                         views: Self.views(operands)))
                continue
            }
            var b = CodeBuilder(fusion: self, group: g, accumulator: nil)
            let code = b.build(outputs: outputs, shape: group.shape)
            out.append(PendingKernel(kind: .elementwise(code), inputs: b.loads, outputs: outputs,
                                     nodes: group.members.sorted(), root: group.root))
        }
        for node in nodes where needed[node.id] && groupOf[node.id] == nil && prologueGroup[node.id] == nil && !matmulViews.contains(node.id) {
            let kind: Kernel.Kind
            switch node.op.kind.traits.fusion {
            case .leaf, .view: continue
            case .elementwise: continue  // grouped or transparent
            case .collective: continue  // bucketed by the compiler (AllReduceBuckets)
            case .reduction:
                guard case let .reduce(op, axes, _) = node.op else { continue }
                let input = nodes[node.inputs[0]]
                kind = .reduce(op, axes: axes, input: FusedCode(shape: input.shape, code: [.load(0)], results: [0], nodes: [nil]))
            case .matmul:
                guard case let .matmul(ta, tb) = node.op else { continue }
                kind = .matmul(transposeA: ta, transposeB: tb, epilogue: nil)
            case .kernel: kind = .node(node.op)
            }
            if case .matmul = kind {
                let operands = node.inputs.map { matmulOperand($0) }
                out.append(PendingKernel(kind: kind, inputs: operands.map(\.node), outputs: [node.id], nodes: [node.id], root: node.id,
                                         views: Self.views(operands)))
                continue
            }
            out.append(PendingKernel(kind: kind, inputs: node.inputs.map { resolve($0) }, outputs: [node.id],
                                     nodes: [node.id], root: node.id))
        }
        return out
    }

    static func views(_ operands: [(node: Int, view: Int?)]) -> [Int: Int] {
        var views: [Int: Int] = [:]
        for (i, o) in operands.enumerated() { if let v = o.view { views[i] = v } }
        return views
    }

    /// The node to read for `id`'s value: a transparent broadcast reads its input instead.
    func resolve(_ id: Int) -> Int {
        var x = id
        while transparent.contains(x) { x = nodes[x].inputs[0] }
        return x
    }
}

/// Emits a group's nodes as SSA code, sharing each value between its uses.
struct CodeBuilder {
    let fusion: Fusion
    let group: Int
    let accumulator: Int?
    var loads: [Int] = []
    /// Loads that are a matmul's strided views, which other code must not share.
    var viewLoads: Set<Int> = []
    var code: [Instr] = []
    var codeNodes: [Int?] = []
    var memo: [Int: Int] = [:]

    init(fusion: Fusion, group: Int, accumulator: Int?) {
        self.fusion = fusion
        self.group = group
        self.accumulator = accumulator
    }

    func resolve(_ id: Int) -> Int { fusion.resolve(id) }

    mutating func build(outputs: [Int], shape: Shape) -> FusedCode {
        let results = outputs.map { emit($0) }
        return FusedCode(shape: shape, code: code, results: results, nodes: codeNodes)
    }

    private mutating func push(_ i: Instr, _ node: Int?) -> Int {
        code.append(i)
        codeNodes.append(node)
        return code.count - 1
    }

    mutating func emit(_ id: Int) -> Int {
        if let v = memo[id] { return v }
        let node = fusion.nodes[id]
        let v: Int
        if id == accumulator {
            v = push(.accumulator, id)
        } else if fusion.groupOf[id] == group || fusion.recomputedIn[id]?.contains(group) == true {
            switch node.op {
            case .unary(let op): v = push(.unary(op, emit(node.inputs[0])), id)
            case .binary(let op):
                let a = emit(node.inputs[0]), b = emit(node.inputs[1])
                v = push(.binary(op, a, b), id)
            case .broadcastTo: v = emit(node.inputs[0])
            default: fatalError("only elementwise nodes join a group")
            }
        } else if case .constant(let c) = node.op {
            v = push(.constant(c), nil)
        } else if fusion.transparent.contains(id) {
            v = emit(node.inputs[0])
        } else {
            let index = loads.indices.first { loads[$0] == id && !viewLoads.contains($0) } ?? { loads.append(id); return loads.count - 1 }()
            v = push(.load(index), nil)
        }
        memo[id] = v
        return v
    }
}
