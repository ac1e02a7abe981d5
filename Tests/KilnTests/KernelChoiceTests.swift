import Foundation
import Testing
@testable import KilnOpenCL
import Kiln

/// Kernel choice by measurement: what is measured, what the cache keeps and how a later load
/// uses it, and when a candidate stops being measured.
@Suite struct KernelChoiceTests {
    /// A program with matmuls at two shapes (one used twice), and the options with a fresh cache
    /// folder and tuning on.
    func setup() throws -> (Program, OpenCLOptions, URL) {
        let g = Graph()
        // Over MatmulTuner.minimumWork (64³ multiply-adds), and at the edges of the tiles.
        let x = try g.placeholder("x", [80, 64]), w = try g.placeholder("w", [64, 65]), v = try g.placeholder("v", [65, 64])
        let h = try x.matmul(w)
        let y = try (h.matmul(v) + x).matmul(w)   // 80x64x65 again, as h
        let program = try Compiler.compile(g, fetch: [y], options: CompileOptions(fusion: true, realType: .float32))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-choices-\(UUID().uuidString)")
        var options = try OpenCLOptions.fromEnvironment()
        options.matmul = nil
        options.tune = true
        options.cacheDirectory = folder.path
        return (program, options, folder)
    }

    @Test func measuresEachShapeOnceAndKeepsTheFastest() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let (program, options, folder) = try setup()
        defer { try? FileManager.default.removeItem(at: folder) }
        let exe = try OpenCLExecutable(program: program, context: ctx, options: options)
        let entries = KernelChoiceCache.shared(options).entries(device: ctx.device)
        // Two distinct shapes of equal work, 80x64x65 and 80x65x64 (m x k x n), measured one at a
        // time: the first with every candidate, the second with those the first did not prune
        // (a shape left with one is not measured).
        let first = "float32 80x64x65 A.B", second = "float32 80x65x64 A.B"
        let e = try #require(entries[first], "\(entries)")
        let all = MatmulTuner.candidates(try #require(MatmulShape(m: first)), device: ctx.device)
        // Beside the vector family, the first shape takes the small tile only.
        let candidates = all.contains(.vector) ? all.filter { $0 != .tiled(.large) } : all
        #expect(Set(e.milliseconds.keys) == Set(candidates.map(\.description)), "\(e.milliseconds)")
        let secondShape = try #require(MatmulShape(m: second))
        let open = all.filter { !MatmulTuner.pruned($0, of: secondShape, measured: [first: e]) }
        #expect(entries[second].map { Set($0.milliseconds.keys) } == (open.count > 1 ? Set(open.map(\.description)) : nil))
        for (_, e) in entries {
            #expect(e.milliseconds.allSatisfy { $0.value > 0 && $0.value.isFinite })
            // The fastest, or one tied with it (within 5%) that reads A fewer times.
            let fastest = try #require(e.milliseconds.values.min())
            #expect(try #require(e.milliseconds[e.choice]) <= MatmulTuner.tieFactor * fastest)
        }
        // Every matmul kernel runs its shape's choice.
        #expect(exe.matmulKernels.count == 3)
        for (name, choice) in exe.matmulKernels {
            let k = try #require(program.kernels.first { $0.name == name })
            let shape = try #require(MatmulShape(k, realType: .float32))
            #expect(choice == entries[shape.key]?.choice ?? open.first?.description)
        }
        // On disk, for the next process.
        let text = try String(contentsOf: folder.appendingPathComponent("kernel-choices.json"), encoding: .utf8)
        #expect(text.contains("80x64x65") && text.contains(KernelChoiceCache.key(ctx.device)))
    }

