import Foundation

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
        var entries: [String: Any] = metadata.isEmpty ? [:] : [Self.metadataKey: metadata]
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            let size = t.shape.count * t.dtype.byteSize
            entries[name] = ["dtype": Self.code(t.dtype), "shape": t.shape.dims, "data_offsets": [offset, offset + size]]
            offset += size
        }
        var header = Array(try JSONText.string(entries).utf8)
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
        // JSONSerialization takes NUL bytes for UTF-16 or UTF-32; JSON text has none.
        if let nul = header.firstIndex(of: 0) { throw fail("header has a NUL byte at byte \(8 + nul)") }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(header)) } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw fail("header (bytes 8..<\(8 + n)) is not valid JSON: \(reason)")
        }
        guard let members = json as? [String: Any] else { throw fail("header is a JSON \(kind(json)), not an object") }

        let dataStart = 8 + n, dataSize = file.size - dataStart
        var metadata: [String: String] = [:]
        var layout: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        // In sorted order, so that a file with several faults always reports the same one.
        for (name, value) in members.sorted(by: { $0.key < $1.key }) {
            if name == metadataKey {
                guard let pairs = value as? [String: Any] else { throw fail("\(metadataKey) is a \(kind(value)), not an object") }
                for (key, v) in pairs.sorted(by: { $0.key < $1.key }) {
                    guard let s = v as? String else { throw fail("\(metadataKey) value of \(key.debugDescription) is a \(kind(v)), not a string") }
                    metadata[key] = s
                }
                continue
            }
            let info = try TensorInfo(value, name: name, dataSize: dataSize, fail: fail)
            layout.append((name, info.dtype, info.shape, info.begin, info.end))
        }
        // The tensors must tile the data section: sorted by offset, each begins where the last ended.
        layout.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var expected = 0, previous = ""
        for t in layout {
            guard t.begin >= expected else {
                throw fail("tensor \(t.name.debugDescription) at data bytes \(t.begin)..<\(t.end) overlaps tensor \(previous.debugDescription) ending at \(expected)")
            }
            guard t.begin == expected else {
                throw fail("gap in the data section: bytes \(expected)..<\(t.begin) belong to no tensor (before \(t.name.debugDescription))")
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

        init(_ value: Any, name: String, dataSize: Int, fail: (String) -> KilnError) throws {
            let q = name.debugDescription
            guard let fields = value as? [String: Any] else { throw fail("entry \(q) is a \(kind(value)), not an object") }
            func field(_ key: String) throws -> Any {
                guard let v = fields[key] else { throw fail("tensor \(q) has no \"\(key)\"") }
                return v
            }
            guard let code = try field("dtype") as? String else { throw fail("tensor \(q): dtype is not a string") }
            guard let dtype = SafeTensorsFile.dtypes[code] else {
                throw fail(SafeTensorsFile.unsupportedCodes.contains(code)
                    ? "tensor \(q): dtype \(code) is not supported (only F32, F64, I32 are)"
                    : "tensor \(q): unknown dtype \(code.debugDescription)")
            }
            guard let dimValues = try field("shape") as? [Any] else { throw fail("tensor \(q): shape is not an array") }
            var shape: [Int] = []
            var count = 1, overflow = false
            for d in dimValues {
                guard let dim = integer(d), dim >= 0 else {
                    throw fail("tensor \(q): shape \(render(dimValues)): \(render(d)) is not a non-negative integer")
                }
                shape.append(dim)
                // Multiplied in the order Shape.count uses, so that it cannot overflow later.
                if !overflow { (count, overflow) = count.multipliedReportingOverflow(by: dim) }
            }
            guard !overflow else { throw fail("tensor \(q): shape \(shape) has too many elements") }
            guard let offsetValues = try field("data_offsets") as? [Any], offsetValues.count == 2,
                  let begin = integer(offsetValues[0]), let end = integer(offsetValues[1]), begin >= 0, end >= 0 else {
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
    }

    /// What kind of JSON value JSONSerialization read, for error messages.
    static func kind(_ value: Any) -> String {
        switch value {
        case is [String: Any]: return "object"
        case is [Any]: return "array"
        case is String: return "string"
        case let n as NSNumber: return isBoolean(n) ? "boolean" : "number"
        default: return "null"
        }
    }

    /// JSONSerialization reads true and false as NSNumbers of type char ("c").
    static func isBoolean(_ n: NSNumber) -> Bool { n.objCType.pointee == CChar(UInt8(ascii: "c")) }

    /// `value` as an Int where the header wrote an integer that fits: not true, 1.0 or 1e2
    /// (types "c", "d"), which NSNumber would convert.
    static func integer(_ value: Any) -> Int? {
        guard let n = value as? NSNumber, !"cdf".utf8.contains(UInt8(bitPattern: n.objCType.pointee)) else { return nil }
        return value as? Int
    }

    /// A header value much as it appears in the file, for error messages.
    static func render(_ value: Any) -> String {
        switch value {
        case let array as [Any]: return "[" + array.map(render).joined(separator: ", ") + "]"
        case let s as String: return s.debugDescription
        case let n as NSNumber: return isBoolean(n) ? "\(n.boolValue)" : "\(n)"
        default: return kind(value)
        }
    }

    /// The offset of the first byte that is not valid UTF-8, or nil when all are.
    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }
}
