import Testing
import Kiln

/// gzip decompression (through zlib) against the `gzip` command and hand-made streams, and the
/// errors it reports for damaged ones.
@Suite struct InflateTests {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16) ?? 0)
            i = j
        }
        return out
    }

    static func inputs() -> [(String, [UInt8])] {
        var rng = SeededGenerator(seed: 7)
        let random = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let text = Array(String(repeating: "the quick brown fox jumps over the lazy dog ", count: 2300).utf8)
        // Repetitive but not trivially so: runs and short words drawn from a small alphabet.
        let mixed = (0..<100_000).map { i in i % 1000 < 300 ? UInt8(ascii: "a") : UInt8(ascii: "a") + UInt8(truncatingIfNeeded: (i * i) % 7) }
        return [("empty", []), ("short", Array("Kiln!".utf8)), ("text", text), ("mixed", mixed), ("random", random)]
    }

    @Test func matchesGzipCommand() throws {
        for (name, input) in Self.inputs() {
            for level in [1, 6, 9] {
                let compressed = try Support.gzip(input, level: level)
                let output = try Gzip.decompress(compressed, path: name)
                #expect(output == input, "\(name) at gzip -\(level): \(output.count) bytes back of \(input.count)")
            }
        }
    }

    @Test func fixedStoredAndHeaderFlags() throws {
        // Made with Python's zlib: a fixed-Huffman block (Z_FIXED), a stored block (level 0), and a
        // header with FEXTRA, FNAME, FCOMMENT and FHCRC set.
        let fixed = Self.hex("1f8b0800000000000203cb48cdc9c957c840277514d2322b5253143c4ad3d27213f314019328e74b27000000")
        #expect(try Gzip.decompress(fixed, path: "fixed") == Array("hello hello hello hello, fixed Huffman!".utf8))
        let stored = Self.hex("1f8b0800000000000403011200edff73746f72656420626c6f636b206279746573ffef467312000000")
        #expect(try Gzip.decompress(stored, path: "stored") == Array("stored block bytes".utf8))
        let flags = Self.hex("1f8b081e000000000003030078797a6e616d652e747874006120636f6d6d656e7400b5e64bcb494c2f56040000a0d4b506000000")
        #expect(try Gzip.decompress(flags, path: "flags") == Array("flags!".utf8))
        // Concatenated members decompress to the concatenation.
        #expect(try Gzip.decompress(fixed + stored, path: "both") == Array("hello hello hello hello, fixed Huffman!stored block bytes".utf8))
    }

    @Test func corruptStreamsThrowWithOffset() throws {
        let input = Self.inputs()[2].1
        let good = try Support.gzip(input)
        var badCRC = good
        badCRC[badCRC.count - 8] ^= 1
        let m1 = Support.message { _ = try Gzip.decompress(badCRC, path: "crc.gz") }
        #expect(m1.contains("crc.gz") && m1.contains("CRC-32 mismatch") && m1.contains("byte \(good.count - 8)"), "\(m1)")

        let truncated = Array(good[0..<(good.count / 2)])
        let m2 = Support.message { _ = try Gzip.decompress(truncated, path: "cut.gz") }
        #expect(m2.contains("cut.gz") && m2.contains("corrupt DEFLATE data at byte \(truncated.count): unexpected end of data"), "\(m2)")

        let noTrailer = Array(good[0..<(good.count - 3)])
        let m3 = Support.message { _ = try Gzip.decompress(noTrailer, path: "t.gz") }
        #expect(m3.contains("truncated trailer"), "\(m3)")

        var badType = good
        badType[10] |= 0b110  // block type 3
        let m4 = Support.message { _ = try Gzip.decompress(badType, path: "t.gz") }
        #expect(m4.contains("t.gz") && m4.contains("invalid block type") && m4.contains("at byte 10"), "\(m4)")

        let m5 = Support.message { _ = try Gzip.decompress(good + [1, 2, 3], path: "t.gz") }
        #expect(m5.contains("unexpected 3 bytes after the last member") && m5.contains("at byte \(good.count)"), "\(m5)")

        var badMethod = good
        badMethod[2] = 7
        let m6 = Support.message { _ = try Gzip.decompress(badMethod, path: "t.gz") }
        #expect(m6.contains("compression method 7"), "\(m6)")

        let m7 = Support.message { _ = try Gzip.decompress(Array(good[0..<5]), path: "t.gz") }
        #expect(m7.contains("truncated member header"), "\(m7)")

        let m8 = Support.message { _ = try Gzip.decompress(good, path: "t.gz", maxOutputBytes: 1000) }
        #expect(m8.contains("exceeds the limit of 1000 bytes"), "\(m8)")
        // The limit is inclusive: output of exactly the limit is returned.
        #expect(try Gzip.decompress(good, path: "t.gz", maxOutputBytes: input.count) == input)
        let m9 = Support.message { _ = try Gzip.decompress(good, path: "t.gz", maxOutputBytes: input.count - 1) }
        #expect(m9.contains("exceeds the limit of \(input.count - 1) bytes"), "\(m9)")

        var badLength = good
        badLength[badLength.count - 1] ^= 1
        let m10 = Support.message { _ = try Gzip.decompress(badLength, path: "t.gz") }
        #expect(m10.contains("length mismatch") && m10.contains("decompressed \(input.count)") && m10.contains("at byte \(good.count - 4)"), "\(m10)")
    }

    /// A small file that inflates far past the limit is refused (16 MiB of zeros in about 16 KiB).
    @Test func decompressionBombIsRefused() throws {
        let bomb = try Support.gzip([UInt8](repeating: 0, count: 16 << 20), level: 9)
        let m = Support.message { _ = try Gzip.decompress(bomb, path: "bomb.gz", maxOutputBytes: 1 << 20) }
        #expect(m.contains("bomb.gz") && m.contains("exceeds the limit of 1048576 bytes"), "\(m)")
    }

    /// Random damage anywhere in a stream throws or decodes; it never traps or hangs.
    @Test func randomCorruptionNeverTraps() throws {
        let good = try Support.gzip(Self.inputs()[3].1)
        var rng = SeededGenerator(seed: 11)
        var failures = 0
        for _ in 0..<200 {
            var bad = good
            for _ in 0..<3 { bad[Int.random(in: 10..<bad.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do { _ = try Gzip.decompress(bad, path: "fuzz") } catch { failures += 1 }
        }
        #expect(failures > 150)  // nearly every change is caught, by the Huffman decoder or the CRC
    }
}
