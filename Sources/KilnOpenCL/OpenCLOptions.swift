import Foundation
import KilnGraph

/// The OpenCL backend's settings from the environment: the one place that reads
/// `KILN_OPENCL_DEVICE`, `KILN_DEBUG`, `KILN_PROFILE` (for OpenCL), `KILN_MATMUL`,
/// `KILN_VECTOR_BLOCK`, `KILN_VECTOR_WIDTH`, `KILN_PACK`, `KILN_TUNE` and `KILN_CACHE_DIR`. `OpenCLExecutable` takes them and
/// hands the code generator its part, so tests set them as values.
public struct OpenCLOptions: Sendable, Equatable {
    /// The device (`KILN_OPENCL_DEVICE`): an index into `kiln devices`' list, or a fragment of
    /// a device or platform name. Default nil: the first GPU (in a job, the local rank's), else
    /// the first device.
    public var device: String?
    /// Print every generated kernel's source and the OpenCL build log, and build without `-w`
    /// (`KILN_DEBUG=1`). Default: off.
    public var debug = false
    /// Collect OpenCL event timestamps and print a per-kernel table when an executable is
    /// released (`KILN_PROFILE=1`). Default: off.
    public var profile = false
    /// The matmul kernel family, and for the tiled family optionally a fixed tile
    /// (`KILN_MATMUL=tiled|vector|tiled:<tile>`). Default nil: per matmul, the candidate measured
    /// fastest (see `tune`).
    public var matmul: Matmul?
    /// The vector family's register block (`KILN_VECTOR_BLOCK=<rows>x<float16s>`, for tuning).
    /// Default nil: 12 x 2 where the device's native float width is 16 (AVX-512), else 6 x 1.
    public var vectorBlock: VectorBlock?
    /// Floats per vector variable in the vector family, 8 or 16 (`KILN_VECTOR_WIDTH`).
    /// Default nil: the device's native float width.
    public var vectorWidth: Int?
    /// Pack every B operand of the vector family into panels, also those read in place
    /// (`KILN_PACK=always`). Default: off.
    public var packAlways = false
    /// Choose each matmul's kernel by measuring the candidates on the device the first time its
    /// shape is loaded (`KILN_TUNE=0` turns it off: the family then follows the device type).
    /// `matmul` overrides it. Default: on.
    public var tune = true
    /// Where measured kernel choices are kept (`KILN_CACHE_DIR`; unset: `$XDG_CACHE_HOME/kiln`,
    /// else `~/.cache/kiln`). nil (the default of values made in code) keeps them in memory for
    /// the process only.
    public var cacheDirectory: String?

    public init() {}

    static func defaultCacheDirectory(_ env: [String: String]) -> String? {
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/kiln" }
        if let home = env["HOME"], !home.isEmpty { return home + "/.cache/kiln" }
        return nil
    }

    /// A matmul kernel family, with a fixed tile for the tiled family or none (chosen per matmul).
    public struct Matmul: Sendable, Equatable, CustomStringConvertible {
        let family: OpenCLCodegen.MatmulFamily
        let tile: OpenCLCodegen.Tile?

        /// Local-memory tiles, chosen per matmul.
        public static let tiled = Matmul(family: .tiled, tile: nil)
        /// Wide-vector register blocks (float32 only; float64 programs use the tiled family).
        public static let vector = Matmul(family: .vector, tile: nil)

        init(family: OpenCLCodegen.MatmulFamily, tile: OpenCLCodegen.Tile?) {
            self.family = family
            self.tile = tile
        }

        /// `tiled`, `vector`, or `tiled:<rows>x<columns>x<depth>:<threadRows>x<threadColumns>`
        /// (e.g. `tiled:128x128x16:8x8`).
        public init(_ text: String) throws {
            let name = text.prefix { $0 != ":" }
            guard let family = OpenCLCodegen.MatmulFamily(rawValue: String(name)) else {
                throw KilnError.invalidArgument(op: "KILN_MATMUL", message: "'\(text)' is not tiled, tiled:<tile> or vector")
            }
            var tile: OpenCLCodegen.Tile?
            if name.count < text.count {
                guard family == .tiled else { throw KilnError.invalidArgument(op: "KILN_MATMUL", message: "'\(text)': only the tiled family takes a tile") }
                tile = try OpenCLCodegen.Tile.parse(text.dropFirst(name.count + 1))
            }
            self.init(family: family, tile: tile)
        }

        public var description: String { family.rawValue + (tile.map { ":\($0)" } ?? "") }
    }

    /// The vector family's register block: `rows` rows of `vectors` 16-float column groups.
    public struct VectorBlock: Sendable, Equatable {
        public var rows: Int
        public var vectors: Int

        /// Both in 1...16.
        public init(rows: Int, vectors: Int) throws {
            try self.init("\(rows)x\(vectors)")
        }

        /// `<rows>x<float16s>` (e.g. `12x2`), both in 1...16.
        public init(_ text: String) throws {
            let parts = text.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let rows = parts[0], let vectors = parts[1], (1...16).contains(rows), (1...16).contains(vectors) else {
                throw KilnError.invalidArgument(op: "KILN_VECTOR_BLOCK", message: "'\(text)' is not <rows>x<float16s> with both in 1...16 (e.g. 12x2)")
            }
            self.rows = rows
            self.vectors = vectors
        }
    }

    /// The settings given by `env`'s variables, the defaults for those unset.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> OpenCLOptions {
        let reader = SettingsReader(env)
        var options = OpenCLOptions()
        options.device = reader.string("KILN_OPENCL_DEVICE")
        if let v = try reader.flag("KILN_DEBUG") { options.debug = v }
        if let v = try reader.flag("KILN_PROFILE") { options.profile = v }
        options.matmul = try reader.string("KILN_MATMUL").map(Matmul.init)
        options.vectorBlock = try reader.string("KILN_VECTOR_BLOCK").map(VectorBlock.init)
        if let text = reader.string("KILN_VECTOR_WIDTH") {
            guard let width = Int(text), width == 8 || width == 16 else { throw reader.invalid("KILN_VECTOR_WIDTH", text, "is not 8 or 16") }
            options.vectorWidth = width
        }
        if let v = try reader.flag("KILN_TUNE") { options.tune = v }
        options.cacheDirectory = reader.string("KILN_CACHE_DIR") ?? defaultCacheDirectory(env)
        if let text = reader.string("KILN_PACK") {
            guard text == "always" else { throw reader.invalid("KILN_PACK", text, "is not always") }
            options.packAlways = true
        }
        return options
    }
}
