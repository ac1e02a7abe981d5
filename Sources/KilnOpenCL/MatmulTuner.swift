import Foundation
import KilnCompiler
import KilnGraph

/// A matmul as the kernel choice sees it: C [m, n] = op(A) · op(B) with k the shared size,
/// `batches` times over (a batched matmul).
struct MatmulShape: Hashable {
    let m, n, k: Int
    let transposeA, transposeB: Bool
    let realType: DType
    let batches: Int

    init(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, realType: DType, batches: Int = 1) {
        (self.m, self.n, self.k, self.transposeA, self.transposeB, self.realType) = (m, n, k, transposeA, transposeB, realType)
        self.batches = batches
    }

    init?(_ kernel: Kernel, realType: DType) {
        guard case let .matmul(ta, tb, _) = kernel.kind, let d = kernel.matmulDimensions else { return nil }
        (m, n, k, batches) = (d.m, d.n, d.k, d.batches)
        transposeA = ta
        transposeB = tb
        self.realType = realType
    }

    /// The cache's name for it, e.g. `float32 128x784x256 A.Bt` (m x k x n), with the batch
    /// in front when there is one (`float32 128*128x32x128 A.Bt`).
    var key: String {
        "\(realType) \(batches > 1 ? "\(batches)*" : "")\(m)x\(k)x\(n) \(transposeA ? "At" : "A").\(transposeB ? "Bt" : "B")"
    }
}

/// Chooses each matmul's kernel by measurement: the first time a shape is loaded on a device,
/// every candidate (the vector family, the tiled family at each tile that fits) is built into
/// one OpenCL program, run at that shape and timed; the fastest is kept in `KernelChoiceCache`
/// (on disk), so later loads of any program with that shape measure nothing.
enum MatmulTuner {
    typealias Choice = OpenCLCodegen.MatmulChoice

    /// Each candidate's measurement stops after about this much device time.
    static let budgetSeconds = 0.02

    /// The candidates for `shape` on `device`: the tiled family's tiles that fit the device's
    /// local memory and work-group size, and the vector family (float32 only) where the device
    /// runs a work-item's vectors on SIMD registers (`wideVectors`).
    static func candidates(_ shape: MatmulShape, device: CLDeviceInfo) -> [Choice] {
        let realSize = shape.realType.byteSize
        let tiles = [OpenCLCodegen.Tile.large, .small].filter {
            $0.localBytes(realSize: realSize) <= Int(device.localMemoryBytes) && $0.workItems <= device.maxWorkGroupSize
        }
        var all = tiles.map(Choice.tiled)
        if shape.realType == .float32 && wideVectors(device) {
            all.insert(.vector, at: 0)
            if device.nativeFloatWidth >= 16 && min(shape.m, shape.n) >= wideBlock.vectors * 16
                && shape.batches * shape.m * shape.n * shape.k >= wideBlockWork {
                all.insert(.vectorBlock(rows: wideBlock.rows, vectors: wideBlock.vectors), at: 1)
            }
        }
        return all
    }

    /// The vector family's second register block on AVX-512 devices, for products at least 64
    /// wide: 6 rows of 64 columns (24 accumulators, as the default 12 x 32) read each row of A
    /// once per 64 columns instead of 32, and B's panel row in 4 loads per 6 broadcasts of A.
    /// The convolutions' products ([N·H·W, 288] by [288, 64] and their gradients) run 10-20%
    /// faster with it on PoCL; a product under 64 wide would waste the padded panel.
    static let wideBlock = (rows: 6, vectors: 4)

    /// Products of fewer multiply-adds than this (2^25) do not measure the wide block: its
    /// build costs PoCL about 0.3 s per shape on a cold load, more than its 2-10% saves on a
    /// product of 0.1 ms or less in an epoch (the MLP's matmuls; its cold load went 1.4 -> 3.3 s).
    static let wideBlockWork = 1 << 25

    /// Whether the device's native float vector is 4 wide or more: one work-item's vector is
    /// then the device's SIMD register (PoCL on AVX2 or AVX-512), as the vector family assumes.
    /// Devices that vectorize across work-items report 1 (NVIDIA, Mesa's llvmpipe), and there
    /// the vector family's register blocks build for minutes and run 100x slower than tiles.
    static func wideVectors(_ device: CLDeviceInfo) -> Bool { device.nativeFloatWidth >= 4 }

    /// The family when nothing is measured (`OpenCLOptions.tune` off): vector where the device
    /// has wide vectors, else tiled.
    static func defaultFamily(_ device: CLDeviceInfo) -> OpenCLCodegen.MatmulFamily { wideVectors(device) ? .vector : .tiled }

