/// An IDX file, the format of MNIST and Fashion-MNIST: two zero bytes, a type code, the number
/// of dimensions, each dimension as a big-endian UInt32, then the elements row-major.
/// Only unsigned bytes (type code 0x08) are supported, which is what those datasets use.
public struct IDXFile: Sendable, Equatable {
    /// The dimensions, outermost first.
    public let dims: [Int]
    /// The elements, row-major.
    public let bytes: [UInt8]

    /// An IDX file's contents; `bytes.count` should be the product of `dims`.
    public init(dims: [Int], bytes: [UInt8]) {
        self.dims = dims
        self.bytes = bytes
    }

    static func hexByte(_ b: UInt8) -> String {
        let digits = String(b, radix: 16, uppercase: true)
        return "0x" + (digits.count < 2 ? "0" : "") + digits
    }

    static let typeNames: [UInt8: String] = [0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16",
                                             0x0C: "int32", 0x0D: "float32", 0x0E: "float64"]

    /// Reads an IDX file, raw or gzip-compressed (recognised by its magic bytes 1f 8b). Offsets
    /// in errors of a compressed file count bytes of the decompressed data.
    public static func read(path: String) throws -> IDXFile {
        let raw = try readFileBytes(path)
        if Gzip.isGzip(raw) {
            // No IDX file of ours is near 4 GiB; the limit stops a decompression bomb.
            return try parse(try Gzip.decompress(raw, path: path, maxOutputBytes: 1 << 32), path: path, where: " of the decompressed data")
        }
        return try parse(raw, path: path, where: "")
    }

    /// Parses IDX bytes; `path` and `location` only name the source in errors.
    public static func parse(_ data: [UInt8], path: String, where location: String = "") throws -> IDXFile {
        func fail(_ message: String) -> KilnError { .file(path: path, message: "IDX: \(message)") }
        guard data.count >= 4 else {
            throw fail("truncated header: \(data.count) bytes, the magic number needs 4 (at byte \(data.count)\(location))")
        }
        guard data[0] == 0, data[1] == 0 else {
            throw fail("bad magic number: bytes 0-1\(location) are \(data[0]) \(data[1]), expected 0 0 (is this an IDX file?)")
        }
        let typeCode = data[2]
        guard typeCode == 0x08 else {
            let name = typeNames[typeCode].map { " (\($0))" } ?? " (unknown)"
            throw fail("unsupported data type code \(hexByte(typeCode))\(name) at byte 2\(location); only 0x08 (unsigned byte) is supported")
        }
        let rank = Int(data[3])
        let headerSize = 4 + 4 * rank
        guard data.count >= headerSize else {
            throw fail("truncated header: \(rank) dimensions need \(headerSize) bytes, the data ends at byte \(data.count)\(location)")
        }
        var dims: [Int] = []
        var elements = 1
        for i in 0..<rank {
            let o = 4 + 4 * i
            let d = Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3])
            dims.append(d)
            // Saturating: a product past Int.max cannot match any file anyway.
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            elements = overflow ? Int.max : product
        }
        let available = data.count - headerSize
        guard available >= elements else {
            throw fail("truncated: dimensions \(dims) need \(elements == Int.max ? "more than \(Int.max)" : String(elements)) data bytes from byte \(headerSize), the data ends at byte \(data.count)\(location)")
        }
        guard available == elements else {
            throw fail("\(available - elements) unexpected bytes after the data at byte \(headerSize + elements)\(location) (dimensions \(dims))")
        }
        return IDXFile(dims: dims, bytes: Array(data[headerSize...]))
    }
}

/// A labelled image dataset in the MNIST layout: images as rows of `features` pixels in [0, 1].
public struct ImageDataset: Sendable {
    /// Which half of the dataset to load.
    public enum Split: String, Sendable, CaseIterable {
        case train
        case test

        /// The standard file-name prefix of this split.
        var prefix: String { self == .train ? "train" : "t10k" }
    }

    /// Where the Debian package `dataset-fashion-mnist` installs the (gzip-compressed) files.
    public static let defaultFashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
    /// The number of classes of MNIST and Fashion-MNIST.
    public static let classCount = 10

    /// `count * features` pixels, row-major, as stored (0...255). Kept as bytes: a quarter of
    /// the memory of floats; batches scale them (`LabeledData.Rows.pixels`).
    public let pixels: [UInt8]
    /// The pixels scaled by 1/255 into [0, 1], as torchvision does.
    public var images: [Float] {
        pixels.withUnsafeBufferPointer { p in
            [Float](unsafeUninitializedCapacity: p.count) { out, n in
                // A while loop over raw pointers: 47M pixels, and tests run unoptimised.
                guard let from = p.baseAddress, let to = out.baseAddress else { return }
                var i = 0
                while i < p.count {
                    to[i] = Float(from[i]) / 255
                    i += 1
                }
                n = p.count
            }
        }
    }
    /// `count` class labels in 0..<10.
    public let labels: [Int32]
    /// The number of images.
    public let count: Int
    /// Pixels per image: rows * cols.
    public let features: Int

    /// Loads `split` from `directory`, which holds the standard files
    /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte`), each raw or with `.gz` appended.
    public static func load(directory: String, split: Split) throws -> ImageDataset {
        let imagePath = try locate(directory: directory, name: "\(split.prefix)-images-idx3-ubyte")
        let labelPath = try locate(directory: directory, name: "\(split.prefix)-labels-idx1-ubyte")
        let imageFile = try IDXFile.read(path: imagePath)
        let labelFile = try IDXFile.read(path: labelPath)
        guard imageFile.dims.count == 3 else {
            throw KilnError.file(path: imagePath, message: "IDX: expected 3 dimensions [count, rows, cols], found \(imageFile.dims)")
        }
        guard labelFile.dims.count == 1 else {
            throw KilnError.file(path: labelPath, message: "IDX: expected 1 dimension [count], found \(labelFile.dims)")
        }
        // With no images the file size bounds nothing, so rows * cols may overflow.
        let count = imageFile.dims[0]
        let (features, overflow) = imageFile.dims[1].multipliedReportingOverflow(by: imageFile.dims[2])
        guard !overflow else {
            throw KilnError.file(path: imagePath, message: "IDX: images of \(imageFile.dims[1]) x \(imageFile.dims[2]) pixels are too large")
        }
        guard labelFile.dims[0] == count else {
            throw KilnError.file(path: labelPath, message: "IDX: \(labelFile.dims[0]) labels but \(imagePath) holds \(count) images")
        }
        var labels = [Int32]()
        labels.reserveCapacity(count)
        for (i, l) in labelFile.bytes.enumerated() {
            guard Int(l) < classCount else {
                throw KilnError.file(path: labelPath, message: "IDX: label \(l) of item \(i) (byte \(8 + i)) is not below \(classCount)")
            }
            labels.append(Int32(l))
        }
        return ImageDataset(pixels: imageFile.bytes, labels: labels, count: count, features: features)
    }

    /// The path of `name` or `name.gz` in `directory`, preferring the uncompressed file.
    static func locate(directory: String, name: String) throws -> String {
        let base = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        for candidate in [base, base + ".gz"] where fileExists(candidate) { return candidate }
        throw KilnError.file(path: base, message: "not found (nor \(name).gz) in \(directory)")
    }
}
