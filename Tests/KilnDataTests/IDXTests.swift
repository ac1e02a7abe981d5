import Testing
import Kiln

/// IDX files written here, raw and gzip-compressed, and every way they can be wrong.
@Suite struct IDXTests {
    static func idx(dims: [Int], type: UInt8 = 0x08, data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return out + data
    }

    /// Writes a tiny MNIST-layout split: `count` images of 2x3 pixels and their labels.
    static func writeSplit(_ directory: String, prefix: String, count: Int, labelCount: Int? = nil,
                           labels: [UInt8]? = nil, gzip: Bool) throws {
        let pixels = (0..<(count * 6)).map { UInt8(truncatingIfNeeded: $0 * 37) }
        let images = idx(dims: [count, 2, 3], data: pixels)
        let labelBytes = labels ?? (0..<(labelCount ?? count)).map { UInt8($0 % 10) }
        let labelFile = idx(dims: [labelBytes.count], data: labelBytes)
        let suffix = gzip ? ".gz" : ""
        try Support.write(gzip ? try Support.gzip(images) : images, to: "\(directory)/\(prefix)-images-idx3-ubyte\(suffix)")
        try Support.write(gzip ? try Support.gzip(labelFile) : labelFile, to: "\(directory)/\(prefix)-labels-idx1-ubyte\(suffix)")
    }

    @Test(arguments: [false, true]) func roundTrip(gzip: Bool) throws {
        let dir = try Support.temporaryDirectory()
        try Self.writeSplit(dir, prefix: "train", count: 5, gzip: gzip)
        try Self.writeSplit(dir, prefix: "t10k", count: 3, gzip: gzip)
        let file = try IDXFile.read(path: "\(dir)/train-images-idx3-ubyte" + (gzip ? ".gz" : ""))
        #expect(file.dims == [5, 2, 3])
        #expect(file.bytes == (0..<30).map { UInt8(truncatingIfNeeded: $0 * 37) })
        let train = try ImageDataset.load(directory: dir, split: .train)
        #expect(train.count == 5 && train.features == 6 && train.labels == [0, 1, 2, 3, 4])
        #expect(train.images[1] == 37 / 255 && train.images.count == 30)
        let test = try ImageDataset.load(directory: dir, split: .test)
        #expect(test.count == 3 && test.labels == [0, 1, 2])
    }

    @Test func truncatedFileNamesFileAndOffset() throws {
        let dir = try Support.temporaryDirectory()
        let full = Self.idx(dims: [4, 2, 3], data: [UInt8](repeating: 9, count: 24))
        let path = "\(dir)/cut-idx3-ubyte"
        try Support.write(Array(full[0..<30]), to: path)
        let m1 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m1.contains(path) && m1.contains("truncated") && m1.contains("24 data bytes from byte 16") && m1.contains("ends at byte 30"), "\(m1)")
        try Support.write(Array(full[0..<9]), to: path)
        let m2 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m2.contains(path) && m2.contains("truncated header") && m2.contains("byte 9"), "\(m2)")
        try Support.write(try Support.gzip(Array(full[0..<30])), to: path + ".gz")
        let m3 = Support.message { _ = try IDXFile.read(path: path + ".gz") }
        #expect(m3.contains(path + ".gz") && m3.contains("ends at byte 30 of the decompressed data"), "\(m3)")
        try Support.write(full + [1, 2], to: path)
        let m4 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m4.contains("2 unexpected bytes after the data at byte 40"), "\(m4)")
        try Support.write([0, 0], to: path)
        let m5 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m5.contains("truncated header"), "\(m5)")
    }

    @Test func hostileHeaders() throws {
        let dir = try Support.temporaryDirectory()
        let path = "\(dir)/h-idx1-ubyte"
        try Support.write(Self.idx(dims: [2], type: 0x0D, data: [UInt8](repeating: 0, count: 8)), to: path)
        let m1 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m1.contains("0x0D") && m1.contains("float32") && m1.contains("only 0x08"), "\(m1)")
        try Support.write([0, 0, 0x42, 1, 0, 0, 0, 0], to: path)
        let m2 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m2.contains("0x42 (unknown)"), "\(m2)")
        // Dimensions claiming 2^32-1 cubed elements must not be allocated: the file is tiny.
        try Support.write(Self.idx(dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], data: [1, 2, 3]), to: path)
        let m3 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m3.contains("truncated") && m3.contains("ends at byte 19"), "\(m3)")
        try Support.write([0x50, 0x4B, 3, 4, 0, 0], to: path)
        let m4 = Support.message { _ = try IDXFile.read(path: path) }
        #expect(m4.contains("bad magic number"), "\(m4)")
        let m5 = Support.message { _ = try IDXFile.read(path: "\(dir)/missing") }
        #expect(m5.contains("\(dir)/missing") && m5.contains("cannot open"), "\(m5)")
        let m6 = Support.message { _ = try IDXFile.read(path: dir) }
        #expect(m6.contains("not a regular file"), "\(m6)")
    }

    @Test func datasetChecks() throws {
        let dir = try Support.temporaryDirectory()
        try Self.writeSplit(dir, prefix: "train", count: 5, labelCount: 4, gzip: false)
        let m1 = Support.message { _ = try ImageDataset.load(directory: dir, split: .train) }
        #expect(m1.contains("4 labels") && m1.contains("5 images"), "\(m1)")
        try Self.writeSplit(dir, prefix: "train", count: 3, labels: [1, 12, 3], gzip: true)
        // The raw files are still there and preferred; remove them so the .gz pair is read.
        try Support.remove("\(dir)/train-images-idx3-ubyte")
        try Support.remove("\(dir)/train-labels-idx1-ubyte")
        let m2 = Support.message { _ = try ImageDataset.load(directory: dir, split: .train) }
        #expect(m2.contains("label 12 of item 1") && m2.contains("not below 10"), "\(m2)")
        let m3 = Support.message { _ = try ImageDataset.load(directory: dir, split: .test) }
        #expect(m3.contains("t10k-images-idx3-ubyte") && m3.contains("not found"), "\(m3)")
        try Support.write(Self.idx(dims: [3, 6], data: [UInt8](repeating: 0, count: 18)), to: "\(dir)/t10k-images-idx3-ubyte")
        try Support.write(Self.idx(dims: [3], data: [0, 1, 2]), to: "\(dir)/t10k-labels-idx1-ubyte")
        let m4 = Support.message { _ = try ImageDataset.load(directory: dir, split: .test) }
        #expect(m4.contains("expected 3 dimensions"), "\(m4)")
    }
}
