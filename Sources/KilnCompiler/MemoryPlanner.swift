import KilnGraph

/// Places every tensor of a schedule: inputs, parameters and state in buffers of their own,
/// transient tensors in one arena by liveness, and optimizer updates in place.
struct MemoryPlanner {
    static let alignment = 64

    let graph: Graph
    let fusion: Fusion
    var kernels: [PendingKernel]
    let fetch: [Int]
    let realType: DType
    let updates: [(target: Tensor, value: Tensor)]
    let buckets: [AllReduceBucket]
    /// Whether elementwise kernels write over an input that dies there (`CompileOptions.inPlace`).
    let inPlace: Bool
    /// Outputs placed over an input's memory: output node to the input's storage.
    private var over: [Int: Int] = [:]

    init(graph: Graph, fusion: Fusion, kernels: [PendingKernel], fetch: [Int], realType: DType,
         updates: [(target: Tensor, value: Tensor)], buckets: [AllReduceBucket] = [], inPlace: Bool = false) {
        self.inPlace = inPlace
        self.updates = updates
        self.buckets = buckets
        self.graph = graph
        self.fusion = fusion
        self.kernels = kernels
        self.fetch = fetch
        self.realType = realType
    }

    var nodes: [Node] { fusion.nodes }

    func bytes(_ id: Int) -> Int {
        let n = nodes[id]
        return n.shape.count * (n.dtype == .int32 ? 4 : realType.byteSize)
    }

    static func aligned(_ b: Int) -> Int { (b + alignment - 1) / alignment * alignment }

    /// Where a node's memory is: reshapes are views of their input's.
    func storage(_ id: Int) -> Int {
        var x = id
        while true {
            if nodes[x].op == .reshape { x = nodes[x].inputs[0] } else if let s = over[x] { x = s } else { return x }
        }
    }

    mutating func plan() throws -> Program {
        var buffers = [BufferDecl(kind: .arena, node: nil, name: "arena", bytes: 0)]
        var location: [Int: Location] = [:]
        var constants: [(Location, Double)] = []
        var persistentBytes = 0
        for n in nodes where fusion.needed[n.id] {
            if case .input(let kind) = n.op {
                let k: BufferDecl.Kind = kind == .feed ? .feed : kind == .parameter ? .parameter : .state
                location[n.id] = Location(buffer: buffers.count, byteOffset: 0)
                buffers.append(BufferDecl(kind: k, node: n.id, name: n.label, bytes: max(bytes(n.id), 4)))
                persistentBytes += bytes(n.id)
            }
        }
        let constantNodes = nodes.filter { fusion.needed[$0.id] && { if case .constant = $0.op { return true }; return false }($0) }
        if !constantNodes.isEmpty {
            let b = buffers.count
            for (i, n) in constantNodes.enumerated() {
                guard case .constant(let v) = n.op else { continue }
                location[n.id] = Location(buffer: b, byteOffset: i * Self.alignment)
                constants.append((location[n.id]!, v))
            }
            buffers.append(BufferDecl(kind: .constants, node: nil, name: "constants", bytes: constantNodes.count * Self.alignment))
            persistentBytes += constantNodes.count * Self.alignment
        }

        // Updates: write the new value straight into the parameter when every reader of the
        // old value runs before (or is) the elementwise kernel that computes it; else copy at the end.
        var producer: [Int: Int] = [:]
        for (k, kernel) in kernels.enumerated() { for o in kernel.outputs { producer[o] = k } }
        func lastReader(_ target: Int) -> Int {
            kernels.indices.last { k in kernels[k].inputs.contains { storage($0) == target } } ?? -1
        }
        var copies: [PendingKernel] = []
        var inPlace = Set<Int>()
        for (target, value) in updates.map({ ($0.target.id, fusion.resolve($0.value.id)) }) where target != value {
            if let k = producer[value], writesElementwise(kernels[k], target), !inPlace.contains(value),
               lastReader(target) <= k, location[value] == nil {
                location[value] = location[target]
                inPlace.insert(value)
            } else {
                let code = FusedCode(shape: nodes[target].shape, code: [.load(0)], results: [0], nodes: [nil])
                copies.append(PendingKernel(kind: .elementwise(code), inputs: [value], outputs: [target],
                                            nodes: [], root: Int.max))
            }
        }
        kernels += copies
        if self.inPlace { placeOverInputs(fixed: Set(location.keys)) }

        // Liveness of transient tensors, in kernel indices.
        var start: [Int: Int] = [:], end: [Int: Int] = [:]
        for (k, kernel) in kernels.enumerated() {
            for o in kernel.outputs.map(storage) where location[o] == nil && start[o] == nil { start[o] = k; end[o] = k }
            for i in kernel.inputs {
                let s = storage(i)
                if start[s] != nil { end[s] = max(end[s]!, k) }
            }
        }
        for f in fetch {
            let s = storage(fusion.resolve(f))
            if start[s] != nil { end[s] = kernels.count }
        }
        // A convolution's unfold and the matmul reading its patches, and a matmul and the fold
        // of its product, may run chunk by chunk of images (the CPU backend's chunked pairs,
        // which keep each chunk's patches in cache): the first kernel's operands stay in use
        // until the second has run, so the second's outputs are placed apart from them.
        for k in kernels.indices.dropLast() where chunkable(kernels[k], kernels[k + 1]) {
            for i in kernels[k].inputs {
                let s = storage(i)
                if start[s] != nil { end[s] = max(end[s]!, k + 1) }
            }
        }
        let transient = start.keys.sorted()
        var offsets: [Int: Int] = [:]
        // Largest first, each at the lowest offset free during its lifetime.
        for t in transient.sorted(by: { (bytes($0), $1) > (bytes($1), $0) }) {
            let size = Self.aligned(bytes(t))
            let overlapping = offsets.keys.filter { o in start[o]! <= end[t]! && start[t]! <= end[o]! }
                .map { (offsets[$0]!, Self.aligned(bytes($0))) }.sorted { $0.0 < $1.0 }
            var candidate = 0
            for (off, sz) in overlapping {
                if candidate + size <= off { break }
                candidate = max(candidate, off + sz)
            }
            offsets[t] = candidate
        }
        for t in transient { location[t] = Location(buffer: 0, byteOffset: offsets[t]!) }
        let arenaBytes = transient.map { offsets[$0]! + Self.aligned(bytes($0)) }.max() ?? 0
        buffers[0] = BufferDecl(kind: .arena, node: nil, name: "arena", bytes: max(arenaBytes, Self.alignment))
        var lowerBound = 0
        for k in 0...max(kernels.count, 0) {
            let live = transient.filter { start[$0]! <= k && k <= end[$0]! }.reduce(0) { $0 + Self.aligned(bytes($1)) }
            lowerBound = max(lowerBound, live)
        }

        func operand(_ id: Int) -> Operand {
            let n = nodes[id]
            return Operand(location: location[storage(id)]!, shape: n.shape, dtype: n.dtype, node: id)
        }
        // A view: the transpose's shape over its input's memory, with the permuted strides.
        func input(_ p: PendingKernel, _ i: Int) -> Operand {
            guard let v = p.views[i], let strides = fusion.viewStrides(v) else { return operand(p.inputs[i]) }
            let n = nodes[v]
            return Operand(location: location[storage(p.inputs[i])]!, shape: n.shape, dtype: n.dtype, node: v, strides: strides)
        }
        let planned = kernels.enumerated().map { k, p in
            Kernel(name: "k\(k)_\(Self.kindName(p.kind))", kind: p.kind, inputs: p.inputs.indices.map { input(p, $0) },
                   outputs: p.outputs.map(operand), nodes: p.nodes)
        }
        let stats = MemoryStats(arenaBytes: arenaBytes, transientBytes: transient.reduce(0) { $0 + Self.aligned(bytes($1)) },
                                liveLowerBound: lowerBound, persistentBytes: persistentBytes)
        return Program(graph: graph, kernels: planned, buffers: buffers, fetches: fetch.map { operand(fusion.resolve($0)) },
                       constants: constants, realType: realType, memory: stats, fused: fusion.enabled, buckets: buckets)
    }

