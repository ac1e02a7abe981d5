/// A checkpoint in the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON header, then the tensor data, little-endian.
/// The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
/// (offsets relative to the data section) and may hold `"__metadata__"`, a string-to-string map.
///
/// The reader checks everything a file could get wrong before trusting it, as the reference
/// implementation does: sizes against the real file size before allocating, dtypes, shapes,
/// byte counts, and that the tensors tile the data section exactly (no overlap, gap or excess).
public struct SafeTensorsFile: Sendable, Equatable {
    /// The tensors by name (any name but `__metadata__`).
    public var tensors: [String: HostTensor]
    /// Free-form string pairs stored in the header's `__metadata__`.
    public var metadata: [String: String]

    /// The reference implementation's limit on the header size.
    public static let maxHeaderBytes = 100_000_000
    static let metadataKey = "__metadata__"

    /// A file to be written.
    public init(tensors: [String: HostTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The safetensors name of each supported dtype.
    static func code(_ dtype: DType) -> String {
        switch dtype {
        case .float32: return "F32"
        case .float64: return "F64"
        case .int32: return "I32"
        }
    }

    static let dtypes: [String: DType] = ["F32": .float32, "F64": .float64, "I32": .int32]
    /// Codes of the format that Kiln does not hold, to tell them apart from garbage in errors.
    static let unsupportedCodes: Set<String> = ["BOOL", "U8", "I8", "U16", "I16", "F16", "BF16", "U32", "U64", "I64",
                                                "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"]

    /// Writes the file atomically (temporary file, fsync, rename), tensors in sorted name
    /// order, the header padded with spaces to a multiple of 8 bytes as the reference does.
    public func write(to path: String) throws {
        guard tensors[Self.metadataKey] == nil else {
            throw KilnError.file(path: path, message: "a tensor cannot be named \(Self.metadataKey)")
        }
        let names = tensors.keys.sorted()
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(JSONValue.quote($0)):\(JSONValue.quote(metadata[$0] ?? ""))" }
            entries.append("\(JSONValue.quote(Self.metadataKey)):{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            let size = t.shape.count * t.dtype.byteSize
            let shape = t.shape.dims.map(String.init).joined(separator: ",")
            entries.append("\(JSONValue.quote(name)):{\"dtype\":\"\(Self.code(t.dtype))\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
        try AtomicFileWriter.withFile(replacing: path) { file in
            try file.append(Self.littleEndianBytes(UInt64(header.count)))
            try file.append(header)
            for name in names {
                guard let t = tensors[name] else { continue }
                switch t.storage {
                case .float32(let v): try Self.appendLittleEndian(v.map(\.bitPattern), to: file)
                case .float64(let v): try Self.appendLittleEndian(v.map(\.bitPattern), to: file)
                case .int32(let v): try Self.appendLittleEndian(v, to: file)
                }
            }
        }
    }

    static func littleEndianBytes(_ v: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ values: [T], to file: AtomicFileWriter) throws {
        try values.map(\.littleEndian).withUnsafeBytes { try file.append($0) }
    }

    /// Reads and validates the file at `path`; every problem throws `KilnError.file` naming it.
    public static func read(path: String) throws -> SafeTensorsFile {
        func fail(_ message: String) -> KilnError { .file(path: path, message: "safetensors: \(message)") }
        let file = try ReadableFile(path: path)
        guard file.size >= 8 else { throw fail("file is \(file.size) bytes, too short for the 8-byte header length") }
        var lengthBytes = [UInt8](repeating: 0, count: 8)
        try lengthBytes.withUnsafeMutableBytes { try file.readExactly(into: $0, at: 0) }
        let headerLength = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard headerLength <= UInt64(file.size - 8) else {
            throw fail("header length \(headerLength) (bytes 0-7) runs past the end of the file: only \(file.size - 8) bytes follow")
        }
        guard headerLength <= UInt64(maxHeaderBytes) else {
            throw fail("header length \(headerLength) (bytes 0-7) exceeds the limit of \(maxHeaderBytes) bytes")
        }
        let n = Int(headerLength)
        var header = [UInt8](repeating: 0, count: n)
        try header.withUnsafeMutableBytes { try file.readExactly(into: $0, at: 8) }
        if let bad = firstInvalidUTF8Offset(header) { throw fail("header is not valid UTF-8 at byte \(8 + bad)") }
        let json: JSONValue
        do { json = try JSONParser.parse(header) } catch {
            throw fail("header is not valid JSON: \(error.message) at byte \(8 + error.offset)")
        }
        guard case .object(let members) = json else { throw fail("header is a JSON \(json.kind), not an object") }

        let dataStart = 8 + n, dataSize = file.size - dataStart
        var metadata: [String: String] = [:]
        var layout: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in members {
            if name == metadataKey {
                guard case .object(let pairs) = value else { throw fail("\(metadataKey) is a \(value.kind), not an object") }
                for (key, v) in pairs {
                    guard case .string(let s) = v else { throw fail("\(metadataKey) value of \(JSONValue.quote(key)) is a \(v.kind), not a string") }
                    metadata[key] = s
                }
                continue
            }
            let info = try TensorInfo(value, name: name, dataSize: dataSize, fail: fail)
            layout.append((name, info.dtype, info.shape, info.begin, info.end))
        }
        // The tensors must tile the data section: sorted by offset, each begins where the last ended.
        layout.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0, previous = ""
        for t in layout {
            guard t.begin >= expected else {
                throw fail("tensor \(JSONValue.quote(t.name)) at data bytes \(t.begin)..<\(t.end) overlaps tensor \(JSONValue.quote(previous)) ending at \(expected)")
            }
            guard t.begin == expected else {
                throw fail("gap in the data section: bytes \(expected)..<\(t.begin) belong to no tensor (before \(JSONValue.quote(t.name)))")
            }
            expected = t.end
            previous = t.name
        }
        guard expected == dataSize else {
            throw fail("\(dataSize - expected) bytes at the end of the data section (file byte \(dataStart + expected)) belong to no tensor")
        }
        var tensors: [String: HostTensor] = [:]
        for t in layout {
            let count = (t.end - t.begin) / t.dtype.byteSize
            let at = dataStart + t.begin
            let storage: HostTensor.Storage
            switch t.dtype {
            case .float32: storage = .float32(try readLittleEndian(UInt32.self, count: count, at: at, from: file).map(Float.init(bitPattern:)))
            case .float64: storage = .float64(try readLittleEndian(UInt64.self, count: count, at: at, from: file).map(Double.init(bitPattern:)))
            case .int32: storage = .int32(try readLittleEndian(Int32.self, count: count, at: at, from: file))
            }
            tensors[t.name] = try HostTensor(shape: Shape(t.shape), storage: storage)
        }
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    static func readLittleEndian<T: FixedWidthInteger>(_: T.Type, count: Int, at offset: Int, from file: ReadableFile) throws -> [T] {
        var values = [T](repeating: 0, count: count)
        try values.withUnsafeMutableBytes { try file.readExactly(into: $0, at: offset) }
        #if _endian(big)
        values = values.map(T.init(littleEndian:))
        #endif
        return values
    }

    /// One header entry, checked against the data section's size.
    struct TensorInfo {
        let dtype: DType
        let shape: [Int]
        let begin: Int
        let end: Int

        init(_ value: JSONValue, name: String, dataSize: Int, fail: (String) -> KilnError) throws {
            let q = JSONValue.quote(name)
            guard case .object(let fields) = value else { throw fail("entry \(q) is a \(value.kind), not an object") }
            func field(_ key: String) throws -> JSONValue {
                guard let v = fields.first(where: { $0.key == key })?.value else { throw fail("tensor \(q) has no \"\(key)\"") }
                return v
            }
            guard case .string(let code) = try field("dtype") else { throw fail("tensor \(q): dtype is not a string") }
            guard let dtype = SafeTensorsFile.dtypes[code] else {
                throw fail(SafeTensorsFile.unsupportedCodes.contains(code)
                    ? "tensor \(q): dtype \(code) is not supported (only F32, F64, I32 are)"
                    : "tensor \(q): unknown dtype \(JSONValue.quote(code))")
            }
            guard case .array(let dimValues) = try field("shape") else { throw fail("tensor \(q): shape is not an array") }
            var shape: [Int] = []
            var count = 1, overflow = false
            for d in dimValues {
                guard case .number(let text) = d, let dim = Int(text), dim >= 0 else {
                    throw fail("tensor \(q): shape \(Self.render(.array(dimValues))): \(Self.render(d)) is not a non-negative integer")
                }
                shape.append(dim)
                // Multiplied in the order Shape.count uses, so that it cannot overflow later.
                if !overflow { (count, overflow) = count.multipliedReportingOverflow(by: dim) }
            }
            guard !overflow else { throw fail("tensor \(q): shape \(shape) has too many elements") }
            guard case .array(let offsetValues) = try field("data_offsets"), offsetValues.count == 2,
                  case .number(let beginText) = offsetValues[0], case .number(let endText) = offsetValues[1],
                  let begin = Int(beginText), let end = Int(endText), begin >= 0, end >= 0 else {
                throw fail("tensor \(q): data_offsets is not a pair of non-negative integers")
            }
            guard begin <= end else { throw fail("tensor \(q): data_offsets [\(begin), \(end)] end before they begin") }
            guard end <= dataSize else {
                throw fail("tensor \(q): data_offsets [\(begin), \(end)] run past the data section of \(dataSize) bytes")
            }
            let (bytes, tooMany) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !tooMany, bytes == end - begin else {
                throw fail("tensor \(q): shape \(shape) of \(code) needs \(tooMany ? "more than Int.max" : String(bytes)) bytes but data_offsets [\(begin), \(end)] hold \(end - begin)")
            }
            self.dtype = dtype
            self.shape = shape
            self.begin = begin
            self.end = end
        }

        /// A header value as it would appear in the file, for error messages.
        static func render(_ value: JSONValue) -> String {
            switch value {
            case .number(let t): return t
            case .string(let s): return JSONValue.quote(s)
            case .array(let values): return "[" + values.map(render).joined(separator: ", ") + "]"
            default: return value.kind
            }
        }
    }
}
