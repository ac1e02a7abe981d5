import Foundation
import Testing
@testable import KilnOpenCL
import KilnKernels
import Kiln

/// The op catalogue is complete: every op owes its checks and its kernels, and these tests
/// (which need no device) fail when one is missing.
@Suite struct OpCatalogueTests {
    /// Every op that owes a device-vs-oracle check is in a parity case (forward or gradient).
    /// The small set (`kiln selftest --small`, run under Oclgrind) too, with the same cases.
    @Test(arguments: [false, true])
    func everyOpHasAParityCase(small: Bool) throws {
        let cases = small ? OpCases.small : OpCases.parity
        let covered = try cases.reduce(into: Set<OpKind>()) { $0.formUnion(try $1.kinds()) }
        let owed = Set(OpKind.allCases.filter(\.traits.parity))
        #expect(owed.subtracting(covered).isEmpty, "ops no parity case runs: \(owed.subtracting(covered).map(\.rawValue).sorted())")
        if small {
            // Every case but the matmul sizes has its small twin; the steps but the two largest models.
            let others = { (c: [OpCase]) in c.filter { !$0.name.hasPrefix("matmul: ") || $0.name.contains("epilogue") }.count }
            #expect(others(OpCases.small) == others(OpCases.parity))
            #expect(OpCases.small.filter { $0.name.hasPrefix("matmul: ") }.count >= 7)
            #expect(DeviceCheck.small.count == OpCases.small.count + DeviceCheck.steps.count - 2)
        }
    }

    /// Every op of the catalogue is named by exactly one `Op`, and its fusion class agrees with
    /// the way the compiler treats it.
    @Test func kindsAreDistinct() {
        #expect(Set(OpKind.allCases.map(\.rawValue)).count == OpKind.allCases.count)
        for op in UnaryOp.allCases { #expect(op.kind.traits.fusion == .elementwise && op.kind.rawValue == op.rawValue) }
        for op in BinaryOp.allCases { #expect(op.kind.traits.fusion == .elementwise && op.kind.rawValue == op.rawValue) }
        for op in ReduceOp.allCases { #expect(op.kind.traits.fusion == .reduction && op.kind.rawValue == op.rawValue) }
    }

    /// The OpenCL source of every parity case, fused and unfused, in both matmul families and
    /// both float types, defines every kernel its launches name and every function its code
    /// calls: a missing kernel fails here rather than at clBuildProgram on a device.
    @Test(arguments: [DType.float32, .float64])
    func everyLaunchHasItsKernel(realType: DType) throws {
        let g = try CaseGraph(OpCases.parity.filter { !$0.name.contains("512") })
        let fetch = try g.fetches(gradients: true).map(\.tensor)
        for fusion in [false, true] {
            let program = try Compiler.compile(g.graph, fetch: fetch, options: CompileOptions(fusion: fusion, realType: realType))
            for family in [OpenCLCodegen.MatmulFamily.tiled, .vector] {
                let code = try OpenCLCodegen(program: program, matmul: family)
                let source = code.source
                let defined = Self.matches(#"__kernel\s+(?:__attribute__\(\([^)]*\)\)\)\s*)?void\s+(\w+)\s*\("#, in: source)
                let undefined = Set(code.launches.map(\.function)).subtracting(defined)
                #expect(undefined.isEmpty, "launched but not defined (fusion \(fusion), \(family), \(realType)): \(undefined.sorted())")
                let functions = defined.union(Self.matches(#"inline\s+\w+\s+(\w+)\s*\("#, in: source))
                let uncalled = Self.matches(#"\b(k_\w+|red_\w+|kiln_\w+)\s*\("#, in: source).subtracting(functions)
                #expect(uncalled.isEmpty, "called but not defined (fusion \(fusion), \(family), \(realType)): \(uncalled.sorted())")
            }
        }
    }

    /// Every kernel file under Kernels/ is embedded (a new family needs its line in
    /// KernelSources.swift and its resource in Package.swift, without which it does not compile).
    @Test func everyKernelFileIsEmbedded() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Kernels")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".cl") }
        #expect(!files.isEmpty)
        #expect(Set(files) == Set(KernelSources.all.keys), "Kernels/ has \(files.sorted()); KernelSources embeds \(KernelSources.all.keys.sorted())")
    }

    static func matches(_ pattern: String, in text: String) -> Set<String> {
        let re = try! NSRegularExpression(pattern: pattern)
        let ns = text as NSString
        return Set(re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) })
    }
}