    /// Places elementwise kernels' outputs over an input (`inPlace`): one of the kernel's size
    /// and shape, read element for element (not through a view), transient (not in `fixed`:
    /// parameters, feeds, constants, updates written in place), not fetched, and read by no
    /// later kernel. The write then lands on the lines the kernel's reads brought in (no read
    /// for ownership of the output), and the arena holds one tensor where it held two.
    private mutating func placeOverInputs(fixed: Set<Int>) {
        let fetched = Set(fetch.map { storage(fusion.resolve($0)) })
        for (k, p) in kernels.enumerated() {
            guard case .elementwise(let code) = p.kind else { continue }
            let loaded = Set(code.code.compactMap { instr -> Int? in if case .load(let j) = instr { return j }; return nil })
            var taken = Set<Int>()
            for o in p.outputs where !fixed.contains(o) && storage(o) == o && nodes[o].shape == code.shape {
                let found = p.inputs.indices.first { j in
                    let s = storage(p.inputs[j])
                    guard p.views[j] == nil, loaded.contains(j), !fixed.contains(s), !fetched.contains(s), !taken.contains(s), s != o,
                          nodes[p.inputs[j]].shape == code.shape, bytes(s) == bytes(o), nodes[s].dtype == nodes[o].dtype else { return false }
                    // Read by no later kernel.
                    return !kernels[(k + 1)...].contains { q in q.inputs.contains { storage($0) == s } }
                }
                if let j = found {
                    let s = storage(p.inputs[j])
                    taken.insert(s)
                    over[o] = s
                }
            }
        }
    }

    /// Whether a kernel may write its result straight over `target`: elementwise code reads
    /// `target` only at the element it writes; a matmul's epilogue likewise, unless `target`
    /// is an operand of the product; any other kernel only when it does not read `target`.
    func writesElementwise(_ k: PendingKernel, _ target: Int) -> Bool {
        switch k.kind {
        case .elementwise: return true
        case .matmul(_, _, .some): return !k.inputs.prefix(2).contains { storage($0) == target }
        default: return !k.inputs.contains { storage($0) == target }
        }
    }

    /// Whether `second` reads what `first` makes as an unfold's patches into a matmul, or a
    /// matmul's product into a fold.
    func chunkable(_ first: PendingKernel, _ second: PendingKernel) -> Bool {
        guard let made = first.outputs.first, let read = second.inputs.first, storage(read) == storage(made) else { return false }
        switch (first.kind, second.kind) {
        case (.node(.unfold), .matmul), (.matmul, .node(.fold)): return true
        default: return false
        }
    }

    static func kindName(_ kind: Kernel.Kind) -> String {
        switch kind {
        case .elementwise: return "elementwise"
        case .reduce(let op, _, _): return op.rawValue
        case .matmul(_, _, let e): return e == nil ? "matmul" : "matmul_epilogue"
        case .node(let op): return op.kind.rawValue
        case .allReduceStart: return "allreduce_start"
        case .allReduceFinish: return "allreduce_finish"
        }
    }
}
