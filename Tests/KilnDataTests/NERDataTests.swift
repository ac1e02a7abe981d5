import Testing
import Kiln

/// CoNLL reading, vocabulary, tag set and word windows.
@Suite struct NERDataTests {
    static let sample = """
    -DOCSTART- -X- -X- O

    Mr. NNP I-NP O
    Brennick NNP I-NP B-PER
    visited VBD I-VP O
    Port NNP I-NP B-LOC
    Sellis NNP I-NP I-LOC
    . . O O


    -DOCSTART- -X- -X- O
    Halden NNP I-NP B-ORG
    Corporation NNP I-NP I-ORG
    grew VBD I-VP O
    Tessaro B-ORG
    """

    @Test func parsesSentencesSkippingDocstartAndBlankLines() throws {
        let sentences = try CoNLL.parse(Self.sample)
        #expect(sentences.count == 2)
        #expect(sentences[0].tokens == ["Mr.", "Brennick", "visited", "Port", "Sellis", "."])
        #expect(sentences[0].tags == ["O", "B-PER", "O", "B-LOC", "I-LOC", "O"])
        // A -DOCSTART- line ends a sentence even without a blank line; 2-column lines are accepted.
        #expect(sentences[1].tokens == ["Halden", "Corporation", "grew", "Tessaro"])
        #expect(sentences[1].tags == ["B-ORG", "I-ORG", "O", "B-ORG"])
        #expect(try CoNLL.parse("a\tX\tO\r\nb\tX\tB-LOC\r\n") == [Sentence(tokens: ["a", "b"], tags: ["O", "B-LOC"])])
    }

    @Test func oneColumnLineThrowsWithLineNumber() throws {
        let m = Support.message { _ = try CoNLL.parse("a X O\nb X O\n\nlonely\n", path: "bad.txt") }
        #expect(m.contains("bad.txt") && m.contains("line 4") && m.contains("lonely"), "\(m)")
        let dir = try Support.temporaryDirectory()
        try Support.write(Array("a X O\n".utf8) + [0xC3, 0x28] + Array(" X O\n".utf8), to: dir + "/bad.txt")
        let m2 = Support.message { _ = try CoNLL.read(path: dir + "/bad.txt") }
        #expect(m2.contains("line 2") && m2.contains("UTF-8"), "\(m2)")
    }

    @Test func fixtureCorpus() throws {
        let train = try CoNLL.read(path: Support.nerFixtures + "/train.txt")
        let test = try CoNLL.read(path: Support.nerFixtures + "/test.txt")
        #expect(train.count == 150 && test.count == 40)
        let tags = TagSet(sentences: train)
        #expect(tags.tags == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER"])
        #expect(train.allSatisfy { $0.tokens.count == $0.tags.count && !$0.tokens.contains("-DOCSTART-") })
        // Every test tag is known to the training tag set.
        for s in test { for t in s.tags { _ = try tags.id(for: t) } }
    }

    @Test func vocabularyFoldsCaseAndMapsUnknownWords() throws {
        let sentences = [Sentence(tokens: ["The", "cat", "the", "Dog"], tags: ["O", "O", "O", "O"]),
                         Sentence(tokens: ["THE", "dog"], tags: ["O", "O"])]
        let vocab = Vocabulary(sentences: sentences)
        #expect(vocab.tokens == ["<pad>", "<unk>", "the", "dog", "cat"])
        #expect(vocab.count == 5)
        #expect(vocab.id(for: "tHe") == 2 && vocab.id(for: "DOG") == 3)
        #expect(vocab.id(for: "zebra") == Vocabulary.unknownID && vocab.knownID(for: "zebra") == nil)
        #expect(vocab.id(for: "<pad>") == Vocabulary.padID)
        let frequent = Vocabulary(sentences: sentences, minCount: 2)
        #expect(frequent.tokens == ["<pad>", "<unk>", "the", "dog"])
        #expect(frequent.id(for: "cat") == Vocabulary.unknownID)
    }

    @Test func tagSetOrderAndUnknownTag() throws {
        let tags = TagSet(tags: ["I-PER", "B-PER", "O", "B-LOC"])
        #expect(tags.tags == ["O", "B-LOC", "B-PER", "I-PER"])
        #expect(try tags.id(for: "O") == 0 && tags.id(for: "I-PER") == 3)
        #expect(try tags.tag(for: 2) == "B-PER")
        let m = Support.message { _ = try tags.id(for: "B-MISC") }
        #expect(m.contains("unknown tag \"B-MISC\""), "\(m)")
    }

    @Test func windowsPadAtSentenceEdges() throws {
        let sentences = [Sentence(tokens: ["a", "b", "c"], tags: ["O", "B-PER", "O"]),
                         Sentence(tokens: ["d"], tags: ["B-LOC"])]
        let vocab = Vocabulary(words: ["a", "b", "c"])  // a=2 b=3 c=4, d unknown=1
        let tags = TagSet(sentences: sentences)  // O=0 B-LOC=1 B-PER=2
        let w = try WordWindows(sentences: sentences, vocabulary: vocab, tags: tags)
        #expect(w.count == 4 && w.width == 5)
        #expect(w.ids == [0, 0, 2, 3, 4,
                          0, 2, 3, 4, 0,
                          2, 3, 4, 0, 0,
                          0, 0, 1, 0, 0])
        #expect(w.labels == [0, 2, 0, 1])
        let narrow = try WordWindows(sentences: sentences, vocabulary: vocab, tags: tags, halfWidth: 1)
        #expect(narrow.width == 3 && narrow.ids == [0, 2, 3, 2, 3, 4, 3, 4, 0, 0, 1, 0])
        let m = Support.message { _ = try WordWindows(sentences: [Sentence(tokens: ["x"], tags: ["B-ORG"])], vocabulary: vocab, tags: tags) }
        #expect(m.contains("B-ORG"), "\(m)")
    }
}
