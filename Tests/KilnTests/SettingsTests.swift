import Testing
@testable import KilnOpenCL
import Kiln

/// The layers' settings read from an environment: defaults, values, and invalid values refused
/// with the variable and the value named; the code generator taking its knobs as values.
@Suite struct SettingsTests {
    /// The error text `body` throws ("" when it throws none).
    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return ""
    }

    @Test func defaults() throws {
        #expect(try CompilerSettings.fromEnvironment([:]) == CompilerSettings())
        #expect(try CPUSettings.fromEnvironment([:]) == CPUSettings())
        #expect(try OpenCLOptions.fromEnvironment([:]) == OpenCLOptions())
        #expect(try MPISettings.fromEnvironment([:]) == MPISettings())
        let c = CompilerSettings()
        #expect(c.fusion && c.bucketBytes == 1 << 18 && !c.checkNumerics)
        #expect(CPUSettings().threads == nil && !CPUSettings().profile)
        let o = OpenCLOptions()
        #expect(o.device == nil && !o.debug && !o.profile && o.matmul == nil && o.vectorBlock == nil && o.vectorWidth == nil && !o.packAlways)
        #expect(MPISettings().library == nil)
        // Empty counts as unset.
        #expect(try OpenCLOptions.fromEnvironment(["KILN_OPENCL_DEVICE": "", "KILN_MATMUL": ""]) == OpenCLOptions())
    }

    @Test func values() throws {
        let c = try CompilerSettings.fromEnvironment(["KILN_FUSION": "0", "KILN_BUCKET_BYTES": "4096", "KILN_CHECK_NUMERICS": "1"])
        #expect(!c.fusion && c.bucketBytes == 4096 && c.checkNumerics)
        let cpu = try CPUSettings.fromEnvironment(["KILN_CPU_THREADS": "3", "KILN_PROFILE": "1"])
        #expect(cpu.threads == 3 && cpu.profile)
        let o = try OpenCLOptions.fromEnvironment(["KILN_OPENCL_DEVICE": "pthread", "KILN_DEBUG": "1", "KILN_PROFILE": "1",
                                                   "KILN_MATMUL": "tiled:64x64x16:4x4", "KILN_VECTOR_BLOCK": "4x4",
                                                   "KILN_VECTOR_WIDTH": "16", "KILN_PACK": "always"])
        #expect(o.device == "pthread" && o.debug && o.profile && o.packAlways && o.vectorWidth == 16)
        #expect(o.matmul?.description == "tiled:64x64x16:4x4" && o.matmul?.tile == .small)
        #expect(o.vectorBlock == (try OpenCLOptions.VectorBlock(rows: 4, vectors: 4)))
        #expect(try OpenCLOptions.fromEnvironment(["KILN_MATMUL": "vector"]).matmul == .vector)
        #expect(try MPISettings.fromEnvironment(["KILN_MPI_LIBRARY": "libmpi.so.12"]).library == "libmpi.so.12")
    }

    /// Flags given explicitly win over the settings.
    @Test func explicitOptionsWin() throws {
        var settings = CompilerSettings()
        settings.fusion = false
        settings.bucketBytes = 64
        #expect(try CompileOptions(settings: settings).resolved() == (false, 64))
        #expect(try CompileOptions(fusion: true, bucketBytes: 128, settings: settings).resolved() == (true, 128))
    }

    @Test func invalidValuesNameTheVariable() {
        #expect(message { _ = try CompilerSettings.fromEnvironment(["KILN_FUSION": "off"]) } == "KILN_FUSION: 'off' is not 0 or 1")
        #expect(message { _ = try CompilerSettings.fromEnvironment(["KILN_BUCKET_BYTES": "1k"]) } == "KILN_BUCKET_BYTES: '1k' is not a whole number of at least 1")
        #expect(message { _ = try CPUSettings.fromEnvironment(["KILN_CPU_THREADS": "0"]) } == "KILN_CPU_THREADS: '0' is not a whole number of at least 1")
        #expect(message { _ = try OpenCLOptions.fromEnvironment(["KILN_MATMUL": "blocked"]) } == "KILN_MATMUL: 'blocked' is not tiled, tiled:<tile> or vector")
        #expect(message { _ = try OpenCLOptions.fromEnvironment(["KILN_MATMUL": "vector:8x8"]) } == "KILN_MATMUL: 'vector:8x8': only the tiled family takes a tile")
        #expect(message { _ = try OpenCLOptions.fromEnvironment(["KILN_MATMUL": "tiled:3x3"]) }.hasPrefix("KILN_MATMUL: tile '3x3' is not"))
        #expect(message { _ = try OpenCLOptions.fromEnvironment(["KILN_VECTOR_BLOCK": "20x2"]) }.hasPrefix("KILN_VECTOR_BLOCK: '20x2' is not"))
        #expect(message { _ = try OpenCLOptions.fromEnvironment(["KILN_VECTOR_WIDTH": "4"]) } == "KILN_VECTOR_WIDTH: '4' is not 8 or 16")
        #expect(message { _ = try OpenCLOptions.fromEnvironment(["KILN_PACK": "never"]) } == "KILN_PACK: 'never' is not always")
        #expect(message { _ = try OpenCLOptions.fromEnvironment(["KILN_DEBUG": "yes"]) } == "KILN_DEBUG: 'yes' is not 0 or 1")
    }

    /// The vector family's block, width and packing reach the generated code as values.
    @Test func codegenTakesItsKnobs() throws {
        let g = Graph()
        let a = try g.placeholder("a", [64, 64]), b = try g.placeholder("b", [64, 64])
        let program = try Compiler.compile(g, fetch: [try g.matmul(a, b)], options: CompileOptions(realType: .float32))
        let plain = try OpenCLCodegen(program: program, matmul: .vector, nativeFloatWidth: 16)
        #expect(plain.block == (12, 2) && plain.vectorWidth == 16 && plain.scratchBytes.isEmpty)
        var options = OpenCLOptions()
        options.vectorBlock = try .init(rows: 4, vectors: 1)
        options.vectorWidth = 8
        options.packAlways = true
        let tuned = try OpenCLCodegen(program: program, matmul: .vector, nativeFloatWidth: 16, options: options)
        #expect(tuned.block == (4, 1) && tuned.vectorWidth == 8)
        #expect(tuned.scratchBytes.count == 1 && tuned.launches.contains { $0.function == "pack_panels" })
    }
}
