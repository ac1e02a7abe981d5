import Testing
import Foundation
@testable import Kiln

@Suite struct TimingTmp {
    @Test func timing() throws {
        let p = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
        var t = Date()
        let raw = try readFileBytes(p)
        print("read", Date().timeIntervalSince(t)); t = Date()
        let out = try Gzip.decompress(raw, path: p)
        print("gunzip", Date().timeIntervalSince(t), out.count); t = Date()
        let c = out.withUnsafeBufferPointer(CRC32.checksum)
        print("crc", Date().timeIntervalSince(t), c); t = Date()
        let f = try IDXFile.parse(out, path: p)
        print("parse", Date().timeIntervalSince(t), f.dims); t = Date()
    }
}
