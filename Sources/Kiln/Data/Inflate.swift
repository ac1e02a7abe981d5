/// gzip (RFC 1952) decompression on top of a plain-Swift DEFLATE (RFC 1951) inflater, so that
/// compressed datasets load without linking zlib. Corrupt input throws `KilnError.file` naming
/// the byte offset in the compressed input where decoding failed.
public enum Gzip {
    /// Whether `bytes` start with the gzip magic number 1f 8b.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// The decompressed contents of a gzip file (all members, concatenated), checking each
    /// member's CRC-32 and length. `path` only names the file in errors; output larger than
    /// `maxOutputBytes` throws instead of exhausting memory on a decompression bomb.
    public static func decompress(_ bytes: [UInt8], path: String, maxOutputBytes: Int = 1 << 34) throws -> [UInt8] {
        func fail(_ offset: Int, _ message: String) -> KilnError {
            .file(path: path, message: "gzip: \(message) at byte \(offset)")
        }
        guard isGzip(bytes) else { throw fail(0, "missing gzip magic number 1f 8b") }
        // A hint only: the last member's ISIZE, trusted no further than the DEFLATE maximum ratio.
        let sizeHint = bytes.count >= 4 ? Int(readLE32(bytes, bytes.count - 4)) : 0
        let sink = ByteSink(capacity: min(sizeHint, bytes.count &* 1032, maxOutputBytes, 1 << 30))
        var offset = 0
        while offset < bytes.count {
            let memberStart = offset
            guard bytes.count - offset >= 2, bytes[offset] == 0x1F, bytes[offset + 1] == 0x8B else {
                throw fail(offset, "unexpected \(bytes.count - offset) bytes after the last member")
            }
            guard bytes.count - offset >= 10 else { throw fail(offset, "truncated member header") }
            guard bytes[offset + 2] == 8 else { throw fail(offset + 2, "compression method \(bytes[offset + 2]) is not DEFLATE (8)") }
            let flags = bytes[offset + 3]
            guard flags & 0xE0 == 0 else { throw fail(offset + 3, "reserved header flags set (0x\(String(flags, radix: 16)))") }
            offset += 10
            if flags & 0x04 != 0 {  // FEXTRA
                guard bytes.count - offset >= 2 else { throw fail(offset, "truncated extra field length") }
                let extra = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
                guard bytes.count - offset - 2 >= extra else { throw fail(offset, "extra field of \(extra) bytes runs past the end") }
                offset += 2 + extra
            }
            for (flag, name) in [(UInt8(0x08), "file name"), (UInt8(0x10), "comment")] where flags & flag != 0 {
                guard let end = bytes[offset...].firstIndex(of: 0) else { throw fail(offset, "unterminated \(name)") }
                offset = end + 1
            }
            if flags & 0x02 != 0 {  // FHCRC: the low 16 bits of the header's CRC-32
                guard bytes.count - offset >= 2 else { throw fail(offset, "truncated header CRC") }
                let stored = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
                guard stored == bytes[memberStart..<offset].withUnsafeBufferPointer(CRC32.checksum) & 0xFFFF else { throw fail(offset, "header CRC mismatch") }
                offset += 2
            }
            let outputStart = sink.count
            offset = try bytes.withUnsafeBufferPointer { input in
                var inflater = Inflater(input: input, position: offset, sink: sink, maxOutput: maxOutputBytes, path: path)
                try inflater.run()
                return inflater.endOffset
            }
            guard bytes.count - offset >= 8 else { throw fail(offset, "truncated trailer (CRC-32 and size)") }
            let produced = UnsafeBufferPointer(rebasing: sink.bytes[outputStart..<sink.count])
            let crc = CRC32.checksum(produced)
            guard crc == readLE32(bytes, offset) else {
                throw fail(offset, "CRC-32 mismatch (stored 0x\(String(readLE32(bytes, offset), radix: 16)), computed 0x\(String(crc, radix: 16)))")
            }
            guard UInt32(truncatingIfNeeded: produced.count) == readLE32(bytes, offset + 4) else {
                throw fail(offset + 4, "length mismatch (stored \(readLE32(bytes, offset + 4)), decompressed \(produced.count) mod 2^32)")
            }
            offset += 8
        }
        return Array(UnsafeBufferPointer(rebasing: sink.bytes[0..<sink.count]))
    }

    static func readLE32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}

