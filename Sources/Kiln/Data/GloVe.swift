/// Pretrained word vectors in the GloVe text format: one word per line, "word v1 v2 ... vD",
/// separated by single spaces.
public enum GloVe {
    /// The longest line accepted; a 300-dimensional GloVe line is about 3 KB.
    public static let maxLineBytes = 1 << 20
    /// Rows of words missing from the file are drawn uniformly from ±`initScale`.
    public static let initScale: Float = 0.1

    /// A `[vocabulary.count, dim]` row-major embedding matrix: the file's vector for each
    /// vocabulary word found in it (words are case folded like the vocabulary; when folding
    /// makes two file words equal, the first, most frequent, wins), a seeded uniform ±0.1 row for
    /// the others, and zeros for `<pad>`. `found` counts the vocabulary words found.
    ///
    /// The file is streamed line by line and every line is checked, used or not: its number of
    /// values must be `dim`, each value finite, the line valid UTF-8 and at most `maxLineBytes`.
    /// Empty lines and trailing spaces are skipped.
    public static func embeddingMatrix(path: String, vocabulary: Vocabulary, dim: Int, seed: UInt64) throws -> (values: [Float], found: Int) {
        guard dim > 0 else { throw KilnError.invalidArgument(op: "GloVe", message: "dimension \(dim) is not positive") }
        guard !vocabulary.count.multipliedReportingOverflow(by: dim).overflow else {
            throw KilnError.invalidArgument(op: "GloVe", message: "\(vocabulary.count) x \(dim) values are too many")
        }
        // The random rows are drawn for every word first, so they do not depend on the file.
        var rng = SeededGenerator(seed: seed)
        var values = (0..<(vocabulary.count * dim)).map { _ in Float.random(in: -initScale...initScale, using: &rng) }
        for j in 0..<dim { values[Int(Vocabulary.padID) * dim + j] = 0 }
        var filled = [Bool](repeating: false, count: vocabulary.count)
        var found = 0
        let reader = try LineReader(path: path, maxLineBytes: maxLineBytes)
        var vector = [Float](repeating: 0, count: dim)
        while let line = try reader.nextLine() {
            // Fields are found on the UTF-8 bytes (a space is always a character boundary): splitting
            // by Character costs more than parsing the numbers. Trailing spaces, which some
            // converters leave, are not an extra empty value.
            let utf8 = line.utf8
            var end = utf8.endIndex
            while end > utf8.startIndex, utf8[utf8.index(before: end)] == UInt8(ascii: " ") { end = utf8.index(before: end) }
            if end == utf8.startIndex { continue }
            let n = reader.lineNumber
            let valueCount = utf8[..<end].reduce(0) { $1 == UInt8(ascii: " ") ? $0 + 1 : $0 }
            guard valueCount == dim else {
                throw KilnError.file(path: path, message: "line \(n): \(valueCount) values, expected dimension \(dim)")
            }
            var fieldStart = utf8.startIndex, word: Substring = "", j = -1
            var i = utf8.startIndex
            while true {
                if i == end || utf8[i] == UInt8(ascii: " ") {
                    let field = line[fieldStart..<i]
                    if j < 0 {
                        word = field
                    } else {
                        guard let v = Float(field) else {
                            throw KilnError.file(path: path, message: "line \(n): value \(j + 1) \"\(field)\" is not a number")
                        }
                        guard v.isFinite else {
                            throw KilnError.file(path: path, message: "line \(n): value \(j + 1) is \(v) (NaN and infinity are not allowed)")
                        }
                        vector[j] = v
                    }
                    j += 1
                    if i == end { break }
                    fieldStart = utf8.index(after: i)
                }
                i = utf8.index(after: i)
            }
            guard let id = vocabulary.knownID(for: String(word)), id != Vocabulary.padID, !filled[Int(id)] else { continue }
            filled[Int(id)] = true
            found += 1
            values.replaceSubrange((Int(id) * dim)..<(Int(id) * dim + dim), with: vector)
        }
        return (values, found)
    }
}