    /// Products of fewer multiply-adds (m·n·k) than this (64³) are not measured: launch costs
    /// dominate them, so any candidate is as good and timing them only measures noise. They
    /// take the default family (`defaultFamily`).
    static let minimumWork = 1 << 18

    /// A candidate that lost by this factor or more at every one of at least `pruneAfter` shapes
    /// measured on a device, or by `decisiveFactor` at one, is not measured at new shapes there
    /// (the tiled family on a CPU device, the vector family on a GPU): measuring it would only
    /// cost driver builds (PoCL: 0.2-0.3 s a kernel when its cache is cold).
    static let pruneFactor = 3.0, pruneAfter = 2, decisiveFactor = 10.0

    /// The measured choice for every matmul kernel of `program` (by index in its schedule),
    /// measuring the shapes `cache` does not hold yet.
    ///
    /// Shapes are measured largest first (where the candidates differ most), in batches of one
    /// program each: one shape at a time while the device has fewer than `pruneAfter` measured,
    /// then all the rest with the candidates not pruned; a shape left with one candidate takes
    /// it unmeasured.
    static func choices(for program: Program, context: CLContext, options: OpenCLOptions, cache: KernelChoiceCache) throws -> [Int: Choice] {
        let device = context.device
        var shapes: [Int: MatmulShape] = [:]
        for (i, k) in program.kernels.enumerated() {
            if let s = MatmulShape(k, realType: program.realType), s.batches * s.m * s.n * s.k >= minimumWork { shapes[i] = s }
        }
        var known: [MatmulShape: Choice] = [:]
        var unknown: [MatmulShape] = []
        var measured = cache.entries(device: device)
        for s in Set(shapes.values).sorted(by: { ($0.m * $0.n * $0.k, $1.key) > ($1.m * $1.n * $1.k, $0.key) }) {
            if let e = measured[s.key], let c = try? Choice(e.choice), candidates(s, device: device).contains(c) {
                known[s] = c
            } else {
                unknown.append(s)
            }
        }
        while !unknown.isEmpty {
            var batch: [(MatmulShape, [Choice])] = []
            var rest: [MatmulShape] = []
            for s in unknown {
                var open = candidates(s, device: device).filter { !pruned($0, of: s, measured: measured) }
                // The first shape of its float type on a device with wide vectors measures the
                // tiled family at its small tile only: where that loses by `decisiveFactor` (CPU
                // devices), the large one is pruned with it, unbuilt (PoCL: 0.2 s of a cold load).
                if open.contains(.vector) && !measured.keys.contains(where: { $0.hasPrefix("\(s.realType) ") }) {
                    open.removeAll { $0 == .tiled(.large) }
                }
                if open.count <= 1 {
                    if let only = open.first { known[s] = only }
                } else if measured.count >= pruneAfter || batch.isEmpty {
                    batch.append((s, open))
                } else {
                    rest.append(s)
                }
            }
            unknown = rest
            guard !batch.isEmpty else { break }
            var entries: [String: KernelChoiceCache.Entry] = [:]
            for (s, all) in try measure(batch, context: context, options: options) {
                // None could run: the program's own load reports the driver's error.
                let times = all.filter { $0.value.isFinite }
                guard let best = pick(times, shape: s, device: device) else { continue }
                known[s] = best
                entries[s.key] = KernelChoiceCache.Entry(choice: best.description, milliseconds: Dictionary(
                    uniqueKeysWithValues: times.map { ($0.key.description, $0.value * 1e3) }))
            }
            measured.merge(entries) { _, new in new }
            cache.store(device: device, entries)
        }
        return shapes.compactMapValues { known[$0] }
    }

    /// Whether `candidate` lost by `pruneFactor` at every one of at least `pruneAfter` shapes
    /// of `shape`'s float type measured on the device, or by `decisiveFactor` at all of at
    /// least one.
    static func pruned(_ candidate: Choice, of shape: MatmulShape, measured: [String: KernelChoiceCache.Entry]) -> Bool {
        let name = candidate.description, prefix = "\(shape.realType) "
        // A tile never measured goes with another tile of its family that lost decisively.
        if case .tiled = candidate, !measured.contains(where: { $0.key.hasPrefix(prefix) && $0.value.milliseconds[name] != nil }) {
            let tiles = Set(measured.filter { $0.key.hasPrefix(prefix) }.flatMap { $0.value.milliseconds.keys }.filter { $0.hasPrefix("tiled:") })
            if tiles.contains(where: { lostDecisively($0, prefix: prefix, measured: measured) }) { return true }
        }
        var losses = 0
        for (key, e) in measured where key.hasPrefix(prefix) {
            guard let mine = e.milliseconds[name], let best = e.milliseconds.values.min() else { continue }
            if mine < pruneFactor * best { return false }
            losses += 1
        }
        return losses >= pruneAfter || lostDecisively(name, prefix: prefix, measured: measured)
    }