    /// A cached choice is used as it is, without measuring: here one the measurement would
    /// hardly pick (the large tile for an 80-row product), written into the file beforehand.
    @Test func aLaterLoadTakesTheCachedChoice() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let (program, options, folder) = try setup()
        defer { try? FileManager.default.removeItem(at: folder) }
        let large = "tiled:128x128x16:8x8"
        let seeded = KernelChoiceCache(file: folder.appendingPathComponent("kernel-choices.json"))
        let entry = KernelChoiceCache.Entry(choice: large, milliseconds: [large: 1, "tiled:64x64x16:4x4": 2])
        seeded.store(device: ctx.device, ["float32 80x64x65 A.B": entry, "float32 80x65x64 A.B": entry])
        let exe = try OpenCLExecutable(program: program, context: ctx, options: options)
        #expect(Set(exe.matmulKernels.values) == [large])
        #expect(KernelChoiceCache.shared(options).entries(device: ctx.device).values.allSatisfy { $0 == entry })
    }

    /// An unreadable cache is measured again and rewritten; the results still match the oracle.
    @Test func aCorruptCacheIsReplaced() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let (program, options, folder) = try setup()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("kernel-choices.json")
        try Data("{ not json".utf8).write(to: file)
        let exe = try OpenCLExecutable(program: program, context: ctx, options: options)
        #expect(exe.matmulKernels.count == 3)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any]
        #expect(object?["version"] as? Int == KernelChoiceCache.version)
    }

    /// A product under `minimumWork` is not measured: it takes the default family.
    @Test func smallProductsAreNotMeasured() throws {
        guard let ctx = OpenCLSupport.context else { return }
        var (_, options, folder) = try setup()
        defer { try? FileManager.default.removeItem(at: folder) }
        options.cacheDirectory = folder.path
        let g = Graph()
        let y = try g.placeholder("a", [16, 16]).matmul(try g.placeholder("b", [16, 16]))
        let program = try Compiler.compile(g, fetch: [y], options: CompileOptions(realType: .float32))
        let exe = try OpenCLExecutable(program: program, context: ctx, options: options)
        let expected = MatmulTuner.defaultFamily(ctx.device) == .vector ? "vector" : "tiled:64x64x16:4x4"
        #expect(Array(exe.matmulKernels.values) == [expected])
        #expect(KernelChoiceCache.shared(options).entries(device: ctx.device).isEmpty)
    }

    /// KILN_MATMUL fixes every matmul's kernel and measures nothing.
    @Test func aForcedFamilyMeasuresNothing() throws {
        guard let ctx = OpenCLSupport.context else { return }
        var (program, options, folder) = try setup()
        defer { try? FileManager.default.removeItem(at: folder) }
        options.matmul = try OpenCLOptions.Matmul("tiled:64x64x16:4x4")
        let exe = try OpenCLExecutable(program: program, context: ctx, options: options)
        #expect(Set(exe.matmulKernels.values) == ["tiled:64x64x16:4x4"])
        #expect(KernelChoiceCache.shared(options).entries(device: ctx.device).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }

    /// A candidate that lost by 3x at two shapes of the same float type, or by 10x at every one
    /// measured, is pruned; one that won anywhere, or lost by less than 10x at only one shape,
    /// or lost at another float type, is not.
    @Test func pruning() throws {
        typealias E = KernelChoiceCache.Entry
        let shape = try #require(MatmulShape(m: "float32 64x64x64 A.B"))
        let lost: [String: E] = [
            "float32 8x8x8 A.B": E(choice: "vector", milliseconds: ["vector": 1, "tiled:64x64x16:4x4": 3.5]),
            "float32 9x9x9 A.Bt": E(choice: "vector", milliseconds: ["vector": 1, "tiled:64x64x16:4x4": 9]),
        ]
        #expect(MatmulTuner.pruned(.tiled(.small), of: shape, measured: lost))
        #expect(!MatmulTuner.pruned(.vector, of: shape, measured: lost))
        #expect(!MatmulTuner.pruned(.tiled(.large), of: shape, measured: lost))   // never measured
        #expect(!MatmulTuner.pruned(.tiled(.small), of: shape, measured: lost.filter { $0.key.hasPrefix("float32 8x") }))
        var close = lost
        close["float32 10x10x10 A.B"] = E(choice: "vector", milliseconds: ["vector": 1, "tiled:64x64x16:4x4": 2.9])
        #expect(!MatmulTuner.pruned(.tiled(.small), of: shape, measured: close))
        let double = try #require(MatmulShape(m: "float64 64x64x64 A.B"))
        #expect(!MatmulTuner.pruned(.tiled(.small), of: double, measured: lost))
        // Lost by 10x at the only shape measured: pruned; by less at one of them: not.
        let decisive: [String: E] = ["float32 8x8x8 A.B": E(choice: "vector", milliseconds: ["vector": 1, "tiled:64x64x16:4x4": 10.5])]
        #expect(MatmulTuner.pruned(.tiled(.small), of: shape, measured: decisive))
        #expect(!MatmulTuner.pruned(.tiled(.small), of: shape, measured: decisive.merging(close) { a, _ in a }))
        // A tile never measured goes with a tile of its family that lost by 10x; not with one
        // that lost by less, nor with a tile of another float type.
        #expect(MatmulTuner.pruned(.tiled(.large), of: shape, measured: decisive))
        #expect(!MatmulTuner.pruned(.tiled(.large), of: shape, measured: decisive.merging(close) { a, _ in a }))
        #expect(!MatmulTuner.pruned(.tiled(.large), of: double, measured: decisive))
    }

    /// Among candidates within 5% of the fastest, the one reading A the fewest times (the
    /// widest block of columns) wins; outside 5%, the fastest.
    @Test func tiesGoToTheWidestBlock() throws {
        guard let ctx = OpenCLSupport.context else { return }
        let shape = MatmulShape(m: 25088, n: 288, k: 64, transposeA: false, transposeB: false, realType: .float32)
        let wide = OpenCLCodegen.MatmulChoice.vectorBlock(rows: 6, vectors: 4)
        #expect(MatmulTuner.pick([.vector: 2.58, wide: 2.67], shape: shape, device: ctx.device) == wide)
        #expect(MatmulTuner.pick([.vector: 2.40, wide: 2.67], shape: shape, device: ctx.device) == .vector)
        // Equal reads (64 columns each): the faster; 128 columns read A fewer times still.
        #expect(MatmulTuner.pick([.vector: 2.70, wide: 2.60, .tiled(.small): 2.61], shape: shape, device: ctx.device) == wide)
        #expect(MatmulTuner.pick([.vector: 2.70, wide: 2.60, .tiled(.large): 2.72], shape: shape, device: ctx.device) == .tiled(.large))
        #expect(MatmulTuner.pick([:], shape: shape, device: ctx.device) == nil)
    }

    @Test func choicesReadBackAsWritten() throws {
        for c: OpenCLCodegen.MatmulChoice in [.vector, .vectorBlock(rows: 6, vectors: 4), .tiled(.large), .tiled(.small)] {
            #expect(try OpenCLCodegen.MatmulChoice(c.description) == c)
        }
        #expect(throws: KilnError.self) { try OpenCLCodegen.MatmulChoice("vector:0x4") }
        #expect(throws: KilnError.self) { try OpenCLCodegen.MatmulChoice("tiled") }
        #expect(throws: KilnError.self) { try OpenCLCodegen.MatmulChoice("fast") }
    }
}

extension MatmulShape {
    /// Parses a cache key (`float32 <m>x<k>x<n> A.Bt`), for tests.
    init?(m key: String) {
        let parts = key.split(separator: " ")
        guard parts.count == 3, let realType = DType(rawValue: String(parts[0])) else { return nil }
        let dims = parts[1].split(separator: "x").compactMap { Int($0) }
        let forms = parts[2].split(separator: ".")
        guard dims.count == 3, forms.count == 2 else { return nil }
        self.init(m: dims[0], n: dims[2], k: dims[1], transposeA: forms[0] == "At", transposeB: forms[1] == "Bt", realType: realType)
    }
}