/// The CRC-32 of gzip and zip (reflected polynomial 0xEDB88320).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        guard let data = bytes.baseAddress else { return 0 }
        return table.withUnsafeBufferPointer { t in
            // A while loop over raw pointers: tests run unoptimised, and this is 10x faster there.
            guard let tp = t.baseAddress else { return 0 }
            var c: UInt32 = 0xFFFF_FFFF, i = 0
            let n = bytes.count
            while i < n {
                c = tp[Int((c ^ UInt32(data[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
            return c ^ 0xFFFF_FFFF
        }
    }
}

/// A growable output buffer shared across gzip members (a class so that the inflater can write
/// through raw pointers).
final class ByteSink {
    private(set) var bytes: UnsafeMutableBufferPointer<UInt8>
    var count = 0

    init(capacity: Int) {
        bytes = .allocate(capacity: max(capacity, 1024))
    }

    deinit { bytes.deallocate() }

    /// Makes room for at least `extra` more bytes.
    func reserve(_ extra: Int) {
        guard count + extra > bytes.count else { return }
        let grown = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count * 2, count + extra))
        _ = grown.initialize(fromContentsOf: bytes[0..<count])
        bytes.deallocate()
        bytes = grown
    }
}

/// A canonical Huffman code as a lookup table indexed by the next `maxLength` input bits
/// (least significant bit first); each entry holds `symbol << 4 | codeLength`, 0 for no code.
/// A class owning raw memory so the decoding loop can index it without array overhead;
/// immutable after `init`, hence safe to share.
final class HuffmanTable: @unchecked Sendable {
    let entries: UnsafeMutablePointer<UInt16>
    let maxLength: Int

    /// Builds the code from per-symbol code lengths (0 = unused); nil when over-subscribed.
    /// Incomplete codes are allowed: their missing entries decode as errors.
    init?(lengths: ArraySlice<UInt8>) {
        var countPerLength = [Int](repeating: 0, count: 16)
        for l in lengths { countPerLength[Int(l)] += 1 }
        countPerLength[0] = 0
        var nextCode = [Int](repeating: 0, count: 16)
        var code = 0
        for len in 1..<16 {
            code = (code + countPerLength[len - 1]) << 1
            nextCode[len] = code
            guard code + countPerLength[len] <= 1 << len else { return nil }
        }
        maxLength = countPerLength.lastIndex { $0 > 0 } ?? 0
        let size = 1 << maxLength
        entries = .allocate(capacity: size)
        entries.initialize(repeating: 0, count: size)
        // While loops rather than stride/enumerated: this runs per block, unoptimised in tests.
        var symbol = 0
        for l in lengths {
            let len = Int(l)
            if len > 0 {
                var reversed = 0, c = nextCode[len], bit = 0
                nextCode[len] += 1
                while bit < len {
                    reversed = reversed << 1 | c & 1
                    c >>= 1
                    bit += 1
                }
                let entry = UInt16(truncatingIfNeeded: symbol << 4 | len)
                var i = reversed
                while i < size {
                    entries[i] = entry
                    i += 1 << len
                }
            }
            symbol += 1
        }
    }

    deinit { entries.deallocate() }

    static let fixedLiterals = HuffmanTable(lengths: ArraySlice(
        [UInt8](repeating: 8, count: 144) + [UInt8](repeating: 9, count: 112)
            + [UInt8](repeating: 7, count: 24) + [UInt8](repeating: 8, count: 8)))
    static let fixedDistances = HuffmanTable(lengths: ArraySlice([UInt8](repeating: 5, count: 30)))
}

/// One DEFLATE stream: reads `input` from `position`, appends to `sink`.
struct Inflater {
    let input: UnsafeBufferPointer<UInt8>
    var position: Int
    let sink: ByteSink
    let maxOutput: Int
    let path: String
    private var bitBuffer: UInt64 = 0
    private var bitCount = 0

    init(input: UnsafeBufferPointer<UInt8>, position: Int, sink: ByteSink, maxOutput: Int, path: String) {
        self.input = input
        self.position = position
        self.sink = sink
        self.maxOutput = maxOutput
        self.path = path
    }

    /// Base value and extra-bit count of length symbols 257...285, then distance symbols 0...29.
    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                    67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                     4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                      1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
                                       9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    /// The order in which code-length code lengths are stored (RFC 1951 §3.2.7).
    static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    /// The offset just past the stream once `run` has returned: the rest of a partly read byte
    /// is padding, and whole bytes still buffered belong to what follows.
    var endOffset: Int { position - bitCount / 8 }

    static func error(_ path: String, _ offset: Int, _ message: String) -> KilnError {
        .file(path: path, message: "corrupt DEFLATE data at byte \(offset): \(message)")
    }

    /// An error at the byte holding the next unread bit.
    private func fail(_ message: String) -> KilnError {
        Self.error(path, position - (bitCount + 7) / 8, message)
    }

    private mutating func refill() {
        while bitCount <= 56 && position < input.count {
            bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
            position += 1
            bitCount += 8
        }
    }

    private mutating func bits(_ n: Int) throws -> Int {
        if bitCount < n {
            refill()
            guard bitCount >= n else { throw fail("unexpected end of data") }
        }
        let value = Int(bitBuffer & ((1 << UInt64(n)) - 1))
        bitBuffer >>= UInt64(n)
        bitCount -= n
        return value
    }

    private mutating func decode(_ table: HuffmanTable) throws -> Int {
        if bitCount < table.maxLength { refill() }
        let entry = Int(table.entries[Int(bitBuffer & ((1 << UInt64(table.maxLength)) - 1))])
        let length = entry & 15
        guard length > 0, length <= bitCount else {
            throw fail(bitCount < table.maxLength ? "unexpected end of data" : "invalid Huffman code")
        }
        bitBuffer >>= UInt64(length)
        bitCount -= length
        return entry >> 4
    }

    /// Decodes blocks up to and including the final one.
    mutating func run() throws {
        var final = false
        while !final {
            final = try bits(1) == 1
            switch try bits(2) {
            case 0: try storedBlock()
            case 1:
                guard let lit = HuffmanTable.fixedLiterals, let dist = HuffmanTable.fixedDistances else {
                    throw fail("internal: fixed Huffman tables")
                }
                try codedBlock(literals: lit, distances: dist)
            case 2:
                let (lit, dist) = try dynamicTables()
                try codedBlock(literals: lit, distances: dist)
            default: throw fail("invalid block type 3")
            }
        }
    }

    private mutating func storedBlock() throws {
        // Drop the partial byte, then give back whole bytes already buffered.
        bitBuffer = 0
        position -= bitCount / 8
        bitCount = 0
        guard input.count - position >= 4 else { throw fail("truncated stored block header") }
        let len = Int(input[position]) | Int(input[position + 1]) << 8
        let nlen = Int(input[position + 2]) | Int(input[position + 3]) << 8
        guard len == nlen ^ 0xFFFF else { throw fail("stored block length \(len) does not match its complement") }
        position += 4
        guard input.count - position >= len else { throw fail("stored block of \(len) bytes runs past the end") }
        guard sink.count + len <= maxOutput else { throw fail("decompressed data exceeds the limit of \(maxOutput) bytes") }
        sink.reserve(len)
        _ = UnsafeMutableBufferPointer(rebasing: sink.bytes[sink.count..<sink.count + len])
            .update(fromContentsOf: UnsafeBufferPointer(rebasing: input[position..<position + len]))
        sink.count += len
        position += len
    }

    private mutating func dynamicTables() throws -> (HuffmanTable, HuffmanTable) {
        let literalCount = try bits(5) + 257, distanceCount = try bits(5) + 1, codeLengthCount = try bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else {
            throw fail("too many codes (\(literalCount) literal/length, \(distanceCount) distance)")
        }
        var codeLengthLengths = [UInt8](repeating: 0, count: 19)
        for i in 0..<codeLengthCount { codeLengthLengths[Self.codeLengthOrder[i]] = UInt8(try bits(3)) }
        guard let codeLengths = HuffmanTable(lengths: codeLengthLengths[...]) else { throw fail("over-subscribed code-length code") }
        let total = literalCount + distanceCount
        var lengths = [UInt8]()
        lengths.reserveCapacity(total)
        while lengths.count < total {
            let symbol = try decode(codeLengths)
            var value: UInt8 = 0, repeats = 1
            switch symbol {
            case 0...15: value = UInt8(symbol)
            case 16:
                guard let last = lengths.last else { throw fail("repeat code with no previous length") }
                value = last
                repeats = 3 + (try bits(2))
            case 17: repeats = 3 + (try bits(3))
            default: repeats = 11 + (try bits(7))
            }
            guard lengths.count + repeats <= total else { throw fail("code lengths overflow the table") }
            lengths.append(contentsOf: repeatElement(value, count: repeats))
        }
        guard lengths[256] != 0 else { throw fail("no end-of-block code") }
        guard let lit = HuffmanTable(lengths: lengths[0..<literalCount]) else { throw fail("over-subscribed literal/length code") }
        guard let dist = HuffmanTable(lengths: lengths[literalCount...]) else { throw fail("over-subscribed distance code") }
        return (lit, dist)
    }

    /// The hot loop: literal and match decoding with the bit state in locals and raw pointers
    /// throughout, because the tests run unoptimised and method calls per symbol cost 10x there.
    private mutating func codedBlock(literals: HuffmanTable, distances: HuffmanTable) throws {
        guard let inp = input.baseAddress else { throw fail("unexpected end of data") }
        let end = input.count
        var buf = bitBuffer, have = bitCount, pos = position
        var count = sink.count
        guard var out = sink.bytes.baseAddress else { throw fail("internal: no output buffer") }
        var capacity = sink.bytes.count
        let litTable = literals.entries, litMask = (UInt64(1) << UInt64(literals.maxLength)) - 1
        let distTable = distances.entries, distMask = (UInt64(1) << UInt64(distances.maxLength)) - 1
        let litMax = literals.maxLength, distMax = distances.maxLength
        let lengthBase = Self.lengthBase, lengthExtra = Self.lengthExtra
        let distanceBase = Self.distanceBase, distanceExtra = Self.distanceExtra
        defer {
            bitBuffer = buf
            bitCount = have
            position = pos
            sink.count = count
        }
        func failure(_ message: String) -> KilnError { Self.error(path, pos - (have + 7) / 8, message) }
        while true {
            // One refill covers a whole match: 15 + 5 + 15 + 13 = 48 bits at most.
            if have < 48 {
                while have <= 56 && pos < end {
                    buf |= UInt64(inp[pos]) << UInt64(have)
                    pos += 1
                    have += 8
                }
            }
            let entry = Int(litTable[Int(buf & litMask)])
            let codeLength = entry & 15
            guard codeLength > 0, codeLength <= have else {
                throw failure(have < litMax ? "unexpected end of data" : "invalid Huffman code")
            }
            buf >>= UInt64(codeLength)
            have -= codeLength
            let symbol = entry >> 4
            var length = 1
            if symbol > 256 {
                let li = symbol - 257
                guard li < 29 else { throw failure("invalid length symbol \(symbol)") }
                let extra = lengthExtra[li]
                guard have >= extra else { throw failure("unexpected end of data") }
                length = lengthBase[li] + Int(buf & ((1 << UInt64(extra)) - 1))
                buf >>= UInt64(extra)
                have -= extra
            } else if symbol == 256 {
                return
            }
            if count + length > capacity {
                guard count + length <= maxOutput else { throw failure("decompressed data exceeds the limit of \(maxOutput) bytes") }
                sink.count = count
                sink.reserve(length)
                guard let grown = sink.bytes.baseAddress else { throw failure("internal: no output buffer") }
                out = grown
                capacity = sink.bytes.count
            }
            if symbol < 256 {
                out[count] = UInt8(truncatingIfNeeded: symbol)
                count += 1
                continue
            }
            let distEntry = Int(distTable[Int(buf & distMask)])
            let distLength = distEntry & 15
            guard distLength > 0, distLength <= have else {
                throw failure(have < distMax ? "unexpected end of data" : "invalid Huffman code")
            }
            buf >>= UInt64(distLength)
            have -= distLength
            let di = distEntry >> 4
            guard di < 30 else { throw failure("invalid distance symbol \(di)") }
            let extra = distanceExtra[di]
            guard have >= extra else { throw failure("unexpected end of data") }
            let distance = distanceBase[di] + Int(buf & ((1 << UInt64(extra)) - 1))
            buf >>= UInt64(extra)
            have -= extra
            guard distance <= count else {
                throw failure("distance \(distance) reaches before the start of the output (\(count) bytes)")
            }
            // Byte by byte: the source may overlap what is being written (run-length copies).
            var from = count - distance
            let stop = count + length
            while count < stop {
                out[count] = out[from]
                count += 1
                from += 1
            }
        }
    }
}