    /// Candidates within this factor of the fastest count as tied (see `pick`).
    static let tieFactor = 1.05

    /// The fastest candidate, or among those tied with it the one that reads A the fewest
    /// times (a block of C per row block of A, so the widest block of columns): measured alone
    /// a product's A stays in cache between the blocks that read it, but in a training step
    /// the product's output and the other kernels' tensors evict it, and each read comes from
    /// memory. The CNN's input gradient on PoCL (25088x64x288): 2.58 against 2.67 ms measured
    /// alone, 2.70 against 2.24 ms in the step, for 12 x 32 against 6 x 64.
    static func pick(_ times: [Choice: Double], shape: MatmulShape, device: CLDeviceInfo) -> Choice? {
        guard let fastest = times.values.min() else { return nil }
        func reads(_ c: Choice) -> Int {
            let width: Int
            switch c {
            case .vector: width = 16 * OpenCLCodegen.defaultBlock(nativeFloatWidth: device.nativeFloatWidth).vectors
            case let .vectorBlock(_, vectors): width = 16 * vectors
            case .tiled(let t): width = t.columns
            }
            return (shape.n + width - 1) / width
        }
        return times.filter { $0.value <= tieFactor * fastest }.min { (reads($0.key), $0.value) < (reads($1.key), $1.value) }?.key
    }

    /// Whether the candidate named `name` lost by `decisiveFactor` at every shape of the float
    /// type (`prefix`) where it was measured, and was measured somewhere.
    static func lostDecisively(_ name: String, prefix: String, measured: [String: KernelChoiceCache.Entry]) -> Bool {
        var any = false
        for (key, e) in measured where key.hasPrefix(prefix) {
            guard let mine = e.milliseconds[name], let best = e.milliseconds.values.min() else { continue }
            if mine < decisiveFactor * best { return false }
            any = true
        }
        return any
    }

    /// Seconds per run of the given candidates at each shape: one program per float type holding
    /// a matmul kernel per shape and candidate, its operands zero.
    static func measure(_ shapes: [(MatmulShape, [Choice])], context shared: CLContext, options: OpenCLOptions) throws -> [MatmulShape: [Choice: Double]] {
        // A queue of its own: the caller's may hold other work, which a finish would wait for.
        let context = try CLContext(device: shared.device)
        var result: [MatmulShape: [Choice: Double]] = [:]
        for realType in Set(shapes.map(\.0.realType)).sorted(by: { $0.byteSize < $1.byteSize }) {
            let g = Graph()
            var outputs: [Tensor] = []
            var wanted: [Int: (MatmulShape, Choice)] = [:]   // matmul node -> what it measures
            for (i, (s, choices)) in shapes.enumerated() where s.realType == realType {
                let batch = s.batches > 1 ? [s.batches] : []
                let a = try g.placeholder("A\(i)", Shape(batch + (s.transposeA ? [s.k, s.m] : [s.m, s.k])), realType)
                let b = try g.placeholder("B\(i)", Shape(batch + (s.transposeB ? [s.n, s.k] : [s.k, s.n])), realType)
                for c in choices {
                    let out = try g.matmul(a, b, transposeA: s.transposeA, transposeB: s.transposeB)
                    outputs.append(out)
                    wanted[out.id] = (s, c)
                }
            }
            let program = try Compiler.compile(g, fetch: outputs, options: CompileOptions(fusion: true, realType: realType))
            var choices: [Int: Choice] = [:]
            for (i, k) in program.kernels.enumerated() {
                if let node = k.nodes.first(where: { wanted[$0] != nil }) { choices[i] = wanted[node]!.1 }
            }
            var fixed = options
            fixed.profile = false
            let exe = try OpenCLExecutable(program: program, context: context, options: fixed, collective: nil, matmulChoices: choices)
            try exe.zeroFeeds()
            var best: [MatmulShape: Double] = [:]
            for (i, k) in program.kernels.enumerated() {
                guard let node = k.nodes.first(where: { wanted[$0] != nil }), let (s, c) = wanted[node] else { continue }
                // A candidate the driver will not launch (a work-group it refuses) never wins.
                let seconds = (try? exe.secondsPerRun(kernel: i, budget: budgetSeconds, giveUpAfter: 4 * (best[s] ?? .infinity))) ?? .infinity
                result[s, default: [:]][c] = seconds
                best[s] = min(best[s] ?? .infinity, seconds)
            }
        }
        return result
    }
}
