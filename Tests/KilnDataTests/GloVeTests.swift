import Testing
import Kiln

@Suite struct GloVeTests {
    static func write(_ text: String) throws -> String {
        let path = try Support.temporaryDirectory() + "/vectors.txt"
        try Support.write(Array(text.utf8), to: path)
        return path
    }

    @Test func foundWordsGetTheirVectorsOthersSeededRandom() throws {
        let vocab = Vocabulary(words: ["the", "Cat", "zebra", "Café"])
        // Trailing spaces and a Windows line ending are tolerated; "THE" folds onto "the".
        let path = try Self.write("the 1 2 3\ncat -0.5 0.25 4e-1  \r\nTHE 9 9 9\ncafé 0 -1 0.5\nunused 0 0 0\n\n")
        let (values, found) = try GloVe.embeddingMatrix(path: path, vocabulary: vocab, dim: 3, seed: 5)
        #expect(found == 3 && values.count == vocab.count * 3)
        #expect(Array(values[15..<18]) == [0, -1, 0.5])
        #expect(Array(values[0..<3]) == [0, 0, 0])  // <pad>
        #expect(Array(values[6..<9]) == [1, 2, 3])  // "the": the first of the folded duplicates
        #expect(Array(values[9..<12]) == [-0.5, 0.25, 0.4])
        let zebra = values[12..<15], unk = values[3..<6]
        #expect(zebra.allSatisfy { abs($0) <= 0.1 && $0 != 0 } && unk.allSatisfy { abs($0) <= 0.1 })
        let again = try GloVe.embeddingMatrix(path: path, vocabulary: vocab, dim: 3, seed: 5)
        #expect(again.values == values)
        #expect(try GloVe.embeddingMatrix(path: path, vocabulary: vocab, dim: 3, seed: 6).values != values)
    }

    @Test func fixtureVectors() throws {
        let train = try CoNLL.read(path: Support.nerFixtures + "/train.txt")
        let vocab = Vocabulary(sentences: train)
        let (values, found) = try GloVe.embeddingMatrix(path: Support.nerFixtures + "/vectors.txt", vocabulary: vocab, dim: 8, seed: 1)
        #expect(values.count == vocab.count * 8)
        #expect(found >= 20 && found < 32)  // a few fixture words are not in the corpus
    }

    @Test func badLinesThrowWithLineNumber() throws {
        let vocab = Vocabulary(words: ["a"])
        func message(_ text: String, dim: Int = 3) throws -> String {
            let path = try Self.write(text)
            return Support.message { _ = try GloVe.embeddingMatrix(path: path, vocabulary: vocab, dim: dim, seed: 0) }
        }
        let m1 = try message("a 1 2 3\nb 1 2\n")
        #expect(m1.contains("line 2") && m1.contains("2 values") && m1.contains("dimension 3"), "\(m1)")
        let m2 = try message("a 1 2 3\nb 1 nan 3\n")
        #expect(m2.contains("line 2") && m2.contains("nan"), "\(m2)")
        let m3 = try message("a 1 2 inf\n")
        #expect(m3.contains("line 1") && m3.contains("inf"), "\(m3)")
        let m4 = try message("a 1 x 3\n")
        #expect(m4.contains("line 1") && m4.contains("\"x\" is not a number"), "\(m4)")
        let path = try Support.temporaryDirectory() + "/bad.txt"
        try Support.write(Array("a 1 2 3\n".utf8) + [0xFF] + Array(" 1 2 3\n".utf8), to: path)
        let m5 = Support.message { _ = try GloVe.embeddingMatrix(path: path, vocabulary: vocab, dim: 3, seed: 0) }
        #expect(m5.contains("line 2") && m5.contains("UTF-8"), "\(m5)")
        let long = "a" + String(repeating: " 1", count: 600_000) + "\n"
        let m6 = try message(long)
        #expect(m6.contains("line 1") && m6.contains("longer than"), "\(m6)")
        let m7 = Support.message { _ = try GloVe.embeddingMatrix(path: "/nonexistent/v.txt", vocabulary: vocab, dim: 3, seed: 0) }
        #expect(m7.contains("/nonexistent/v.txt"), "\(m7)")
    }
}
