/// One tagged sentence: a tag per token.
public struct Sentence: Sendable, Equatable {
    /// The words, as written in the file.
    public var tokens: [String]
    /// IOB tags ("O", "B-PER", "I-PER", ...), one per token.
    public var tags: [String]

    /// A sentence; `tags` should have one tag per token (`WordWindows` checks it).
    public init(tokens: [String], tags: [String]) {
        self.tokens = tokens
        self.tags = tags
    }
}

/// The CoNLL-2003 named-entity format: one token per line as "token POS chunk NER" (or just
/// "token NER"), columns separated by spaces or tabs; the token is the first column and the NER
/// tag the last. Blank lines end sentences; `-DOCSTART-` lines mark documents and are skipped.
public enum CoNLL {
    /// The sentences of the file at `path`, read line by line.
    public static func read(path: String) throws -> [Sentence] {
        let reader = try LineReader(path: path)
        var parser = Parser(path: path)
        while let line = try reader.nextLine() { try parser.add(line, number: reader.lineNumber) }
        return parser.finish()
    }

    /// The sentences of `text`; `path` only names the source in errors.
    public static func parse(_ text: String, path: String = "<text>") throws -> [Sentence] {
        var parser = Parser(path: path)
        var number = 0
        // "\r\n" is one Character, so splitting on isNewline handles both line endings.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            number += 1
            try parser.add(line, number: number)
        }
        return parser.finish()
    }

    struct Parser {
        let path: String
        var sentences: [Sentence] = []
        var current = Sentence(tokens: [], tags: [])

        init(path: String) { self.path = path }

        mutating func add(_ line: some StringProtocol, number: Int) throws {
            let columns = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = columns.first else { return endSentence() }
            if first == "-DOCSTART-" { return endSentence() }
            guard columns.count >= 2, let last = columns.last else {
                throw KilnError.file(path: path, message: "line \(number): expected \"token ... tag\" (at least 2 columns), found 1: \"\(line)\"")
            }
            current.tokens.append(String(first))
            current.tags.append(String(last))
        }

        mutating func endSentence() {
            if !current.tokens.isEmpty { sentences.append(current) }
            current = Sentence(tokens: [], tags: [])
        }

        mutating func finish() -> [Sentence] {
            endSentence()
            return sentences
        }
    }
}
