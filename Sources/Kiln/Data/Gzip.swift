import CZlib

/// gzip (RFC 1952) decompression through zlib. Corrupt or truncated input throws
/// `KilnError.file` naming the file, what is wrong and the byte offset in the compressed input.
public enum Gzip {
    /// Whether `bytes` start with the gzip magic number 1f 8b.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// Where in a member zlib stopped, to say what a truncated file lacks.
    private enum Part { case header, deflate, trailer }

    /// The decompressed contents of a gzip file (all members, concatenated); zlib checks each
    /// member's CRC-32 and length. `path` only names the file in errors; output larger than
    /// `maxOutputBytes` throws instead of exhausting memory on a decompression bomb.
    public static func decompress(_ bytes: [UInt8], path: String, maxOutputBytes: Int = 1 << 34) throws -> [UInt8] {
        func gzipError(_ offset: Int, _ message: String) -> KilnError {
            .file(path: path, message: "gzip: \(message) at byte \(offset)")
        }
        func deflateError(_ offset: Int, _ message: String) -> KilnError {
            .file(path: path, message: "corrupt DEFLATE data at byte \(offset): \(message)")
        }
        guard isGzip(bytes) else { throw gzipError(0, "missing gzip magic number 1f 8b") }
        var stream = z_stream()
        // 16 + MAX_WBITS: a gzip header and trailer around the DEFLATE data, any window size.
        let initStatus = inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else { throw KilnError.file(path: path, message: "gzip: zlib failed to start (status \(initStatus))") }
        defer { inflateEnd(&stream) }

        // One byte past the limit is room enough to see it exceeded.
        let capacityLimit = maxOutputBytes < Int.max ? maxOutputBytes + 1 : Int.max
        // A hint only: the last member's ISIZE, trusted no further than the DEFLATE maximum ratio.
        let sizeHint = Int(readLE32(bytes, bytes.count - 4) ?? 0)
        var output = [UInt8](repeating: 0, count: max(1, min(sizeHint, bytes.count &* 1032, capacityLimit, 1 << 30)))
        var produced = 0
        try bytes.withUnsafeBufferPointer { input in
            guard let base = input.baseAddress else { return }
            stream.next_in = UnsafeMutablePointer(mutating: base)
            var memberStart = 0, memberOutputStart = 0, part = Part.header
            while true {
                var offset = UnsafePointer(stream.next_in) - base
                if stream.avail_in == 0 { stream.avail_in = uInt(clamping: input.count - offset) }  // uInt is 32 bits
                // Z_BLOCK returns after the header and after each block, so that `data_type` tells
                // whether the DEFLATE data has begun (bit 128) and ended (bits 128 and 64).
                let status = output.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress.map { $0 + produced }
                    stream.avail_out = uInt(clamping: out.count - produced)
                    let space = stream.avail_out
                    defer { produced += Int(space - stream.avail_out) }
                    return inflate(&stream, Z_BLOCK)
                }
                offset = UnsafePointer(stream.next_in) - base
                guard produced <= maxOutputBytes else {
                    throw gzipError(offset, "decompressed data exceeds the limit of \(maxOutputBytes) bytes")
                }
                if stream.data_type & 128 != 0 { part = stream.data_type & 64 != 0 ? .trailer : .deflate }
                switch status {
                case Z_STREAM_END:
                    guard offset < input.count else { return }
                    guard input.count - offset >= 2, input[offset] == 0x1F, input[offset + 1] == 0x8B else {
                        throw gzipError(offset, "unexpected \(input.count - offset) bytes after the last member")
                    }
                    inflateReset(&stream)
                    (memberStart, memberOutputStart, part) = (offset, produced, .header)
                case Z_OK, Z_BUF_ERROR:
                    // zlib stops for output space, at a block boundary or at the end of the input.
                    // With the output full, it may only have the end of a block and the trailer
                    // left to read: grow the output only once it makes no progress (Z_BUF_ERROR).
                    if produced == output.count {
                        if status == Z_BUF_ERROR { output += [UInt8](repeating: 0, count: min(output.count, capacityLimit - output.count)) }
                        continue
                    }
                    // With room left, stopping at the end of the input means the file is cut short.
                    guard offset == input.count else { continue }
                    switch part {
                    case .header: throw gzipError(offset, "truncated member header")
                    case .deflate: throw deflateError(offset, "unexpected end of data")
                    case .trailer: throw gzipError(offset, "truncated trailer (CRC-32 and size)")
                    }
                case Z_DATA_ERROR:
                    let message = stream.msg.map { String(cString: $0) } ?? "invalid data"
                    // zlib reads bytes only as it needs them: the error lies in the last one read,
                    // or in the 4-byte (2-byte) field just read for the trailer (header) checks.
                    let stored = readLE32(bytes, offset - 4) ?? 0
                    switch message {
                    case "incorrect data check":
                        throw gzipError(offset - 4, "CRC-32 mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(stream.adler, radix: 16)))")
                    case "incorrect length check":
                        throw gzipError(offset - 4, "length mismatch (stored \(stored), decompressed \(UInt32(truncatingIfNeeded: produced - memberOutputStart)) mod 2^32)")
                    case "unknown compression method":
                        throw gzipError(memberStart + 2, "compression method \(bytes[memberStart + 2]) is not DEFLATE (8)")
                    case "unknown header flags set":
                        throw gzipError(memberStart + 3, "reserved header flags set (0x\(String(bytes[memberStart + 3], radix: 16)))")
                    case "header crc mismatch":
                        throw gzipError(offset - 2, "header CRC mismatch")
                    default:
                        let at = max(offset - 1, memberStart)
                        throw part == .deflate ? deflateError(at, message) : gzipError(at, message)
                    }
                default:
                    throw gzipError(offset, status == Z_MEM_ERROR ? "zlib ran out of memory" : "zlib failed (status \(status))")
                }
            }
        }
        output.removeSubrange(produced...)
        return output
    }

    /// The little-endian UInt32 at `i`, nil where fewer than 4 bytes are left.
    static func readLE32(_ b: [UInt8], _ i: Int) -> UInt32? {
        guard i >= 0, b.count - i >= 4 else { return nil }
        return UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}
