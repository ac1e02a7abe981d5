import Foundation
import Testing
import Kiln

/// Damaged copies of valid files go through every reader, which must return or throw a
/// `KilnError`, never trap. A few hundred cases run by default; `scripts/fuzz_readers.sh` runs
/// many more (KILN_FUZZ_ITERATIONS, KILN_FUZZ_SEED) in a release build.
@Suite struct ReaderFuzzTests {
    static let environment = ProcessInfo.processInfo.environment
    static let iterations = environment["KILN_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 150
    static let seed = environment["KILN_FUZZ_SEED"].flatMap(UInt64.init) ?? 1

    /// A damaged copy of `bytes`: flipped or overwritten bytes, a cut, an insertion or a
    /// random 8-byte little-endian length at the start (safetensors' header length).
    static func mutate(_ bytes: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var b = bytes
        switch Int.random(in: 0..<5, using: &rng) {
        case 0 where !b.isEmpty:
            for _ in 0...Int.random(in: 0..<4, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng) }
        case 1 where !b.isEmpty:
            for _ in 0...Int.random(in: 0..<4, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
        case 2: b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
        case 3: b.insert(contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) },
                         at: Int.random(in: 0...b.count, using: &rng))
        default:
            let n = [UInt64.random(in: 0...UInt64.max, using: &rng), UInt64.random(in: 0...4096, using: &rng), 1 << 63, UInt64.max][Int.random(in: 0..<4, using: &rng)]
            for i in 0..<min(8, b.count) { b[i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
        }
        return b
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8], read: (String) throws -> Void)] {
        let dir = try Support.temporaryDirectory()
        let safetensors = dir + "/seed.safetensors"
        try SafeTensorsTests.sample().write(to: safetensors)
        let idx = IDXTests.idx(dims: [3, 2, 2], data: Array(0..<12))
        let conll = Array("-DOCSTART- -X- -X- O\n\nMr. NNP I-NP O\nHollis NNP I-NP B-PER\n\nin IN I-PP O\nKelmont NNP I-NP B-LOC\n".utf8)
        let glove = Array("the 0.1 0.2 0.3\nhollis -1 2e-3 4\n".utf8)
        let vocab = Vocabulary(words: ["the", "hollis"])
        return [
            ("safetensors", try Support.read(safetensors), { _ = try SafeTensorsFile.read(path: $0) }),
            ("idx", idx, { _ = try IDXFile.read(path: $0) }),
            ("idx.gz", try Support.gzip(idx + [UInt8](repeating: 7, count: 300)), { _ = try IDXFile.read(path: $0) }),
            ("conll", conll, { _ = try CoNLL.read(path: $0) }),
            ("glove", glove, { _ = try GloVe.embeddingMatrix(path: $0, vocabulary: vocab, dim: 3, seed: 0) }),
        ]
    }

    @Test func damagedFilesThrowKilnErrors() throws {
        let dir = try Support.temporaryDirectory()
        var rng = SeededGenerator(seed: Self.seed)
        for (name, bytes, read) in try Self.seeds() {
            var thrown = 0
            for i in 0..<Self.iterations {
                let path = "\(dir)/\(name)"
                try Support.write(Self.mutate(bytes, &rng), to: path)
                do { try read(path) } catch let error as KilnError {
                    thrown += 1
                    #expect("\(error)".contains(path), "\(name) #\(i): \(error)")
                } catch {
                    Issue.record("\(name) #\(i): not a KilnError: \(error)")
                }
            }
            #expect(thrown > 0, "\(name): no damaged copy was rejected")
        }
    }
}
